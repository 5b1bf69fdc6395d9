import MsgpackRPC
import NIOCore
import MuxRPCClientStack
import MuxRPCPool
import MuxRPCTransport

/// The names the built-in interceptors give endpoints and outcomes, shared so
/// that a log line, a metric and a span say the same thing about one call.
enum ObservabilityLabels {
    /// The endpoint as "host:port" (``SocketAddress/hostAndPort``), or
    /// "unknown".
    static func endpoint(_ address: SocketAddress?) -> String {
        address?.hostAndPort ?? "unknown"
    }

    /// The snake_case error code for a failed client attempt. `RPCError`
    /// and `MuxRPCError` codes keep their own names (their descriptions,
    /// with underscores), so a dashboard can tell `connection_refused` from
    /// `server_error`.
    static func clientErrorCode(_ error: any Error) -> String {
        switch error {
        case let error as RPCError: return snakeCase(error.code.description)
        case let error as MuxRPCError: return snakeCase(error.code.description)
        case is CancellationError: return "cancelled"
        default: return "unknown"
        }
    }

    /// The snake_case error code for a failed server call. Anything a
    /// handler throws reaches the caller as a net/rpc error reply, so that is
    /// `server_error`, as the client will count it; only what the server
    /// itself decided (a deadline, a rate limit) gets its own code.
    static func serverErrorCode(_ error: any Error, context: RPCServerContext) -> String {
        switch error {
        case let error as MuxRPCError where error.code == .rateLimited:
            return "rate_limited"
        case let error as MuxRPCError where error.code == .cancelled:
            // Cancelled while it waited for a rate limiter's token.
            return cancelled(context)
        case is CancellationError:
            return cancelled(context)
        case let error as RPCError where error.code != .serverError:
            return snakeCase(error.code.description)
        default:
            return "server_error"
        }
    }

    /// A server call's cancellation: its caller's deadline, or the call's end.
    private static func cancelled(_ context: RPCServerContext) -> String {
        if let deadline = context.deadline, deadline.hasPassed { return "deadline_exceeded" }
        return "cancelled"
    }

    /// Splits "Service.Method" at its last dot, as net/rpc does.
    static func split(_ serviceMethod: String) -> (service: String, method: String) {
        guard let dot = serviceMethod.lastIndex(of: ".") else { return ("", serviceMethod) }
        return (String(serviceMethod[..<dot]), String(serviceMethod[serviceMethod.index(after: dot)...]))
    }

    private static func snakeCase(_ text: String) -> String {
        String(text.map { $0 == " " ? "_" : $0 })
    }
}

extension Duration {
    /// Seconds as a `Double`, for log lines and histograms.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// Whole nanoseconds, clamped to `Int64`.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (secondsNanos, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds > 0 ? .max : .min }
        let (total, overflow2) = secondsNanos.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds > 0 ? .max : .min }
        return total
    }
}

/// Runs `call`, then `report`s how long it took and the error it threw, if
/// any, and returns or rethrows its outcome: the shape every measuring
/// interceptor has on both sides.
func measured<Response>(
    _ call: () async throws -> Response,
    report: (_ duration: Duration, _ error: (any Error)?) -> Void
) async throws -> Response {
    let clock = ContinuousClock()
    let start = clock.now
    do {
        let response = try await call()
        report(clock.now - start, nil)
        return response
    } catch {
        report(clock.now - start, error)
        throw error
    }
}
