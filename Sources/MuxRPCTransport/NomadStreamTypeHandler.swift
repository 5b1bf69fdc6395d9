import MsgpackRPC
import NIOCore
import Yamux

/// Reads the byte at the start of each yamux stream in Nomad's mode: an RPC
/// stream (0x01) gets the RPC server, a streaming call (0x05) the streaming
/// server when the server has streaming methods; any other kind is closed
/// (or reset, with `resetsUnknownStreams`).
///
/// Serves both ends of a Nomad session: a server's inbound streams, and a
/// client's, when the server calls the node that dialled it.
final class NomadStreamTypeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Nil refuses net/rpc streams, as a node with no services does.
    private let rpcServer: RPCServer?
    private let streaming: StreamingServer?
    /// The session's ``MuxRPCPeer``, handed to every handler in its context.
    private let peer: MuxRPCPeer?
    /// Reset (RST) a stream of a kind this side does not serve, instead of
    /// closing it (FIN): a node refuses what its server asks of it at once
    /// and unmistakably, as a refusal and not as an empty answer.
    private let resetsUnknownStreams: Bool
    private var done = false

    init(rpcServer: RPCServer?, streaming: StreamingServer?, peer: MuxRPCPeer? = nil, resetsUnknownStreams: Bool = false) {
        self.rpcServer = rpcServer
        self.streaming = streaming
        self.peer = peer
        self.resetsUnknownStreams = resetsUnknownStreams
    }

    private func refuse(context: ChannelHandlerContext) {
        if resetsUnknownStreams {
            context.channel.triggerUserOutboundEvent(YamuxStreamResetEvent(), promise: nil)
        } else {
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else {
            context.fireChannelRead(data)
            return
        }
        var bytes = unwrapInboundIn(data)
        guard let type = bytes.readInteger(as: UInt8.self) else { return }
        done = true
        switch type {
        case NomadStreamType.rpc:
            guard let rpcServer else {
                refuse(context: context)
                return
            }
            let peer = self.peer
            context.replaceHandler(
                installing: { try context.pipeline.syncOperations.addMsgpackRPCServer(rpcServer, connectionContext: peer) },
                forwarding: bytes
            )
        case NomadStreamType.streaming:
            guard let streaming else {
                refuse(context: context)
                return
            }
            let peer = self.peer
            context.replaceHandler(
                installing: { try streaming.install(on: context.channel, connectionContext: peer, abort: StreamingServer.resetYamuxStream) },
                forwarding: bytes
            )
        default:
            refuse(context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client closed its side before saying what the stream is for:
        // nothing will follow, so close ours and let the stream go.
        if !done, case ChannelEvent.inputClosed = event {
            done = true
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// A server's streaming methods and their settings, installed on each
/// stream (or connection) that opens a streaming call.
struct StreamingServer: Sendable {
    let registry: RPCStreamingRegistry
    let configuration: RPCStreamingConfiguration

    func install(
        on channel: any Channel,
        connectionContext: (any Sendable)? = nil,
        abort: @escaping @Sendable (any Channel) -> Void
    ) throws {
        try channel.pipeline.syncOperations.addMsgpackRPCStreamingServer(
            registry, configuration: configuration, connectionContext: connectionContext, abort: abort
        )
    }

    /// Aborts a streaming call on a yamux stream: RST.
    static let resetYamuxStream: @Sendable (any Channel) -> Void = { channel in
        channel.triggerUserOutboundEvent(YamuxStreamResetEvent(), promise: nil)
    }

    /// Aborts a streaming call that has a connection of its own: close it.
    static let closeConnection: @Sendable (any Channel) -> Void = { channel in
        channel.close(promise: nil)
    }
}
