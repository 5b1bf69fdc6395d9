public import MsgpackRPC
public import NIOCore
import MuxRPCTransport

extension ConnectionPool {
    /// A streaming call (Nomad's streaming RPC) to `method` on `address`, on
    /// a stream of its own on one of the pool's sessions: `body` gets the
    /// values the server writes and a writer for the values it sends, as
    /// `MuxRPCConnection.withStreamingCall` gives them.
    ///
    /// The call counts as a call in flight on the address, within
    /// ``Configuration/maxConcurrentCallsPerAddress`` and the session's
    /// stream limit, for as long as `body` runs. Its stream never goes back
    /// to the free list: a streaming call's stream carries nothing after it.
    /// Cancelling the task resets the stream, which ends both sequences and
    /// the server's handler.
    ///
    /// Streaming calls need sessions whose streams say what they carry:
    /// ``Configuration/connection``'s mode must be Nomad's.
    ///
    /// - Parameters:
    ///   - address: the server.
    ///   - method: the streaming method, "Service.Method".
    ///   - sending: the type of the values the caller writes.
    ///   - receiving: the type the server's values are decoded as.
    ///   - deadline: bounds the wait for a session with room (the call
    ///     itself runs until `body` returns).
    ///   - body: the call: reads the server's values and writes its own;
    ///     what it returns, this returns.
    /// - Throws: `MuxRPCError` when no stream could be had, or what the call
    ///   or `body` throws.
    public func withStreamingCall<Sending: Encodable & Sendable, Receiving: Decodable & Sendable, Result>(
        to address: SocketAddress,
        _ method: String,
        sending: Sending.Type = Sending.self,
        receiving: Receiving.Type = Receiving.self,
        deadline: RPCDeadline? = nil,
        _ body: (RPCStreamingInbound<Receiving>, RPCStreamingWriter<Sending>) async throws -> Result
    ) async throws -> Result {
        let decision = try decide(address, deadline: deadline, movingPick: false)
        let grant = try await settle(decision, address: address, deadline: deadline, movingPick: false)
        let connection: MuxRPCConnection
        switch grant {
        case .newStream(let granted, _):
            connection = granted
        case .idleStream(let idle, let lease):
            // An idle stream carries net/rpc calls: it stays for them, and
            // this call opens its own stream on the same session.
            guard let granted = returnIdleKeepingLease(idle, lease) else {
                Self.discard(idle)
                update { $0.releaseStreamingCall(lease, now: .now()) }
                throw MuxRPCError(code: .streamOpenFailed, message: "the session closed before the streaming call began", address: address)
            }
            connection = granted
        }
        defer { update { $0.releaseStreamingCall(grant.lease, now: .now()) } }
        return try await connection.withStreamingCall(method, sending: Sending.self, receiving: Receiving.self, body)
    }

    /// A server-streaming call on the pool: writes `arguments` as the call's
    /// first value, then yields each value the server writes, decoded as
    /// `Frame`, until the server closes its side. The call starts at the
    /// first iteration; ending the iteration early resets the stream.
    public func stream<Arguments: Encodable & Sendable, Frame: Decodable & Sendable>(
        to address: SocketAddress,
        _ method: String,
        _ arguments: Arguments,
        of frame: Frame.Type,
        deadline: RPCDeadline? = nil
    ) -> RPCServerStream<Frame> {
        RPCServerStream(writing: arguments) { body in
            try await self.withStreamingCall(to: address, method, sending: Arguments.self, receiving: Frame.self, deadline: deadline, body)
        }
    }
}
