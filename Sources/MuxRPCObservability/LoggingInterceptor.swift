public import Logging
public import MsgpackRPC
public import MuxRPCClientStack
import MuxRPCPool
import MuxRPCTransport

/// Logs one line per call when it ends: which method, where, which attempt,
/// how long it took and how it ended.
///
/// The same value works on both sides: register it in a client's
/// interceptors (one line per attempt) and in
/// `RPCServer.Configuration.interceptors` (one line per call served).
///
///     client call Echo.Echo ok in 0.412ms
///         rpc.side=client rpc.method=Echo.Echo rpc.endpoint=10.0.0.7:8300 rpc.attempt=1
///         rpc.duration_ms=0.412 rpc.outcome=ok
///     server call Test.Fail failed (server_error) in 0.051ms
///         rpc.side=server rpc.method=Test.Fail rpc.peer=10.0.0.9:51234 rpc.seq=7
///         rpc.duration_ms=0.051 rpc.outcome=error rpc.error_code=server_error rpc.error=boom
///
/// Defaults: successes at `.debug`, failures at `.info`. A failed call is
/// already reported to its caller by the error it throws, and net/rpc error
/// replies are often ordinary application outcomes, so neither needs to be
/// louder by default; raise ``failureLevel`` where failures are exceptional.
public struct LoggingInterceptor: ClientInterceptor, RPCServerInterceptor {
    /// Where the lines go. Its level filters as usual.
    public var logger: Logger
    /// The level of a call that succeeded.
    public var successLevel: Logger.Level
    /// The level of a call that failed.
    public var failureLevel: Logger.Level

    /// An interceptor that logs to `logger`, successes at `successLevel`
    /// and failures at `failureLevel`.
    public init(
        logger: Logger = Logger(label: "muxrpc"),
        successLevel: Logger.Level = .debug,
        failureLevel: Logger.Level = .info
    ) {
        self.logger = logger
        self.successLevel = successLevel
        self.failureLevel = failureLevel
    }

    /// Runs this interceptor around one attempt of a client call.
    public func intercept(
        _ request: ClientRequest,
        context: ClientContext,
        next: (ClientRequest, ClientContext) async throws -> ClientResponse
    ) async throws -> ClientResponse {
        // Made only when a line is written: most calls' lines are filtered out.
        let metadata = { () -> Logger.Metadata in
            [
                "rpc.side": "client",
                "rpc.method": .string(context.serviceMethod),
                "rpc.endpoint": .string(ObservabilityLabels.endpoint(context.endpoint)),
                "rpc.attempt": .stringConvertible(context.attempt),
            ]
        }
        return try await measured { try await next(request, context) } report: { duration, error in
            log(side: "client", method: context.serviceMethod, duration: duration,
                error: error, code: error.map(ObservabilityLabels.clientErrorCode), metadata: metadata)
        }
    }

    /// Runs this interceptor around one call the server serves.
    public func intercept(
        _ request: RPCServerRequest,
        context: RPCServerContext,
        next: (RPCServerRequest, RPCServerContext) async throws -> RPCServerResponse
    ) async throws -> RPCServerResponse {
        let metadata = { () -> Logger.Metadata in
            var metadata: Logger.Metadata = [
                "rpc.side": "server",
                "rpc.method": .string(context.serviceMethod),
                "rpc.seq": .stringConvertible(context.seq),
            ]
            if let peer = context.remoteAddress {
                metadata["rpc.peer"] = .string(ObservabilityLabels.endpoint(peer))
            }
            return metadata
        }
        return try await measured { try await next(request, context) } report: { duration, error in
            log(side: "server", method: context.serviceMethod, duration: duration,
                error: error, code: error.map { ObservabilityLabels.serverErrorCode($0, context: context) }, metadata: metadata)
        }
    }

    private func log(
        side: String, method: String, duration: Duration, error: (any Error)?, code: String?,
        metadata makeMetadata: () -> Logger.Metadata
    ) {
        let level = error == nil ? successLevel : failureLevel
        // Checked first so that a filtered-out call costs no formatting.
        guard logger.logLevel <= level else { return }
        let milliseconds = formatMilliseconds(duration)
        var metadata = makeMetadata()
        metadata["rpc.duration_ms"] = .string(milliseconds)
        if let error, let code {
            metadata["rpc.outcome"] = "error"
            metadata["rpc.error_code"] = .string(code)
            metadata["rpc.error"] = .string(String(describing: error))
            logger.log(level: level, "\(side) call \(method) failed (\(code)) in \(milliseconds)ms", metadata: metadata)
        } else {
            metadata["rpc.outcome"] = "ok"
            logger.log(level: level, "\(side) call \(method) ok in \(milliseconds)ms", metadata: metadata)
        }
    }
}

/// Milliseconds with three decimals ("0.412"), without Foundation's
/// `String(format:)`.
func formatMilliseconds(_ duration: Duration) -> String {
    let microseconds = max(0, duration.nanoseconds / 1_000)
    let fraction = String(microseconds % 1_000)
    return "\(microseconds / 1_000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
}
