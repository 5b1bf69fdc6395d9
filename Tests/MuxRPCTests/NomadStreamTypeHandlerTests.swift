import DemoServices
import MsgpackRPC
@testable import MuxRPCTransport
import NIOCore
import NIOEmbedded
import Testing
import Yamux

/// Records the RSTs asked of a stream: what a yamux stream channel would
/// turn into a reset frame.
private final class ResetRecorder: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var resets = 0

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        if event is YamuxStreamResetEvent { resets += 1 }
        context.triggerUserOutboundEvent(event, promise: promise)
    }
}

/// The stream-type byte's routing, without sockets: what a stream of each
/// kind gets on a node (resets what it does not serve) and on a server
/// (closes it, as Nomad does).
@Suite("Nomad stream-type routing")
struct NomadStreamTypeHandlerTests {
    private func run(_ bytes: [UInt8], rpc: Bool, resets: Bool) throws -> (resets: Int, isActive: Bool) {
        let channel = EmbeddedChannel()
        let recorder = ResetRecorder()
        try channel.pipeline.syncOperations.addHandler(recorder)
        let server = rpc ? RPCServer(registry: DemoServices.registry) : nil
        try channel.pipeline.syncOperations.addHandler(
            NomadStreamTypeHandler(rpcServer: server, streaming: nil, resetsUnknownStreams: resets)
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        let active = channel.isActive
        _ = try? channel.finish()
        return (recorder.resets, active)
    }

    @Test("a node resets a stream with an unknown type byte")
    func nodeResetsUnknownByte() throws {
        let outcome = try run([0x07, 0x01], rpc: true, resets: true)
        #expect(outcome.resets == 1)
    }

    @Test("a node with no net/rpc services resets a 0x01 stream; without streaming services, a 0x05 stream")
    func nodeResetsWhatItDoesNotServe() throws {
        #expect(try run([0x01], rpc: false, resets: true).resets == 1)
        #expect(try run([0x05], rpc: true, resets: true).resets == 1)
    }

    @Test("a node serves a 0x01 stream when it has services: no reset, the stream stays open")
    func nodeServesRPC() throws {
        let outcome = try run([0x01], rpc: true, resets: true)
        #expect(outcome.resets == 0)
        #expect(outcome.isActive)
    }

    @Test("a server closes a stream with an unknown type byte (FIN, as Nomad), without a reset")
    func serverClosesUnknownByte() throws {
        let outcome = try run([0x07], rpc: true, resets: false)
        #expect(outcome.resets == 0)
        #expect(!outcome.isActive)
    }
}
