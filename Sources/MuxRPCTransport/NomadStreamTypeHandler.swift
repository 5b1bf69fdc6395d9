import MsgpackRPC
import NIOCore

/// Reads the byte at the start of each yamux stream in Nomad's mode: an RPC
/// stream (0x01) gets the RPC server, any other kind is closed (MuxRPC
/// serves no Nomad streaming RPC).
final class NomadStreamTypeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let rpcServer: RPCServer
    private var done = false

    init(rpcServer: RPCServer) {
        self.rpcServer = rpcServer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else {
            context.fireChannelRead(data)
            return
        }
        var bytes = unwrapInboundIn(data)
        guard let type = bytes.readInteger(as: UInt8.self) else { return }
        done = true
        guard type == NomadStreamType.rpc else {
            context.close(promise: nil)
            return
        }
        let rpcServer = self.rpcServer
        context.replaceHandler(
            installing: { try context.pipeline.syncOperations.addMsgpackRPCServer(rpcServer) },
            forwarding: bytes
        )
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
