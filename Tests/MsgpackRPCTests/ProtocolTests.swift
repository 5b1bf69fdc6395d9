import DemoServices
import MessagePack
import MsgpackRPC
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// A fake server that answers every request with Seq + `seqOffset`.
private final class WrongSeqServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var header: RPCRequestHeader?
    private let seqOffset: UInt64

    init(seqOffset: UInt64) { self.seqOffset = seqOffset }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard let header else {
            self.header = try? RPCRequestHeader(from: message)
            return
        }
        self.header = nil
        var response = context.channel.allocator.buffer(capacity: 64)
        RPCResponseHeader(serviceMethod: header.serviceMethod, seq: header.seq &+ seqOffset).write(to: &response)
        response.writeInteger(UInt8(0x80))
        context.writeAndFlush(wrapOutboundOut(response), promise: nil)
    }
}

/// A fake server that answers anything with fixed raw bytes.
private final class RawReplyServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let reply: ByteBuffer

    init(reply: ByteBuffer) { self.reply = reply }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
    }
}

/// Collects every message a raw channel receives.
private final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let stream: AsyncStream<ByteBuffer>
    private let continuation: AsyncStream<ByteBuffer>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        continuation.yield(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
    }
}

/// Connects a raw channel that frames replies and collects them.
private func connectRaw(port: Int) async throws -> (any Channel, Collector) {
    let collector = Collector()
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(RPCMessageFramer())
                try channel.pipeline.syncOperations.addHandler(collector)
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    return (channel, collector)
}

