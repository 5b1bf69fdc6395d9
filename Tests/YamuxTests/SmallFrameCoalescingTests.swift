import NIOCore
import NIOEmbedded
import Testing
@testable import Yamux

/// A reader that never reads, or a peer that grants no window, must cost
/// about the bytes the window or watermark lets wait, even when they come as
/// many tiny frames or writes: small payloads are copied together while they
/// wait, and arrive intact and in order. On an EmbeddedChannel, so nothing
/// depends on the machine's speed.
@Suite(.timeLimit(.minutes(2))) struct SmallFrameCoalescingTests {
    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var bytes = ByteBuffer()
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            bytes.writeBuffer(&buffer)
        }
    }

    private func makeServer() throws -> (EmbeddedChannel, YamuxSessionHandler) {
        let channel = EmbeddedChannel()
        let configuration = testConfiguration { $0.enableWindowAutoTuning = false }
        _ = try YamuxSession.configure(on: channel, role: .server, configuration: configuration)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, try channel.pipeline.syncOperations.handler(type: YamuxSessionHandler.self))
    }

    private func send(_ channel: EmbeddedChannel, _ header: YamuxFrameHeader, payload: ByteBuffer? = nil) throws {
        var buffer = header.encoded(allocator: channel.allocator)
        if var payload { buffer.writeBuffer(&payload) }
        try channel.writeInbound(buffer)
    }

    private func accept(_ id: UInt32, on channel: EmbeddedChannel, _ handler: YamuxSessionHandler) throws -> YamuxStreamChannel {
        try send(channel, YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: id, length: 0))
        var accepted: YamuxStreamChannel?
        handler.accept(token: Int(id)) { result in
            accepted = try? result.get()
            try? accepted?.syncOptions!.setOption(.autoRead, value: false)
        }
        return try #require(accepted)
    }

    /// Five bytes numbered by `index`: the frames' order shows in the bytes.
    private func smallPayload(_ index: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(truncatingIfNeeded: index >> 24))
        buffer.writeInteger(UInt32(truncatingIfNeeded: index))
        return buffer
    }

    @Test func tinyFramesForAReaderThatDoesNotReadWaitInAFewBuffersAndArriveInOrder() throws {
        let (channel, handler) = try makeServer()
        let stream = try accept(1, on: channel, handler)
        let collector = Collector()
        try stream.pipeline.syncOperations.addHandler(collector)
        let frames = 20_000  // 100 KB: within the stream's 256 KiB window
        for index in 0..<frames {
            try send(channel, YamuxFrameHeader(type: .data, streamID: 1, length: 5), payload: smallPayload(index))
        }
        // Not one buffer a frame: the first as it came, then buffers of the
        // stream's own, each filled before the next.
        let expectedBuffers = 1 + (frames - 1) * 5 / YamuxStreamChannel.coalescingBufferCapacity + 1
        #expect(stream.pendingReadBufferCount <= expectedBuffers)
        #expect(collector.bytes.readableBytes == 0)

        stream.read()
        #expect(stream.pendingReadBufferCount == 0)
        #expect(collector.bytes.readableBytes == frames * 5)
        for index in 0..<frames {
            let high = collector.bytes.readInteger(as: UInt8.self)
            let low = collector.bytes.readInteger(as: UInt32.self)
            guard high == UInt8(truncatingIfNeeded: index >> 24), low == UInt32(truncatingIfNeeded: index) else {
                Issue.record("frame \(index) arrived out of order or changed")
                break
            }
        }
        _ = try? channel.finish()
    }

    @Test func tinyWritesThePeersWindowHoldsBackWaitInAFewBuffersAndGoOutInOrder() throws {
        let (channel, handler) = try makeServer()
        let stream = try accept(1, on: channel, handler)
        // Take what accepting wrote (the ACK).
        channel.embeddedEventLoop.run()
        while try channel.readOutbound(as: ByteBuffer.self) != nil {}
        let writes = 60_000  // 300 KB: past the peer's 256 KiB window
        for index in 0..<writes {
            stream.writeAndFlush(smallPayload(index), promise: nil)
        }
        // What the window could not take waits, copied together.
        let waitingBytes = writes * 5 - Int(YamuxConfiguration.initialStreamWindow)
        #expect(stream.waitingWriteCount <= waitingBytes / YamuxStreamChannel.coalescingBufferCapacity + 3)

        // The peer opens its window: everything goes out, in order.
        try send(channel, YamuxFrameHeader(type: .windowUpdate, streamID: 1, length: UInt32(writes * 5)))
        channel.embeddedEventLoop.run()
        var wire = ByteBuffer()
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) { wire.writeBuffer(&buffer) }
        var payload = ByteBuffer()
        while let header = try YamuxFrameHeader.read(from: &wire) {
            if header.type == .data, header.length > 0 {
                guard var piece = wire.readSlice(length: Int(header.length)) else {
                    Issue.record("a data frame's payload is cut short")
                    break
                }
                payload.writeBuffer(&piece)
            }
        }
        #expect(payload.readableBytes == writes * 5)
        for index in 0..<writes {
            let high = payload.readInteger(as: UInt8.self)
            let low = payload.readInteger(as: UInt32.self)
            guard high == UInt8(truncatingIfNeeded: index >> 24), low == UInt32(truncatingIfNeeded: index) else {
                Issue.record("write \(index) went out of order or changed")
                break
            }
        }
        #expect(stream.waitingWriteCount == 0)
        _ = try? channel.finish()
    }
}
