import DemoServices
import Foundation
import TestSupport
import MessagePack
import MsgpackRPC
import MuxRPC
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import Yamux

/// Streams end on both sides and free what they held, however the client
/// ends them, and a client that never reads costs the server bounded memory.
/// The assertions read the server's own counts of what is alive
/// (`MuxRPCServer.Statistics.sessionsAlive`, `streamsAlive`,
/// `maxSessionBufferedBytes`): objects counted from their initialiser to
/// their deinit, so a leak shows as a count that stays up.
@Suite("Stream lifecycle and bounded memory", .serialized, .timeLimit(.minutes(10)))
struct StreamLifecycleTests {
    static let multiplexModes: [ConnectionMode] = [.consulMultiplex, .nomadMultiplex]

    // MARK: streams the client closes

    @Test("a Go client that opens and closes a stream per call makes 10,000 calls on one session", arguments: multiplexModes)
    func goClientClosingAStreamPerCall(mode: ConnectionMode) async throws {
        guard try GoPeer.available() else { return }
        try await self.churn(mode: mode, arguments: ["-calls", "10000", "-workers", "4"])
    }

    @Test("a Go client's mixed stream churn leaves the server's streams at their baseline", arguments: multiplexModes)
    func goClientMixedChurn(mode: ConnectionMode) async throws {
        guard try GoPeer.available() else { return }
        // Streams closed after one call, after three, before their first byte
        // (in Nomad mode, before the byte that says what they are for), and
        // in the middle of a request header.
        try await self.churn(mode: mode, arguments: ["-calls", "5000", "-workers", "8", "-mixed"])
    }

    private func churn(mode: ConnectionMode, arguments: [String]) async throws {
        let server = MuxRPCServer(services: DemoServices.registry, configuration: .patient())
        let address = try await server.start()
        let peer = try await GoPeerProcess.start(
            "rpc-peer",
            arguments: ["churn", "-addr", "127.0.0.1:\(address.port!)", "-mode", mode.goPeerName] + arguments
        )
        defer { peer.terminate() }
        let summary = try await peer.waitForLine(prefix: "churn ", timeout: 300)
        #expect(summary.contains("fails=0 "), "Go client: \(summary); stderr: \(peer.standardError)")
        // The Go side saw every stream end: the server closed its side of each.
        #expect(summary.hasSuffix("go_streams=1"), "Go client: \(summary)")
        // With the session still open, the server holds the one stream the
        // Go client keeps open, and nothing of the thousands it closed.
        let atBaseline = await waitUntil { server.statistics.streamsAlive == 1 }
        #expect(atBaseline, "streams alive: \(server.statistics.streamsAlive)")
        #expect(server.statistics.sessionsAlive == 1)

        peer.sendTerminationSignal()
        #expect(try await peer.waitForExit(timeout: 60) == 0, "stderr: \(peer.standardError)")
        let freed = await waitUntil { server.statistics.streamsAlive == 0 && server.statistics.sessionsAlive == 0 }
        #expect(freed, "after the session ended: \(server.statistics)")
        await server.shutdown()
    }

    @Test("a stream the client closes after its call is closed by the server and freed", arguments: multiplexModes)
    func serverClosesStreamsTheClientCloses(mode: ConnectionMode) async throws {
        let server = MuxRPCServer(services: DemoServices.registry, configuration: .patient())
        let address = try await server.start()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: .init(mode: mode))
        for call in 0..<50 {
            let stream = try await connection.openStream()
            let reply = try await stream.call("Arith.Add", DemoServices.AddArgs(a: Int64(call), b: 1), returning: DemoServices.AddReply.self)
            #expect(reply.sum == Int64(call) + 1)
            try await stream.close()
        }
        // A stream closed in the middle of a request, and one closed unused.
        let session = try #require(connection.session)
        let cutShort = try await session.openStream()
        try await cutShort.executeThenClose { _, outbound in
            if mode == .nomadMultiplex { try await outbound.write(ByteBuffer(integer: NomadStreamType.rpc)) }
            try await outbound.write(ByteBuffer(bytes: [0x82, 0xa3, 0x53, 0x65, 0x71]))
            outbound.finish()
        }
        let unused = try await session.openStream()
        try await unused.executeThenClose { _, outbound in outbound.finish() }

