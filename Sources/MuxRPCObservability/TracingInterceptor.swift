import NIOCore
public import MsgpackRPC
public import Tracing
public import MuxRPCClientStack
import MuxRPCPool
import MuxRPCTransport

/// A span per call with swift-distributed-tracing, and the trace carried to
/// the server in the request header (W3C `traceparent` / `tracestate`, as
/// `RPCTraceContext`), so that a server of ours continues the caller's
/// trace.
///
/// On the client (per attempt): a span of kind `.client` named after the
/// method ("Echo.Echo"), a child of the task's current `ServiceContext`; its
/// context is injected with the tracer's `inject` into a carrier whose
/// `traceparent` and `tracestate` entries become
/// `RPCCallOptions.traceContext`. Other keys a tracer injects have no place
/// in the header and are dropped, so use a tracer that propagates W3C Trace
/// Context (swift-otel does by default). When the tracer injects no
/// `traceparent`, the request's trace context is left as it was.
///
/// On the server: the caller's context is extracted from
/// `RPCServerContext.traceContext`, a span of kind `.server` starts as its
/// child, and the rest of the chain and the handler run with that span's
/// context as `ServiceContext.current`, so their own spans nest under it.
///
/// Attributes: `rpc.system` = `muxrpc`, `rpc.service`, `rpc.method` (the two
/// halves of "Service.Method", as OpenTelemetry names them); on the client
/// `server.address`, `muxrpc.endpoint` and `muxrpc.attempt`, on the server
/// `muxrpc.seq` and `client.address` when the peer is known. A failure is
/// recorded on the span (`recordError`, status `.error`) with
/// `muxrpc.error_code`.
public struct TracingInterceptor: ClientInterceptor, RPCServerInterceptor {
    private let tracer: (any Tracer)?

    /// - Parameter tracer: the tracer (and instrument, for inject/extract).
    ///   Default nil: the global `InstrumentationSystem.tracer`, looked up
    ///   per call so that bootstrapping later still takes effect.
    public init(tracer: (any Tracer)? = nil) {
        self.tracer = tracer
    }

    /// Runs this interceptor around one attempt of a client call.
    public func intercept(
        _ request: ClientRequest,
        context: ClientContext,
        next: (ClientRequest, ClientContext) async throws -> ClientResponse
    ) async throws -> ClientResponse {
        let tracer = self.tracer ?? InstrumentationSystem.tracer
        let span = tracer.startSpan(context.serviceMethod, context: ServiceContext.current ?? .topLevel, ofKind: .client)
        defer { span.end() }
        let (service, method) = ObservabilityLabels.split(context.serviceMethod)
        let endpoint = ObservabilityLabels.endpoint(context.endpoint)
        span.updateAttributes { attributes in
            attributes["rpc.system"] = "muxrpc"
            attributes["rpc.service"] = service
            attributes["rpc.method"] = method
            attributes["muxrpc.endpoint"] = endpoint
            attributes["muxrpc.attempt"] = context.attempt
            if let host = context.endpoint.ipAddress { attributes["server.address"] = host }
            if let port = context.endpoint.port { attributes["server.port"] = port }
        }

        var request = request
        var carrier: [String: String] = [:]
        tracer.inject(span.context, into: &carrier, using: TraceHeaderInjector())
        if let traceParent = carrier["traceparent"] {
            request.options.traceContext = RPCTraceContext(traceParent: traceParent, traceState: carrier["tracestate"] ?? "")
        }
        do {
            return try await ServiceContext.withValue(span.context) {
                try await next(request, context)
            }
        } catch {
            record(error, code: ObservabilityLabels.clientErrorCode(error), on: span)
            throw error
        }
    }

    /// Runs this interceptor around one call the server serves.
    public func intercept(
        _ request: RPCServerRequest,
        context: RPCServerContext,
        next: (RPCServerRequest, RPCServerContext) async throws -> RPCServerResponse
    ) async throws -> RPCServerResponse {
        let tracer = self.tracer ?? InstrumentationSystem.tracer
        var parent = ServiceContext.current ?? .topLevel
        if let traceContext = context.traceContext {
            var carrier = ["traceparent": traceContext.traceParent]
            if !traceContext.traceState.isEmpty { carrier["tracestate"] = traceContext.traceState }
            tracer.extract(carrier, into: &parent, using: TraceHeaderExtractor())
        }
        let span = tracer.startSpan(context.serviceMethod, context: parent, ofKind: .server)
        defer { span.end() }
        let (service, method) = ObservabilityLabels.split(context.serviceMethod)
        span.updateAttributes { attributes in
            attributes["rpc.system"] = "muxrpc"
            attributes["rpc.service"] = service
            attributes["rpc.method"] = method
            attributes["muxrpc.seq"] = Int64(truncatingIfNeeded: context.seq)
            if let peer = context.remoteAddress, let host = peer.ipAddress {
                attributes["client.address"] = host
                if let port = peer.port { attributes["client.port"] = port }
            }
        }
        do {
            return try await ServiceContext.withValue(span.context) {
                try await next(request, context)
            }
        } catch {
            record(error, code: ObservabilityLabels.serverErrorCode(error, context: context), on: span)
            throw error
        }
    }

    private func record(_ error: any Error, code: String, on span: any Span) {
        span.recordError(error)
        span.attributes["muxrpc.error_code"] = code
        span.setStatus(SpanStatus(code: .error, message: code))
    }
}

/// Writes injected values into a `[String: String]`, keys lower-cased
/// (W3C names are lower-case; HTTP-minded tracers may capitalise).
struct TraceHeaderInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key.lowercased()] = value
    }
}

/// Reads `traceparent` / `tracestate` for a tracer's `extract`.
struct TraceHeaderExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key.lowercased()]
    }
}
