import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing
@testable import Yamux

/// What a session holds, and that it lets go: streams freed however they end, the
/// session's buffered bytes bounded, and a frame that never completes timed out. On an
/// EmbeddedChannel, so time is the loop's own and nothing depends on the machine's speed.
@Suite(.timeLimit(.minutes(5))) struct SessionResourceTests {
    private struct Server {
        let channel: EmbeddedChannel
        let handler: YamuxSessionHandler
    }

    private func makeServer(
        liveObjects: YamuxLiveObjects? = nil,
        _ modify: (inout YamuxConfiguration) -> Void = { _ in }
    ) throws -> Server {
        let channel = EmbeddedChannel()
        let configuration = testConfiguration {
            $0.enableWindowAutoTuning = false
            modify(&$0)
        }
        _ = try YamuxSession.configure(on: channel, role: .server, configuration: configuration, liveObjects: liveObjects)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return Server(channel: channel, handler: try channel.pipeline.syncOperations.handler(type: YamuxSessionHandler.self))
    }

    private func send(_ channel: EmbeddedChannel, _ header: YamuxFrameHeader, payload: ByteBuffer? = nil) throws {
        var buffer = header.encoded(allocator: channel.allocator)
        if var payload { buffer.writeBuffer(&payload) }
        try channel.writeInbound(buffer)
    }

    /// Opens and accepts stream `id`; with `reading: false` nothing reads from it.
    private func accept(_ id: UInt32, on server: Server, reading: Bool = true) throws -> YamuxStreamChannel {
        try self.send(server.channel, YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: id, length: 0))
        var accepted: YamuxStreamChannel?
        server.handler.accept(token: Int(id)) { result in
            accepted = try? result.get()
            // Before the channel is activated, which would ask for a read.
            try? accepted?.syncOptions!.setOption(.autoRead, value: reading)
        }
        return try #require(accepted)
    }

    // MARK: streams are freed

    @Test func streamsWaitingInTheBacklogAreFreedWhenTheSessionEnds() throws {
        let live = YamuxLiveObjects()
        do {
            let server = try self.makeServer(liveObjects: live)
            for id in stride(from: UInt32(1), through: 511, by: 2) {
                try self.send(server.channel, YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: id, length: 0))
            }
            #expect(live.streamCount == 256)
            #expect(live.sessionCount == 1)
            _ = try? server.channel.finish()
        }
        // Never activated, each stream's pipeline held its channel: before the fix, all
        // 256 stayed.
        #expect(live.streamCount == 0)
        #expect(live.sessionCount == 0)
    }

    @Test func aStreamThePeerOpenedAndClosedInTheBacklogIsFreed() throws {
        let live = YamuxLiveObjects()
        do {
            let server = try self.makeServer(liveObjects: live)
            // SYN and FIN at once: the stream waits in the backlog, already half-closed.
            try self.send(server.channel, YamuxFrameHeader(type: .data, flags: [.syn, .fin], streamID: 1, length: 4), payload: ByteBuffer(string: "data"))
            #expect(live.streamCount == 1)
            _ = try? server.channel.finish()
        }
        // Half-closed by the peer, it was kept for an application to read what arrived;
        // but none ever held it (found by the fuzzer).
        #expect(live.streamCount == 0)
        #expect(live.sessionCount == 0)
    }

    @Test func aSessionThatEndsInsideADataFrameIsFreed() throws {
        let live = YamuxLiveObjects()
        do {
            let server = try self.makeServer(liveObjects: live)
            _ = try self.accept(1, on: server)
            // A data frame that claims 64 KiB and brings 3 bytes; then the connection ends.
            try self.send(server.channel, YamuxFrameHeader(type: .data, flags: .fin, streamID: 1, length: 65_536), payload: ByteBuffer(bytes: [9, 9, 9]))
            server.channel.embeddedEventLoop.run()
            _ = try? server.channel.finish()
        }
        // The session kept the stream the cut frame was for, and the stream its session
        // (found by the fuzzer: every connection cut inside a data frame leaked both).
        #expect(live.streamCount == 0)
        #expect(live.sessionCount == 0)
    }

    @Test func streamsClosedBothWaysOrResetAreFreed() throws {
        let live = YamuxLiveObjects()
        let server = try self.makeServer(liveObjects: live)
        do {
            // Closed by both sides: the peer's FIN, then ours.
            let closed = try self.accept(1, on: server)
            try self.send(server.channel, YamuxFrameHeader(type: .windowUpdate, flags: .fin, streamID: 1, length: 0))
            closed.close(promise: nil)
            // Reset by the peer.
            _ = try self.accept(3, on: server)
            try self.send(server.channel, YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: 3, length: 0))
            // Reset by the peer while still in the backlog.
            try self.send(server.channel, YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: 5, length: 0))
            try self.send(server.channel, YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: 5, length: 0))
            server.channel.embeddedEventLoop.run()
        }
        #expect(server.handler.numberOfStreams == 0)
        #expect(live.streamCount == 0)
        #expect(server.channel.isActive)
    }

    // MARK: buffered bytes

    @Test func writesPastWritabilityAreCountedNotRefused() throws {
        let server = try self.makeServer { $0.maxSessionUnreadBytes = 100_000 }
        let stream = try self.accept(1, on: server)
        _ = try outboundFrames(server.channel)
        // A writer that runs past writability (as NIOAsyncChannel's may while the loop is
        // busy): the peer's 256 KiB window takes the first 262,144 bytes, and the stream
        // holds the rest. The unread limit is about data from the peer, not this.
        let writes = (0..<40).map { _ in stream.writeAndFlush(ByteBuffer(repeating: 7, count: 10_000)) }
        server.channel.embeddedEventLoop.run()
        let failures = NIOLockedValueBox<[any Error]>([])
        for write in writes { write.whenFailure { error in failures.withLockedValue { $0.append(error) } } }
        #expect(failures.withLockedValue { $0.isEmpty })
        #expect(!server.handler.isClosed)
        #expect(server.handler.statistics.bufferedBytes == 400_000 - 262_144)
        #expect(server.handler.statistics.unreadBytes == 0)
        // The peer credits its window: everything goes out.
        try self.send(server.channel, YamuxFrameHeader(type: .windowUpdate, streamID: 1, length: 1_000_000))
        server.channel.embeddedEventLoop.run()
        #expect(server.handler.statistics.bufferedBytes == 0)
    }

    @Test func writesThatRespectWritabilityStayUnderTheWatermark() throws {
        let server = try self.makeServer()
        let stream = try self.accept(1, on: server)
        var written = 0
        // The peer never credits the window: once it is spent, the stream turns
        // unwritable and a well-behaved writer stops.
        while stream.isWritable, written < 10_000_000 {
            stream.writeAndFlush(ByteBuffer(repeating: 7, count: 10_000), promise: nil)
            written += 10_000
            server.channel.embeddedEventLoop.run()
        }
        #expect(!server.handler.isClosed)
        #expect(written < 400_000)
        let statistics = server.handler.statistics
        #expect(statistics.bufferedBytes > 64 * 1024)
        #expect(statistics.bufferedBytes <= 64 * 1024 + 10_000)
    }

    @Test func dataWaitsInItsStreamWhileTheConnectionIsNotWritable() throws {
        let server = try self.makeServer()
        let stream = try self.accept(1, on: server)
        _ = try outboundFrames(server.channel)
        server.channel.isWritable = false
        server.channel.pipeline.fireChannelWritabilityChanged()
        stream.writeAndFlush(ByteBuffer(repeating: 1, count: 10_000), promise: nil)
        // Window to spare, but the connection holds enough: the data stays with its
        // stream, counted, and the stream is not writable.
        #expect(try outboundFrames(server.channel).isEmpty)
        #expect(server.handler.statistics.bufferedBytes == 10_000)
        #expect(!stream.isWritable)

        server.channel.isWritable = true
        server.channel.pipeline.fireChannelWritabilityChanged()
        #expect(try outboundFrames(server.channel) == [YamuxFrameHeader(type: .data, streamID: 1, length: 10_000)])
        #expect(server.handler.statistics.bufferedBytes == 0)
        #expect(stream.isWritable)
    }

    @Test func unreadDataPastTheSessionLimitEndsTheSession() throws {
        let server = try self.makeServer { $0.maxSessionUnreadBytes = 100_000 }
        _ = try self.accept(1, on: server, reading: false)
        _ = try outboundFrames(server.channel)
        try self.send(server.channel, YamuxFrameHeader(type: .data, streamID: 1, length: 60_000), payload: ByteBuffer(repeating: 1, count: 60_000))
        #expect(server.handler.statistics.unreadBytes == 60_000)
        #expect(!server.handler.isClosed)
        // Within the stream's window, but past what the session may hold.
        try self.send(server.channel, YamuxFrameHeader(type: .data, streamID: 1, length: 60_000), payload: ByteBuffer(repeating: 1, count: 60_000))
        #expect(server.handler.isClosed)
        #expect(try outboundFrames(server.channel).last == YamuxFrameHeader(type: .goAway, streamID: 0, length: 2))
    }

    @Test func readDataLeavesTheCount() throws {
        let server = try self.makeServer()
        let stream = try self.accept(1, on: server, reading: false)
        try self.send(server.channel, YamuxFrameHeader(type: .data, streamID: 1, length: 1000), payload: ByteBuffer(repeating: 1, count: 1000))
        #expect(server.handler.statistics.bufferedBytes == 1000)
        stream.read()
        #expect(server.handler.statistics.bufferedBytes == 0)
        try self.send(server.channel, YamuxFrameHeader(type: .data, streamID: 1, length: 500), payload: ByteBuffer(repeating: 1, count: 500))
        stream.close(promise: nil)
        server.channel.embeddedEventLoop.run()
        #expect(server.handler.statistics.bufferedBytes == 0)
    }

    // MARK: frame read timeout

    @Test func aFrameThatNeverCompletesEndsTheSession() throws {
        let server = try self.makeServer { $0.frameReadTimeout = .seconds(30) }
        _ = try self.accept(1, on: server)
        _ = try outboundFrames(server.channel)
        // A data frame that claims 100 bytes and brings 10.
        try self.send(server.channel, YamuxFrameHeader(type: .data, streamID: 1, length: 100), payload: ByteBuffer(repeating: 1, count: 10))
        server.channel.embeddedEventLoop.advanceTime(by: .seconds(29))
        #expect(!server.handler.isClosed)
        // Some of the rest, still not all: the frame's time runs from its header.
        try server.channel.writeInbound(ByteBuffer(repeating: 1, count: 10))
        server.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(server.handler.isClosed)
        #expect(try outboundFrames(server.channel).last == YamuxFrameHeader(type: .goAway, streamID: 0, length: 1))
    }

    @Test func halfAHeaderIsTimedOutToo() throws {
        let server = try self.makeServer { $0.frameReadTimeout = .seconds(30) }
        try server.channel.writeInbound(ByteBuffer(bytes: [0, 2, 0, 1, 0]))
        server.channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(server.handler.isClosed)
    }

    @Test func anIdleConnectionBetweenFramesIsNotTimedOut() throws {
        let server = try self.makeServer { $0.frameReadTimeout = .seconds(30) }
        _ = try self.accept(1, on: server)
        try self.send(server.channel, YamuxFrameHeader(type: .data, streamID: 1, length: 100), payload: ByteBuffer(repeating: 1, count: 10))
        server.channel.embeddedEventLoop.advanceTime(by: .seconds(20))
        try server.channel.writeInbound(ByteBuffer(repeating: 1, count: 90))
        server.channel.embeddedEventLoop.advanceTime(by: .hours(1))
        #expect(!server.handler.isClosed)
    }

    @Test func aStreamOfPartialFramesIsNotTimedOutWhileFramesComplete() throws {
        let server = try self.makeServer { $0.frameReadTimeout = .seconds(30) }
        _ = try self.accept(1, on: server)
        // Every read ends inside a frame, but each time a later one: a bulk
        // transfer whose reads never line up with frames.
        var frame = ByteBuffer()
        YamuxFrameHeader(type: .data, streamID: 1, length: 100).write(to: &frame)
        frame.writeRepeatingByte(1, count: 100)
        var carry = frame.getSlice(at: 0, length: 60)!
        for _ in 0..<10 {
            try server.channel.writeInbound(carry)
            server.channel.embeddedEventLoop.advanceTime(by: .seconds(20))
            // The rest of this frame and the first 60 bytes of the next.
            var next = frame.getSlice(at: 60, length: frame.readableBytes - 60)!
            next.writeImmutableBuffer(frame.getSlice(at: 0, length: 60)!)
            carry = next
        }
        #expect(!server.handler.isClosed)
    }
}
