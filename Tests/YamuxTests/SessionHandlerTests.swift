import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing
@testable import Yamux

/// Handler-level tests on an EmbeddedChannel: exact frames in, exact frames out.
@Suite(.timeLimit(.minutes(5))) struct SessionHandlerTests {
    private func makeServer(_ configuration: YamuxConfiguration = testConfiguration { $0.enableWindowAutoTuning = false }) throws -> (EmbeddedChannel, YamuxSession) {
        let channel = EmbeddedChannel()
        let session = try YamuxSession.configure(on: channel, role: .server, configuration: configuration)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, session)
    }

    /// Stream writes are flushed at the end of the loop's turn: `outboundFrames` lets it turn.
    private func frames(_ channel: EmbeddedChannel) throws -> [YamuxFrameHeader] {
        try outboundFrames(channel)
    }

    private func send(_ channel: EmbeddedChannel, _ header: YamuxFrameHeader, payload: String? = nil) throws {
        var buffer = header.encoded(allocator: channel.allocator)
        if let payload { buffer.writeString(payload) }
        try channel.writeInbound(buffer)
    }

    @Test func pingIsAnsweredWithTheSameValue() throws {
        let (channel, _) = try self.makeServer()
        try self.send(channel, YamuxFrameHeader(type: .ping, flags: .syn, streamID: 0, length: 0xDEAD))
        #expect(try self.frames(channel) == [YamuxFrameHeader(type: .ping, flags: .ack, streamID: 0, length: 0xDEAD)])
    }

    @Test func noAckUntilAcceptedThenExactlyOne() throws {
        let (channel, _) = try self.makeServer()
        let handler = try channel.pipeline.syncOperations.handler(type: YamuxSessionHandler.self)
        try self.send(channel, YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: 1, length: 0))
        try self.send(channel, YamuxFrameHeader(type: .data, streamID: 1, length: 5), payload: "hello")
        #expect(try self.frames(channel).isEmpty)  // nothing until the application accepts
        var accepted: YamuxStreamChannel?
        handler.accept(token: 1) { result in accepted = try? result.get() }
        #expect(accepted?.streamID == 1)
        #expect(try self.frames(channel) == [YamuxFrameHeader(type: .windowUpdate, flags: .ack, streamID: 1, length: 0)])
        // More data: no further ACK.
        try self.send(channel, YamuxFrameHeader(type: .data, streamID: 1, length: 5), payload: "again")
        #expect(try self.frames(channel).isEmpty)
    }

    @Test func windowUpdateFollowsConsumptionNotArrival() throws {
        let (channel, _) = try self.makeServer()
        let handler = try channel.pipeline.syncOperations.handler(type: YamuxSessionHandler.self)
        try self.send(channel, YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: 1, length: 0))
        var accepted: YamuxStreamChannel?
        handler.accept(token: 1) { result in accepted = try? result.get() }
        let stream = try #require(accepted)
        try stream.syncOptions!.setOption(.autoRead, value: false)
        _ = try self.frames(channel)
        let chunk = String(repeating: "x", count: 64 * 1024)
        for _ in 0..<3 {
            try self.send(channel, YamuxFrameHeader(type: .data, streamID: 1, length: UInt32(chunk.utf8.count)), payload: chunk)
        }
        // 192 KiB arrived but nobody read it: no window update.
        #expect(try self.frames(channel).isEmpty)
        stream.read()
        let frames = try self.frames(channel)
        #expect(frames == [YamuxFrameHeader(type: .windowUpdate, streamID: 1, length: 192 * 1024)])
    }

    @Test func writesAreSplitToThePeersWindow() throws {
        let (channel, _) = try self.makeServer()
        let handler = try channel.pipeline.syncOperations.handler(type: YamuxSessionHandler.self)
        try self.send(channel, YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: 1, length: 0))
        var accepted: YamuxStreamChannel?
        handler.accept(token: 1) { result in accepted = try? result.get() }
        let stream = try #require(accepted)
        _ = try self.frames(channel)
        stream.writeAndFlush(ByteBuffer(repeating: 1, count: 300 * 1024), promise: nil)
        #expect(try self.frames(channel) == [YamuxFrameHeader(type: .data, streamID: 1, length: 256 * 1024)])
        try self.send(channel, YamuxFrameHeader(type: .windowUpdate, streamID: 1, length: 10 * 1024))
        #expect(try self.frames(channel) == [YamuxFrameHeader(type: .data, streamID: 1, length: 10 * 1024)])
        try self.send(channel, YamuxFrameHeader(type: .windowUpdate, streamID: 1, length: 1024 * 1024))
        #expect(try self.frames(channel) == [YamuxFrameHeader(type: .data, streamID: 1, length: 34 * 1024)])
        // Half-close: FIN (as a window update) after the data.
        stream.close(mode: .output, promise: nil)
        #expect(try self.frames(channel) == [YamuxFrameHeader(type: .windowUpdate, flags: .fin, streamID: 1, length: 0)])
    }

    /// Collects what reaches a stream's pipeline.
    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var received = ""
        var reads = 0
        var sawEOF = false
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            self.received += String(buffer: self.unwrapInboundIn(data))
            self.reads += 1
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .inputClosed = event as? ChannelEvent { self.sawEOF = true }
        }
    }

    @Test func payloadSplitAcrossReadsArrivesInPiecesThenFIN() throws {
        let (channel, _) = try self.makeServer()
        let handler = try channel.pipeline.syncOperations.handler(type: YamuxSessionHandler.self)
        try self.send(channel, YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: 1, length: 0))
        var accepted: YamuxStreamChannel?
        handler.accept(token: 1) { result in accepted = try? result.get() }
        let stream = try #require(accepted)
        let collector = Collector()
        try stream.pipeline.syncOperations.addHandler(collector)
        // One data frame carrying FIN, its header and payload cut across three reads.
        var wire = ByteBuffer()
        YamuxFrameHeader(type: .data, flags: .fin, streamID: 1, length: 10).write(to: &wire)
        wire.writeString("0123456789")
        try channel.writeInbound(wire.getSlice(at: 0, length: 7)!)
        try channel.writeInbound(wire.getSlice(at: 7, length: 9)!)
        #expect(collector.received == "0123")
        #expect(!collector.sawEOF)  // FIN waits for the rest of the payload
        try channel.writeInbound(wire.getSlice(at: 16, length: 6)!)
        #expect(collector.received == "0123456789")
        #expect(collector.reads == 2)
        #expect(collector.sawEOF)
    }

    @Test func gatheredFramesKeepOrderBytesAndPromises() throws {
        let (channel, _) = try self.makeServer()
        let handler = try channel.pipeline.syncOperations.handler(type: YamuxSessionHandler.self)
        var streams: [YamuxStreamChannel] = []
        // Ten busy streams: the session gathers up to five frames before an early flush.
        let ids: [UInt32] = Array(stride(from: 1, through: 19, by: 2))
        for id in ids {
            try self.send(channel, YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: id, length: 0))
            handler.accept(token: Int(id)) { result in if let s = try? result.get() { streams.append(s) } }
        }
        _ = try self.frames(channel)
        try makeStreamsBusy(ids, on: channel)
        // Small and large payloads from two streams in one turn of the loop, some with promises.
        let completed = NIOLockedValueBox<[Int]>([])
        let small = streams[0].eventLoop.makePromise(of: Void.self)
        small.futureResult.whenSuccess { completed.withLockedValue { $0.append(1) } }
        streams[0].writeAndFlush(ByteBuffer(string: "tiny"), promise: small)
        let large = streams[1].eventLoop.makePromise(of: Void.self)
        large.futureResult.whenSuccess { completed.withLockedValue { $0.append(2) } }
        streams[1].writeAndFlush(ByteBuffer(repeating: 7, count: 5000), promise: large)
        streams[0].writeAndFlush(ByteBuffer(string: "more"), promise: nil)
        streams[0].close(mode: .output, promise: nil)
        #expect(completed.withLockedValue { $0.isEmpty })  // nothing is written before the flush at the end of the turn
        channel.embeddedEventLoop.run()
        var all = ByteBuffer()
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&buffer) }
        var expected = ByteBuffer()
        YamuxFrameHeader(type: .data, streamID: 1, length: 4).write(to: &expected)
        expected.writeString("tiny")
        YamuxFrameHeader(type: .data, streamID: 3, length: 5000).write(to: &expected)
        expected.writeRepeatingByte(7, count: 5000)
        YamuxFrameHeader(type: .data, streamID: 1, length: 4).write(to: &expected)
        expected.writeString("more")
        YamuxFrameHeader(type: .windowUpdate, flags: .fin, streamID: 1, length: 0).write(to: &expected)
        #expect(all == expected)
        #expect(completed.withLockedValue { $0 } == [1, 2])
    }

    @Test func framesAfterTheSessionClosedFailTheirPromises() throws {
        let (channel, _) = try self.makeServer()
        let handler = try channel.pipeline.syncOperations.handler(type: YamuxSessionHandler.self)
        handler.closeSession(error: .sessionClosed, goAway: .normal)
        let promise = channel.eventLoop.makePromise(of: Void.self)
        let failed = NIOLockedValueBox(false)
        promise.futureResult.whenFailure { _ in failed.withLockedValue { $0 = true } }
        handler.writeFrame(YamuxFrameHeader(type: .windowUpdate, flags: .fin, streamID: 1, length: 0), promise: promise)
        #expect(failed.withLockedValue { $0 })
    }

    @Test func synAfterGoAwayIsRefusedWithRST() throws {
        let (channel, _) = try self.makeServer()
        let handler = try channel.pipeline.syncOperations.handler(type: YamuxSessionHandler.self)
        handler.goAway()
        #expect(try self.frames(channel) == [YamuxFrameHeader(type: .goAway, streamID: 0, length: 0)])
        try self.send(channel, YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: 1, length: 0))
        #expect(try self.frames(channel) == [YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: 1, length: 0)])
    }

    @Test func protocolErrorWritesGoAwayThenCloses() throws {
        let (channel, _) = try self.makeServer()
        try self.send(channel, YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: 1, length: 0))
        try? self.send(channel, YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: 1, length: 0))
        #expect(try self.frames(channel).last == YamuxFrameHeader(type: .goAway, streamID: 0, length: 1))
        #expect(!channel.isActive)
    }

    @Test func clientUsesOddIdsServerEven() throws {
        let channel = EmbeddedChannel()
        _ = try YamuxSession.configure(on: channel, role: .client, configuration: testConfiguration { $0.enableWindowAutoTuning = false })
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let handler = try channel.pipeline.syncOperations.handler(type: YamuxSessionHandler.self)
        var ids: [UInt32] = []
        for _ in 0..<3 { handler.openStream { if let s = try? $0.get() { ids.append(s.streamID) } } }
        #expect(ids == [1, 3, 5])
        #expect(try self.frames(channel).map(\.flags) == [.syn, .syn, .syn])
    }
}
