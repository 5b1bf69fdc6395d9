import NIOCore
import NIOEmbedded
import Testing
@testable import Yamux

/// Early flushes: frames gathered in one turn of the loop go out every half as
/// many frames as there are busy streams, at most every `maxFramesPerFlush`,
/// on both write paths: streams writing from tasks, and streams answering
/// inside a read batch.
@Suite(.timeLimit(.minutes(5))) struct SessionFlushTests {
    /// Counts the flushes that reach the connection.
    private final class FlushCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var flushes = 0
        func flush(context: ChannelHandlerContext) {
            flushes += 1
            context.flush()
        }
    }

    /// Writes back what it reads, at once.
    private final class Echo: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(data, promise: nil)
        }
    }

    private func makeServer(maxFramesPerFlush: Int, flushesEarly: Bool = true) throws -> (EmbeddedChannel, YamuxSessionHandler, FlushCounter) {
        let channel = EmbeddedChannel()
        let counter = FlushCounter()
        try channel.pipeline.syncOperations.addHandler(counter)
        _ = try YamuxSession.configure(on: channel, role: .server, configuration: testConfiguration {
            $0.enableWindowAutoTuning = false
            $0.maxFramesPerFlush = maxFramesPerFlush
            $0.flushesEarly = flushesEarly
        })
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let handler = try channel.pipeline.syncOperations.handler(type: YamuxSessionHandler.self)
        return (channel, handler, counter)
    }

    /// Opens the inbound streams `ids`, each echoing what it reads.
    private func openEchoStreams(_ ids: [UInt32], on channel: EmbeddedChannel, _ handler: YamuxSessionHandler) throws -> [YamuxStreamChannel] {
        var streams: [YamuxStreamChannel] = []
        for id in ids {
            try channel.writeInbound(YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: id, length: 0).encoded(allocator: channel.allocator))
            handler.accept(token: Int(id)) { result in
                if let stream = try? result.get() {
                    try? stream.pipeline.syncOperations.addHandler(Echo())
                    streams.append(stream)
                }
            }
        }
        channel.embeddedEventLoop.run()
        while try channel.readOutbound(as: ByteBuffer.self) != nil {}
        return streams
    }

    private func dataFrames(_ channel: EmbeddedChannel) throws -> Int {
        var all = ByteBuffer()
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&buffer) }
        var count = 0
        while let header = try YamuxFrameHeader.read(from: &all) {
            if header.type == .data {
                count += 1
                all.moveReaderIndex(forwardBy: Int(header.length))
            }
        }
        return count
    }

    @Test func writesInOneTurnGoOutEveryMaxFrames() throws {
        let (channel, handler, counter) = try makeServer(maxFramesPerFlush: 3)
        let ids: [UInt32] = [1, 3, 5, 7, 9, 11, 13, 15]
        let stream = try openEchoStreams(ids, on: channel, handler)[0]
        try makeStreamsBusy(ids, on: channel)
        let before = counter.flushes
        for i in 0..<7 { stream.writeAndFlush(ByteBuffer(string: "message \(i)"), promise: nil) }
        // Eight busy streams would flush every four frames; the limit makes it three. Within
        // the turn: two early flushes of three frames each; the seventh waits for the turn's end.
        #expect(counter.flushes - before == 2)
        #expect(try dataFrames(channel) == 6)
        channel.embeddedEventLoop.run()
        #expect(counter.flushes - before == 3)
        #expect(try dataFrames(channel) == 1)
    }

    @Test func answersInOneReadBatchGoOutAtHalfTheBusyStreams() throws {
        // Eight busy streams: a flush every four answers, unless the limit is lower.
        for (maxFramesPerFlush, expectedFlushes) in [(16, 2), (3, 3), (1, 8)] {
            let (channel, handler, counter) = try makeServer(maxFramesPerFlush: maxFramesPerFlush)
            let ids: [UInt32] = [1, 3, 5, 7, 9, 11, 13, 15]
            _ = try openEchoStreams(ids, on: channel, handler)
            try makeStreamsBusy(ids, on: channel)
            let before = counter.flushes
            try channel.writeInbound(messageBatch(ids))
            channel.embeddedEventLoop.run()
            #expect(counter.flushes - before == expectedFlushes, "maxFramesPerFlush \(maxFramesPerFlush)")
            #expect(try dataFrames(channel) == ids.count)
        }
    }

    @Test func oneBusyStreamFlushesEachWriteAtOnce() throws {
        // One call in flight: nothing else will write this turn, so nothing waits for its end.
        let (channel, handler, counter) = try makeServer(maxFramesPerFlush: 16)
        let stream = try openEchoStreams([1], on: channel, handler)[0]
        try makeStreamsBusy([1], on: channel)
        let before = counter.flushes
        for i in 0..<3 { stream.writeAndFlush(ByteBuffer(string: "message \(i)"), promise: nil) }
        #expect(counter.flushes - before == 3)
        #expect(try dataFrames(channel) == 3)
    }

    @Test func streamsGoneIdleStopDelayingFlushes() throws {
        let (channel, handler, counter) = try makeServer(maxFramesPerFlush: 16)
        let ids: [UInt32] = [1, 3, 5, 7, 9, 11, 13, 15]
        _ = try openEchoStreams(ids, on: channel, handler)
        try makeStreamsBusy(ids, on: channel)
        // Two epochs with only two streams busy: the six others no longer count.
        try makeStreamsBusy([1, 3], on: channel)
        try makeStreamsBusy([1, 3], on: channel)
        let before = counter.flushes
        try channel.writeInbound(messageBatch([1, 3]))
        channel.embeddedEventLoop.run()
        #expect(counter.flushes - before == 2, "two busy streams: each answer flushed alone")
        #expect(try dataFrames(channel) == 2)
    }

    @Test func withoutEarlyFlushesEachTurnEndsInOneFlush() throws {
        let (channel, handler, counter) = try makeServer(maxFramesPerFlush: 2, flushesEarly: false)
        let ids: [UInt32] = [1, 3, 5, 7, 9, 11, 13, 15]
        let streams = try openEchoStreams(ids, on: channel, handler)
        try makeStreamsBusy(ids, on: channel)
        var before = counter.flushes
        try channel.writeInbound(messageBatch(ids))
        channel.embeddedEventLoop.run()
        #expect(counter.flushes - before == 1, "a read batch's answers")
        #expect(try dataFrames(channel) == ids.count)
        before = counter.flushes
        for i in 0..<5 { streams[0].writeAndFlush(ByteBuffer(string: "message \(i)"), promise: nil) }
        #expect(counter.flushes == before, "writes from outside a read batch wait for the turn's end")
        channel.embeddedEventLoop.run()
        #expect(counter.flushes - before == 1)
        #expect(try dataFrames(channel) == 5)
    }

    @Test func maxFramesPerFlushMustBePositive() {
        var configuration = YamuxConfiguration()
        configuration.maxFramesPerFlush = 0
        let error = #expect(throws: YamuxError.self) { try configuration.validate() }
        #expect(error?.code == .invalidConfiguration)
    }
}
