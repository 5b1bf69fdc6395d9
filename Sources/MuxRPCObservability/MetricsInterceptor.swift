public import CoreMetrics
import Metrics
public import MsgpackRPC
import NIOCore
import Synchronization
public import MuxRPCClientStack
import MuxRPCPool
import MuxRPCTransport

/// Counts calls and errors and measures latency, per method (and, on the
/// client, per endpoint), with swift-metrics.
///
/// The same instance works on both sides; it records under different names
/// depending on which protocol ran it:
///
/// | metric | kind | labels |
/// | --- | --- | --- |
/// | `muxrpc_client_calls_total` | counter | `method`, `endpoint` |
/// | `muxrpc_client_errors_total` | counter | `method`, `endpoint`, `code` |
/// | `muxrpc_client_call_duration_seconds` | timer (histogram) | `method`, `endpoint` |
/// | `muxrpc_server_calls_total` | counter | `method` |
/// | `muxrpc_server_errors_total` | counter | `method`, `code` |
/// | `muxrpc_server_call_duration_seconds` | timer (histogram) | `method` |
///
/// Every call (attempt, on the client) is counted in `calls_total` and timed,
/// failed or not; a failed one is also counted in `errors_total` under its
/// code: the `RPCError` or `MuxRPCError` code in snake_case
/// (`server_error`, `deadline_exceeded`, `connection_refused`,
/// `rate_limited`, ...), `cancelled` for a cancelled task, `unknown` for any
/// other error. The metric objects are made
/// once per label set and kept, so a call costs a dictionary lookup under a
/// lock, not a trip through the backend's registry.
public final class MetricsInterceptor: ClientInterceptor, RPCServerInterceptor, Sendable {
    /// Keyed by the address itself: its "host:port" text is made only when
    /// a label set is first seen, not on every call.
    private struct Key: Hashable {
        var client: Bool
        var method: String
        var endpoint: SocketAddress?
    }

    private struct Instruments: Sendable {
        var calls: Counter
        var latency: Timer
        var errors: [String: Counter] = [:]
    }

    private let factory: any MetricsFactory
    private let instruments = Mutex<[Key: Instruments]>([:])

    /// - Parameter factory: where the metrics go. Default: the global
    ///   factory as it is now (`MetricsSystem.bootstrap` first); tests pass a
    ///   `TestMetrics`.
    public init(factory: (any MetricsFactory)? = nil) {
        self.factory = factory ?? MetricsSystem.factory
    }

    /// Runs this interceptor around one attempt of a client call.
    public func intercept(
        _ request: ClientRequest,
        context: ClientContext,
        next: (ClientRequest, ClientContext) async throws -> ClientResponse
    ) async throws -> ClientResponse {
        let key = Key(client: true, method: context.serviceMethod, endpoint: context.endpoint)
        return try await measured { try await next(request, context) } report: { duration, error in
            record(key, duration: duration, errorCode: error.map(ObservabilityLabels.clientErrorCode))
        }
    }

    /// Runs this interceptor around one call the server serves.
    public func intercept(
        _ request: RPCServerRequest,
        context: RPCServerContext,
        next: (RPCServerRequest, RPCServerContext) async throws -> RPCServerResponse
    ) async throws -> RPCServerResponse {
        let key = Key(client: false, method: context.serviceMethod, endpoint: nil)
        return try await measured { try await next(request, context) } report: { duration, error in
            record(key, duration: duration, errorCode: error.map { ObservabilityLabels.serverErrorCode($0, context: context) })
        }
    }

    private func record(_ key: Key, duration: Duration, errorCode: String?) {
        let (calls, latency, errors) = instruments.withLock { instruments in
            var entry = instruments[key] ?? makeInstruments(key)
            var errors: Counter?
            if let errorCode {
                let counter = entry.errors[errorCode] ?? makeCounter(
                    key.client ? "muxrpc_client_errors_total" : "muxrpc_server_errors_total",
                    dimensions(key) + [("code", errorCode)])
                entry.errors[errorCode] = counter
                errors = counter
            }
            instruments[key] = entry
            return (entry.calls, entry.latency, errors)
        }
        // Recorded outside the lock: backends take their own.
        calls.increment()
        latency.recordNanoseconds(duration.nanoseconds)
        errors?.increment()
    }

    private func makeInstruments(_ key: Key) -> Instruments {
        let side = key.client ? "client" : "server"
        return Instruments(
            calls: makeCounter("muxrpc_\(side)_calls_total", dimensions(key)),
            latency: Timer(label: "muxrpc_\(side)_call_duration_seconds", dimensions: dimensions(key), factory: factory)
        )
    }

    private func makeCounter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        Counter(label: label, dimensions: dimensions, factory: factory)
    }

    private func dimensions(_ key: Key) -> [(String, String)] {
        key.client ? [("method", key.method), ("endpoint", ObservabilityLabels.endpoint(key.endpoint))] : [("method", key.method)]
    }
}
