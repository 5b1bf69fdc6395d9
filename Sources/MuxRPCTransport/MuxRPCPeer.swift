public import MsgpackRPC
public import NIOCore
public import Yamux

/// The other end of a Nomad-mode yamux session, to call: from a server, the
/// client node that dialled it; from a client, the server it dialled.
///
/// Nomad's servers call their client nodes back over the session each node
/// opened, so that a node behind NAT stays reachable: the server opens a
/// yamux stream on that session and starts it with 0x01 (net/rpc) or 0x05
/// (a streaming call), as a client would. A `MuxRPCPeer` makes those calls.
///
/// A handler gets the peer of the session its call came in on from its
/// context:
///
///     services.register(service: "Node", method: "Status") { (args: StatusArgs, context) in
///         guard let node = context.peer else { throw MyError.notOverASession }
///         return try await node.call("Status.Ping", RPCEmpty(), returning: Pong.self)
///     }
///
/// ``MuxRPCServer/Configuration/onPeerConnected`` hands each Nomad-mode
/// session's peer to the application as it starts. The node answers only
/// when its connection was made with services to serve
/// (``MuxRPCConnection/Configuration/services``); otherwise it resets each
/// stream, and the call fails at once with an `RPCError` whose code says
/// when the reset landed: `.transportFailure` during the call,
/// `.streamUnusable` or `.connectionClosed` before it was written.
///
/// Each call takes a stream of its own and closes it when done, so calls may
/// run concurrently, within the session's yamux limits.
public final class MuxRPCPeer: Sendable {
    /// The session the calls go over.
    public let session: YamuxSession
    /// How each net/rpc call's client is set up.
    public let rpc: RPCClient.Configuration
    /// Limits on the values of streaming calls.
    public let streaming: RPCStreamingConfiguration

    /// A peer reached over `session`, which must be in Nomad's mode (each
    /// stream starts with its type byte).
    package init(session: YamuxSession, rpc: RPCClient.Configuration, streaming: RPCStreamingConfiguration) {
        self.session = session
        self.rpc = rpc
        self.streaming = streaming
    }

    /// The peer's address, when the session's connection has one.
    public var remoteAddress: SocketAddress? { session.channel.remoteAddress }

    /// Whether the session has ended; calls then fail at once.
    public var isClosed: Bool {
        get async { await session.isClosed }
    }

    /// Calls `method` on the peer with `arguments` over a new stream that
    /// starts with 0x01 and waits for the reply; the stream is closed after.
    ///
    /// - Throws: `RPCError` as `RPCClient.call` throws it: `.serverError`
    ///   with the peer's text, `.transportFailure`, `.streamUnusable` or
    ///   `.connectionClosed` when the peer refused the stream (a node with no services resets
    ///   it, also when its session limits refuse the stream) or the session
    ///   ended; a
    ///   `YamuxError` when no stream could be opened.
    public func call<Arguments: Encodable, Reply: Decodable>(
        _ method: String,
        _ arguments: Arguments,
        returning: Reply.Type = Reply.self,
        options: RPCCallOptions = .defaults
    ) async throws -> Reply {
        let client = try await refusedAsRPCError(method) {
            try await NomadSessionStreams.openRPC(on: session, configuration: rpc)
        }
        do {
            let reply = try await client.call(method, arguments, returning: Reply.self, options: options)
            try? await client.close()
            return reply
        } catch {
            // A stream left mid-call is reset, so the peer stops serving it.
            client.channel.triggerUserOutboundEvent(YamuxStreamResetEvent(), promise: nil)
            throw error
        }
    }

    /// Makes a streaming call to `method` on the peer, over a new stream that
    /// starts with 0x05, and lends `body` its two halves; as
    /// ``MuxRPCConnection/withStreamingCall(_:sending:receiving:_:)`` does on
    /// a client's connection.
    ///
    /// - Throws: `RPCError` `.serverError` with the peer's text when it
    ///   refused the call; `.connectionClosed` or `.transportFailure` when
    ///   the peer reset the stream (a node with no streaming services does);
    ///   a `YamuxError` when no stream could be opened; otherwise what `body`
    ///   throws.
    public func withStreamingCall<Sending: Encodable & Sendable, Receiving: Decodable & Sendable, Result>(
        _ method: String,
        sending: Sending.Type = Sending.self,
        receiving: Receiving.Type = Receiving.self,
        _ body: (RPCStreamingInbound<Receiving>, RPCStreamingWriter<Sending>) async throws -> Result
    ) async throws -> Result {
        let (opened, abort) = try await refusedAsRPCError(method) {
            try await NomadSessionStreams.openStreamingCall(on: session, method: method, configuration: streaming)
        }
        return try await RPCStreamingClient.run(opened, sending: Sending.self, receiving: Receiving.self, abort: abort, body)
    }