@Suite(.timeLimit(.minutes(5))) struct ProtocolTests {
    @Test func seqMismatchIsAProtocolViolationThatDiscardsTheStream() async throws {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RPCMessageFramer())
                    try channel.pipeline.syncOperations.addHandler(WrongSeqServerHandler(seqOffset: 1))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try await connectRPCClient(port: listener.localAddress!.port!)
        let error = await expectRPCError { _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self) }
        #expect(error?.code == .protocolViolation)
        #expect(error?.message.contains("Seq 2 does not match request Seq 1") == true)
        #expect(error?.isStreamUsable == false)
        #expect(!client.isUsable)
        let next = await expectRPCError { _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self) }
        #expect(next?.code == .streamUnusable)
        try await client.close()
        try await listener.close()
    }

    /// Arith.Add and Test.Fail registered as async methods, or inline.
    static func addAndFail(inline: Bool) -> RPCServiceRegistry {
        var registry = RPCServiceRegistry()
        let add: @Sendable (AddArgs, RPCServerContext) throws -> AddReply = { arguments, _ in AddReply(sum: arguments.a &+ arguments.b) }
        let fail: @Sendable (DemoServices.FailArgs, RPCServerContext) throws -> RPCEmpty = { arguments, _ in
            throw RPCError(serverError: arguments.message)
        }
        if inline {
            registry.registerInline(service: "Arith", method: "Add", add)
            registry.registerInline(service: "Test", method: "Fail", fail)
        } else {
            registry.register(service: "Arith", method: "Add") { arguments, context in try add(arguments, context) }
            registry.register(service: "Test", method: "Fail") { arguments, context in try fail(arguments, context) }
        }
        return registry
    }

    /// Many requests in one write: inline methods answer each as it is read,
    /// async ones queue behind the one running; both in order, without
    /// nesting (thousands of inline calls would overflow the stack if each
    /// answered request served the next from inside itself).
    @Test("pipelined requests are answered in order", arguments: [false, true])
    func pipelinedRequestsAreAnsweredInOrder(inline: Bool) async throws {
        let count: UInt64 = 5_000
        let server = try await RPCTestServer.start(registry: Self.addAndFail(inline: inline))
        let (channel, collector) = try await connectRaw(port: server.port)
        var requests = ByteBuffer()
        for seq in 1...count {
            RPCRequestHeader(serviceMethod: seq % 5 == 0 ? "Test.Fail" : "Arith.Add", seq: seq).write(to: &requests)
            if seq % 5 == 0 {
                try MessagePackEncoder().encode(DemoServices.FailArgs(message: "fail \(seq)"), into: &requests)
            } else {
                try MessagePackEncoder().encode(AddArgs(a: Int64(seq), b: 100), into: &requests)
            }
        }
        try await channel.writeAndFlush(requests)
        var iterator = collector.stream.makeAsyncIterator()
        for seq in 1...count {
            let header = try RPCResponseHeader(from: try #require(await iterator.next()))
            let body = try #require(await iterator.next())
            try #require(header.seq == seq)
            if seq % 5 == 0 {
                #expect(header.error == "fail \(seq)")
                #expect(body.hex == "80")
            } else {
                #expect(header.error == "")
                #expect(try MessagePackDecoder().decode(AddReply.self, from: body).sum == Int64(seq) + 100)
            }
        }
        try await channel.close()
        try await server.stop()
    }

    @Test func unknownMethodReplyHasGosEmptyBody() async throws {
        let server = try await RPCTestServer.start()
        let (channel, collector) = try await connectRaw(port: server.port)
        var request = ByteBuffer()
        RPCRequestHeader(serviceMethod: "Nope.X", seq: 9).write(to: &request)
        request.writeInteger(UInt8(0x80))
        try await channel.writeAndFlush(request)
        var iterator = collector.stream.makeAsyncIterator()
        let header = try #require(await iterator.next())
        let body = try #require(await iterator.next())
        var expected = ByteBuffer()
        RPCResponseHeader(serviceMethod: "Nope.X", seq: 9, error: "rpc: can't find service Nope.X").write(to: &expected)
        #expect(header == expected)
        #expect(body.hex == "80")
        try await channel.close()
        try await server.stop()
    }

    @Test func headerThatIsNotAHeaderClosesTheStream() async throws {
        let server = try await RPCTestServer.start()
        let (channel, collector) = try await connectRaw(port: server.port)
        try await channel.writeAndFlush(ByteBuffer(hex: "a3 41 2e 42"))  // a string where a map must be
        var iterator = collector.stream.makeAsyncIterator()
        #expect(await iterator.next() == nil)  // closed without a reply, as Go's ServeCodec does
        try? await channel.close()
        try await server.stop()
    }

    @Test func lyingLengthFromAClientClosesTheStream() async throws {
        let server = try await RPCTestServer.start()
        let (channel, collector) = try await connectRaw(port: server.port)
        try await channel.writeAndFlush(ByteBuffer(hex: "db 7f ff ff ff"))
        var iterator = collector.stream.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        try? await channel.close()
        try await server.stop()
    }

    @Test func extremeDeadlinesFromAPeer() async throws {
        let server = try await RPCTestServer.start()
        let (channel, collector) = try await connectRaw(port: server.port)
        var requests = ByteBuffer()
        RPCRequestHeader(serviceMethod: "Status.Ping", seq: 1, deadline: RPCDeadline(unixNanoseconds: .min)).write(to: &requests)
        requests.writeInteger(UInt8(0x80))
        RPCRequestHeader(serviceMethod: "Status.Ping", seq: 2, deadline: RPCDeadline(unixNanoseconds: .max)).write(to: &requests)
        requests.writeInteger(UInt8(0x80))
        try await channel.writeAndFlush(requests)
        var iterator = collector.stream.makeAsyncIterator()
        let expired = try RPCResponseHeader(from: try #require(await iterator.next()))
        _ = await iterator.next()
        #expect(expired == RPCResponseHeader(serviceMethod: "Status.Ping", seq: 1, error: "deadline exceeded before Status.Ping ran"))
        let farFuture = try RPCResponseHeader(from: try #require(await iterator.next()))
        _ = await iterator.next()
        #expect(farFuture == RPCResponseHeader(serviceMethod: "Status.Ping", seq: 2))
        try await channel.close()
        try await server.stop()
    }

    @Test func lyingServerFailsTheCallWithATypedError() async throws {
        // A response header claiming a 4 GiB - 1 string.
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawReplyServerHandler(reply: ByteBuffer(hex: "db ff ff ff ff")))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try await connectRPCClient(port: listener.localAddress!.port!)
        let error = await expectRPCError { _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self) }
        #expect(error?.code == .limitExceeded)
        #expect(error?.isStreamUsable == false)
        #expect(!client.isUsable)
        try await client.close()
        try await listener.close()
    }
}
