/// Per-call settings for ``RPCClient/call(_:_:returning:options:)``.
public struct RPCCallOptions: Sendable {
    /// Fail the call with ``RPCError/Code/deadlineExceeded`` if no reply came
    /// within this long. Combined with ``deadline``, the earlier one wins.
    public var timeout: Duration?
    /// An absolute deadline for the call.
    public var deadline: RPCDeadline?
    /// Send the effective deadline in the request header (`Deadline`), so a
    /// server of ours stops work the caller no longer waits for. Go servers
    /// ignore the key. Default true.
    public var propagatesDeadline: Bool
    /// A W3C trace context to send in the header (`Traceparent`, `Tracestate`).
    public var traceContext: RPCTraceContext?
    /// The call is a blocking query that the server may hold this long
    /// (Consul's and Nomad's `MaxQueryTime`): a long call by design.
    ///
    /// `MuxRPCClient` then gives a call that sets no ``timeout`` or
    /// ``deadline`` the blocking time, its jitter and a hold margin instead
    /// of its short default timeout, and keeps the call's latency out of
    /// the endpoint's latency average (see ``RPCBlockingQueryPolicy``,
    /// which also caps the time: 0 or less means the server's default). It
    /// sets this itself, capped, for arguments that adopt
    /// ``RPCBlockingQueryArguments``. An explicit ``timeout`` or
    /// ``deadline`` still wins: a caller may give up sooner.
    ///
    /// ``RPCClient`` and `ConnectionPool` have no default timeout, and take
    /// the timeout and deadline as given. Nil by default: not a blocking query.
    public var blockingQueryTime: Duration?

    /// Options with every setting given; by default none is set and the
    /// deadline, when there is one, is sent.
    public init(
        timeout: Duration? = nil,
        deadline: RPCDeadline? = nil,
        propagatesDeadline: Bool = true,
        traceContext: RPCTraceContext? = nil,
        blockingQueryTime: Duration? = nil
    ) {
        self.timeout = timeout
        self.deadline = deadline
        self.propagatesDeadline = propagatesDeadline
        self.traceContext = traceContext
        self.blockingQueryTime = blockingQueryTime
    }

    /// No timeout, no deadline, no trace context.
    public static var defaults: RPCCallOptions { RPCCallOptions() }

    /// The earlier of ``deadline`` and now + ``timeout``. Read it once when a
    /// call starts: with a timeout, each read is a new "now".
    public var effectiveDeadline: RPCDeadline? {
        switch (deadline, timeout) {
        case (nil, nil): nil
        case (let deadline?, nil): deadline
        case (nil, let timeout?): RPCDeadline.after(timeout)
        case (let deadline?, let timeout?): min(deadline, RPCDeadline.after(timeout))
        }
    }
}