    /// Runs `open`; a stream the peer reset before it could be set up (a
    /// node at its stream limit refuses the SYN at once) fails with NIO's
    /// error for a closed channel, which becomes the call's typed refusal.
    private func refusedAsRPCError<Opened>(_ method: String, _ open: () async throws -> Opened) async throws -> Opened {
        do {
            return try await open()
        } catch let error as ChannelError {
            throw RPCError(
                code: .connectionClosed,
                message: "the peer closed the stream for \(method) before the call started",
                isStreamUsable: false,
                requestWasSent: false,
                cause: error
            )
        }
    }

    /// A server-streaming call to the peer: writes `arguments` as the first
    /// value, then yields each value the peer writes until it closes its
    /// side; as ``MuxRPCConnection/stream(_:_:of:)`` does.
    public func stream<Arguments: Encodable & Sendable, Frame: Decodable & Sendable>(
        _ method: String,
        _ arguments: Arguments,
        of frame: Frame.Type
    ) -> RPCServerStream<Frame> {
        RPCServerStream(writing: arguments) { body in
            try await self.withStreamingCall(method, sending: Arguments.self, receiving: Frame.self, body)
        }
    }
}

extension RPCServerContext {
    /// The other end of the Nomad-mode session this call came in on, to call
    /// back (see ``MuxRPCPeer``); nil in the other modes.
    public var peer: MuxRPCPeer? { connectionContext as? MuxRPCPeer }
}

extension RPCStreamingContext {
    /// The other end of the Nomad-mode session this streaming call came in
    /// on, to call back (see ``MuxRPCPeer``); nil on a connection of its own.
    public var peer: MuxRPCPeer? { connectionContext as? MuxRPCPeer }
}

/// Opening streams on a Nomad-mode session, for either end: each starts
/// with its type byte.
enum NomadSessionStreams {
    /// A new net/rpc stream (0x01).
    static func openRPC(on session: YamuxSession, configuration: RPCClient.Configuration) async throws -> RPCClient {
        let stream = try await session.openStream()
        return try await stream.configurePipeline { channel in
            channel.writeAndFlush(ByteBuffer(integer: NomadStreamType.rpc), promise: nil)
            return try channel.pipeline.syncOperations.addMsgpackRPCClient(configuration: configuration)
        }
    }

    /// A new streaming-call stream (0x05) with the header for `method`
    /// written, and how to abort it (RST).
    static func openStreamingCall(
        on session: YamuxSession,
        method: String,
        configuration: RPCStreamingConfiguration
    ) async throws -> (RPCStreamingClient.Opened, @Sendable () -> Void) {
        let stream = try await session.openStream()
        let channel = stream.channel
        let opened = try await stream.configurePipeline { channel in
            channel.writeAndFlush(ByteBuffer(integer: NomadStreamType.streaming), promise: nil)
            return try RPCStreamingClient.configure(channel, method: method, configuration: configuration)
        }
        return (opened, { channel.triggerUserOutboundEvent(YamuxStreamResetEvent(), promise: nil) })
    }

    /// Serves a session's inbound streams until it ends, each by its type
    /// byte: the other end's calls to this one. Limits are the session's
    /// (accept backlog, concurrent streams, windows).
    static func serveInbound(
        of session: YamuxSession,
        rpcServer: RPCServer?,
        streaming: StreamingServer?,
        peer: MuxRPCPeer?,
        resetsUnknownStreams: Bool,
        onAccept: @escaping @Sendable () -> Void = {}
    ) async {
        do {
            for try await stream in session.inboundStreams {
                onAccept()
                try? await stream.configurePipeline { channel in
                    try channel.pipeline.syncOperations.addHandler(
                        NomadStreamTypeHandler(
                            rpcServer: rpcServer, streaming: streaming, peer: peer, resetsUnknownStreams: resetsUnknownStreams
                        )
                    )
                }
            }
        } catch {
            // The session ended with an error; its connection is closing.
        }
    }
}
