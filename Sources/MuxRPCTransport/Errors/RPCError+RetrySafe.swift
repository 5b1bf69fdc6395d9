public import MsgpackRPC

extension RPCError {
    /// Whether trying the call again, on this server later or on another,
    /// is safe and may succeed: the request was not sent (`requestWasSent`
    /// is false), and the failure is not a passed deadline, a cancellation
    /// or arguments that do not encode, which another attempt would repeat.
    /// `MuxRPCClient` retries exactly these, within its retry budget.
    public var isRetrySafe: Bool { CallFailure(self).isRetrySafe }
}
