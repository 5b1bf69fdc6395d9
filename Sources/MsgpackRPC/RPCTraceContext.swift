/// A W3C Trace Context (https://www.w3.org/TR/trace-context/) carried in the
/// request header's `Traceparent` and `Tracestate` keys, so that a server can
/// continue the caller's trace.
///
/// The strings travel as they are; this layer does not parse them (the
/// tracing layer above does), it only carries them.
public struct RPCTraceContext: Hashable, Sendable {
    /// The `traceparent` value, e.g. `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
    public var traceParent: String
    /// The `tracestate` value; empty when there is none (then it is not sent).
    public var traceState: String

    /// A trace context of the given `traceparent` and `tracestate` values.
    public init(traceParent: String, traceState: String = "") {
        self.traceParent = traceParent
        self.traceState = traceState
    }
}
