public import MsgpackRPC
import MuxRPCPool
import MuxRPCTransport

extension MuxRPCClient {
    /// A streaming call (Nomad's streaming RPC) to `method` on one of the
    /// servers: `body` gets the values the server writes and a writer for the
    /// values it sends.
    ///
    /// The balancer picks the server among those its circuit breakers admit,
    /// as for any call, and the call counts as in flight on it while `body`
    /// runs. The client's `defaultTimeout` (or `deadline`) bounds only the
    /// wait for a stream: a stream runs for as long as `body` wants it.
    /// The call is not retried, since values may already have been
    /// exchanged. Its latency is not fed to the balancer; a failure of the
    /// endpoint (refused, dropped) counts against its breaker.
    ///
    /// Streaming calls need Nomad's mode (`Configuration(mode: .nomad)`).
    /// Cancelling the task resets the stream, which ends both sequences and
    /// the server's handler.
    public func withStreamingCall<Sending: Encodable & Sendable, Receiving: Decodable & Sendable, Result>(
        _ method: String,
        sending: Sending.Type = Sending.self,
        receiving: Receiving.Type = Receiving.self,
        deadline: RPCDeadline? = nil,
        _ body: (RPCStreamingInbound<Receiving>, RPCStreamingWriter<Sending>) async throws -> Result
    ) async throws -> Result {
        let deadline = deadline ?? configuration.defaultTimeout.map { RPCDeadline.after($0) }
        try await waitForEndpoints(until: deadline)
        let clock = ContinuousClock()
        let address = try pool.pickEndpoint(with: configuration.loadBalancer, excluding: [], at: clock.now)
        do {
            let result = try await pool.withStreamingCall(
                to: address, method, sending: Sending.self, receiving: Receiving.self, deadline: deadline, body
            )
            pool.finishAttempt(at: address, .answered, latency: nil, at: clock.now, releasingPick: true)
            return result
        } catch {
            pool.finishAttempt(at: address, CallFailure(error).outcome, latency: nil, at: clock.now, releasingPick: true)
            throw error
        }
    }

    /// A server-streaming call: writes `arguments` as the call's first value,
    /// then yields each value the server writes, decoded as `Frame`, until
    /// the server closes its side.
    ///
    /// ```swift
    /// for try await frame in client.stream("FileSystem.Logs", request, of: StreamFrame.self) {
    ///     print(frame)
    /// }
    /// ```
    ///
    /// The call starts at the first iteration; ending the iteration early
    /// resets the stream.
    public func stream<Arguments: Encodable & Sendable, Frame: Decodable & Sendable>(
        _ method: String,
        _ arguments: Arguments,
        of frame: Frame.Type,
        deadline: RPCDeadline? = nil
    ) -> RPCServerStream<Frame> {
        RPCServerStream(writing: arguments) { body in
            try await self.withStreamingCall(method, sending: Arguments.self, receiving: Frame.self, deadline: deadline, body)
        }
    }
}
