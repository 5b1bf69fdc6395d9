import MsgpackRPC
import NIOCore
import Yamux

/// Reads the byte at the start of each yamux stream in Nomad's mode: an RPC
/// stream (0x01) gets the RPC server, a streaming call (0x05) the streaming
/// server when the server has streaming methods; any other kind is closed.
final class NomadStreamTypeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let rpcServer: RPCServer
    private let streaming: StreamingServer?
    private var done = false

    init(rpcServer: RPCServer, streaming: StreamingServer?) {
        self.rpcServer = rpcServer
        self.streaming = streaming
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
            let rpcServer = self.rpcServer
            context.replaceHandler(
                installing: { try context.pipeline.syncOperations.addMsgpackRPCServer(rpcServer) },
                forwarding: bytes
            )
        case NomadStreamType.streaming:
            guard let streaming else {
                context.close(promise: nil)
                return
            }
            context.replaceHandler(
                installing: { try streaming.install(on: context.channel, abort: StreamingServer.resetYamuxStream) },
                forwarding: bytes
            )
        default:
            context.close(promise: nil)
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

    func install(on channel: any Channel, abort: @escaping @Sendable (any Channel) -> Void) throws {
        try channel.pipeline.syncOperations.addMsgpackRPCStreamingServer(registry, configuration: configuration, abort: abort)
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