        // Both sides forget every stream: the server sent its FIN for each.
        let clientForgot = await waitUntil { await session.streamCount == 0 }
        let clientStreams = await session.streamCount
        #expect(clientForgot, "client streams: \(clientStreams)")
        let serverFreed = await waitUntil { server.statistics.streamsAlive == 0 }
        #expect(serverFreed, "server streams alive: \(server.statistics.streamsAlive)")
        #expect(server.statistics.sessionsAlive == 1)
        await connection.close()
        await server.shutdown()
    }

    // MARK: streams in the accept backlog

    @Test("1,000 connections that send SYNs and close leave nothing behind")
    func synsThenCloseLeaveNothing() async throws {
        let server = MuxRPCServer(services: DemoServices.registry, configuration: .patient())
        let address = try await server.start()
        // 0x04 (Consul), then SYNs for streams 1, 3, 5 and 7, then close.
        var bytes = ByteBuffer(bytes: [0x04])
        for id in stride(from: UInt32(1), through: 7, by: 2) {
            bytes.writeBytes([0, 1, 0, 1])
            bytes.writeInteger(id)
            bytes.writeInteger(UInt32(0))
        }
        let attack = bytes
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<20 {
                group.addTask {
                    for _ in 0..<50 {
                        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                            .connect(to: address).get()
                        try await channel.writeAndFlush(attack)
                        try await channel.close()
                    }
                    _ = lane
                }
            }
            try await group.waitForAll()
        }
        let freed = await waitUntil(within: .seconds(60)) {
            server.statistics.connectionsAccepted == 1000 && server.connectionCount == 0
                && server.statistics.sessionsAlive == 0 && server.statistics.streamsAlive == 0
        }
        #expect(freed, "\(server.statistics)")
        // The server still serves.
        let connection = try await MuxRPCConnection.connect(to: address)
        let stream = try await connection.openStream()
        _ = try await stream.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        await connection.close()
        await server.shutdown()
    }

    // MARK: a client that never reads

    @Test("a client that pipelines requests and never reads costs the server bounded memory, and loses no reply")
    func neverReadingClientIsBounded() async throws {
        // Auto-tuning off: a receive window that grew while the server read
        // fast would let the client send up to 16 MiB more before it stalls
        // (bounded too, by maxAutoTunedStreamWindow; this keeps the bound
        // tight).
        var configuration = MuxRPCServer.Configuration.patient()
        configuration.yamux.enableWindowAutoTuning = false
        let server = MuxRPCServer(services: DemoServices.registry, configuration: configuration)
        let address = try await server.start()
        let connection = try await MuxRPCConnection.connect(to: address)
        let stream = try await connection.session!.openStream()
        let replies = ReplyCounter()
        let gate = try await stream.configurePipeline { channel in
            let gate = ReadGate()
            try channel.pipeline.syncOperations.addHandlers([gate, RPCMessageFramer(), replies])
            return NIOLoopBound(gate, eventLoop: channel.eventLoop)
        }

        // 256 Echo requests of 64 KiB (16 MiB), pipelined; the replies are
        // never read, so the server's window for them is never credited.
        let payload = [UInt8](repeating: 0x5a, count: 64 * 1024)
        let requestCount = 256
        for seq in 0..<requestCount {
            var request = ByteBuffer()
            RPCRequestHeader(serviceMethod: "Echo.Echo", seq: UInt64(seq)).write(to: &request)
            try MessagePackEncoder().encode(DemoServices.EchoArgs(msg: payload), into: &request)
            stream.channel.writeAndFlush(request, promise: nil)
        }
        // The server has filled the client's window and queued a reply
        // beyond it: it is now held back by a reader that does not read.
        let stalled = await waitUntil { server.statistics.maxSessionBufferedBytes > 64 * 1024 }
        #expect(stalled, "\(server.statistics)")

        // Other clients are served meanwhile.
        let healthy = try await MuxRPCConnection.connect(to: address)
        let other = try await healthy.openStream()
        for call in 0..<200 {
            let reply = try await other.call("Arith.Add", DemoServices.AddArgs(a: Int64(call), b: 2), returning: DemoServices.AddReply.self)
            #expect(reply.sum == Int64(call) + 2)
        }
        // What the server holds for the stalled session: the requests that
        // fit in its receive window, the replies past the client's window up
        // to the stream's watermark, and one more reply. Never the 16 MiB.
        let bound = 1024 * 1024
        #expect(server.statistics.maxSessionBufferedBytes < bound, "\(server.statistics)")

        // Once the client reads, every reply arrives.
        stream.channel.eventLoop.execute { gate.value.open() }
        let all = await waitUntil(within: .seconds(120)) { replies.count == 2 * requestCount }
        #expect(all, "messages read: \(replies.count)")
        #expect(replies.largestBody > payload.count)
        #expect(server.statistics.maxSessionBufferedBytes < bound)
        await healthy.close()
        await connection.close()
        await server.shutdown()
    }
}

/// Holds a channel's reads back until opened. Used on the channel's loop only.
private final class ReadGate: ChannelOutboundHandler {
    typealias OutboundIn = Never
    private var isOpen = false
    private var heldContext: ChannelHandlerContext?

    func read(context: ChannelHandlerContext) {
        if self.isOpen {
            context.read()
        } else {
            self.heldContext = context
        }
    }

    func open() {
        self.isOpen = true
        if let context = self.heldContext {
            self.heldContext = nil
            context.read()
        }
    }
}

/// Counts the messages (reply headers and bodies) a stream receives.
private final class ReplyCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let counts = NIOLockedValueBox((messages: 0, largest: 0))

    var count: Int { self.counts.withLockedValue { $0.messages } }
    var largestBody: Int { self.counts.withLockedValue { $0.largest } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let size = Self.unwrapInboundIn(data).readableBytes
        self.counts.withLockedValue {
            $0.messages += 1
            $0.largest = max($0.largest, size)
        }
    }
}
