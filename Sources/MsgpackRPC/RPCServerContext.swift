public import NIOCore

/// What a service handler knows about the call it serves.
public struct RPCServerContext: Sendable {
    /// "Service.Method" as the caller sent it.
    public var serviceMethod: String
    /// The request's sequence number.
    public var seq: UInt64
    /// The caller's deadline (from the `Deadline` header extension), if any.
    /// The server cancels the handler's task when it passes, and answers with
    /// an error; a handler may check it to give up earlier or to pass it on.
    public var deadline: RPCDeadline?
    /// The caller's trace context (`Traceparent` / `Tracestate`), if any.
    public var traceContext: RPCTraceContext?
    /// The peer's address, when the stream has one.
    public var remoteAddress: SocketAddress?
    /// The stream's event loop.
    public var eventLoop: any EventLoop
    /// A value the transport attaches to every call of one connection, nil
    /// when it attaches none. MuxRPC's transport puts there what lets a
    /// handler call back the client behind the connection (read it through
    /// `MuxRPCTransport`'s `peer` property); MsgpackRPC never looks inside.
    public var connectionContext: (any Sendable)?

    /// A context with every value given. The server makes one for each
    /// request; make your own to test a handler or an interceptor.
    public init(
        serviceMethod: String,
        seq: UInt64,
        deadline: RPCDeadline? = nil,
        traceContext: RPCTraceContext? = nil,
        remoteAddress: SocketAddress? = nil,
        eventLoop: any EventLoop,
        connectionContext: (any Sendable)? = nil
    ) {
        self.connectionContext = connectionContext
        self.serviceMethod = serviceMethod
        self.seq = seq
        self.deadline = deadline
        self.traceContext = traceContext
        self.remoteAddress = remoteAddress
        self.eventLoop = eventLoop
    }
}
