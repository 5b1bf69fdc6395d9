public import MsgpackRPC
import NIOCore
import Yamux

extension MuxRPCConnection {
    /// Makes a streaming call to `method` (Nomad's streaming RPC) and lends
    /// `body` its two halves: the values the server writes, decoded as
    /// `Receiving`, and a writer of `Sending` values.
    ///
    /// In Nomad's multiplexed mode the call takes a new yamux stream that
    /// starts with 0x05; in plain mode, a new TCP connection whose first byte
    /// is 0x05 (Nomad's older form: one call per connection). The header
    /// naming `method` goes first, and `body` runs once the server has
    /// acknowledged it. When `body` returns, this side closes (FIN after
    /// what was written) and the stream ends; when it throws or the task is
    /// cancelled, the stream is reset, which cancels the server's handler.
    ///
    ///     try await connection.withStreamingCall("Stream.Echo", sending: Frame.self, receiving: Frame.self) { inbound, writer in
    ///         try await writer.write(Frame(n: 1))
    ///         writer.finish()
    ///         for try await echo in inbound { … }
    ///     }
    ///
    /// A Go peer built on hashicorp/yamux cannot read once it has closed its
    /// side, so a server written in Go may stop answering after `finish()`:
    /// with such peers, read what you expect before finishing.
    ///
    /// - Throws: `RPCError` `.serverError` with the server's text when it
    ///   refused the call (no such method); `MuxRPCError` `.invalidConfiguration`
    ///   in Consul's mode, whose streams are all net/rpc; what
    ///   ``openStream()`` throws when no stream could be opened; otherwise
    ///   what `body` throws.
    public func withStreamingCall<Sending: Encodable & Sendable, Receiving: Decodable & Sendable, Result>(
        _ method: String,
        sending: Sending.Type = Sending.self,
        receiving: Receiving.Type = Receiving.self,
        _ body: (RPCStreamingInbound<Receiving>, RPCStreamingWriter<Sending>) async throws -> Result
    ) async throws -> Result {
        let (opened, abort) = try await openStreamingCall(method)
        return try await RPCStreamingClient.run(opened, sending: Sending.self, receiving: Receiving.self, abort: abort, body)
    }

    /// A server-streaming call: writes `arguments` as the call's first value,
    /// then yields each value the server writes, decoded as `Frame`, until
    /// the server closes its side. The call starts at the first iteration;
    /// this side stays open while values come, as Nomad's servers take a
    /// caller's close for the end of its interest.
    ///
    ///     for try await frame in connection.stream("Stream.Count", CountArgs(count: 10), of: CountFrame.self) { … }
    ///
    /// Cancelling the iterating task (or dropping the iterator early) resets
    /// the stream, which cancels the server's handler.
    public func stream<Arguments: Encodable & Sendable, Frame: Decodable & Sendable>(
        _ method: String,
        _ arguments: Arguments,
        of frame: Frame.Type
    ) -> RPCServerStream<Frame> {
        RPCServerStream(writing: arguments) { body in
            try await self.withStreamingCall(method, sending: Arguments.self, receiving: Frame.self, body)
        }
    }

    /// A new stream (or connection) with the call's header written, and how
    /// to abort it.
    private func openStreamingCall(_ method: String) async throws -> (RPCStreamingClient.Opened, @Sendable () -> Void) {
        let configuration = self.configuration
        switch configuration.mode {
        case .nomadMultiplex:
            guard let session else { preconditionFailure("a multiplexed connection has a session") }
            return try await NomadSessionStreams.openStreamingCall(on: session, method: method, configuration: configuration.streaming)
        case .plain:
            let channel = try await Self.dial(address, configuration: configuration, group: group)
            let opened = try await channel.eventLoop.submit {
                try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
                try configuration.sendPreamble(on: channel, byte: ConnectionPreambleByte.nomadStreaming)
                return try RPCStreamingClient.configure(channel, method: method, configuration: configuration.streaming)
            }.get()
            return (opened, { channel.close(promise: nil) })
        case .consulMultiplex:
            throw MuxRPCError.invalidConfiguration(
                "connection",
                "streaming calls need Nomad's multiplexed mode (0x06) or plain mode (a connection per call, 0x05); in Consul's mode every stream is net/rpc"
            )
        }
    }
}
