import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import Yamux

/// A hand-driven yamux peer over raw TCP: writes hand-made frames, records every byte it gets.
final class RawPeer: Sendable {
    let channel: any Channel
    private let received: NIOLockedValueBox<ByteBuffer>

    private final class Recorder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let received: NIOLockedValueBox<ByteBuffer>
        init(_ received: NIOLockedValueBox<ByteBuffer>) { self.received = received }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = Self.unwrapInboundIn(data)
            self.received.withLockedValue { _ = $0.writeBuffer(&buffer) }
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    /// Connects to a yamux server. With `reading: false` it never reads (and keeps a tiny
    /// receive buffer), like a peer that floods without looking at answers.
    init(port: Int, reading: Bool = true) async throws {
        let received = NIOLockedValueBox(ByteBuffer())
        self.received = received
        var bootstrap = ClientBootstrap(group: testGroup)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.autoRead, value: reading)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Recorder(received))
                }
            }
        if !reading {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: 4096)
        }
        self.channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
    }

    /// Accepts one connection from a client being tested: a fake yamux server.
    init(channel: any Channel, received: NIOLockedValueBox<ByteBuffer>) {
        self.channel = channel
        self.received = received
    }

    func send(_ header: YamuxFrameHeader, payload: ByteBuffer? = nil) async throws {
        var buffer = header.encoded(allocator: self.channel.allocator)
        if var payload { buffer.writeBuffer(&payload) }
        try await self.channel.writeAndFlush(buffer)
    }

    func sendRaw(_ bytes: [UInt8]) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Frames received so far (payloads skipped).
    var frames: [YamuxFrameHeader] {
        var buffer = self.received.withLockedValue { $0 }
        var frames: [YamuxFrameHeader] = []
        while let header = try? YamuxFrameHeader.read(from: &buffer) {
            frames.append(header)
            if header.type == .data { buffer.moveReaderIndex(forwardBy: min(Int(header.length), buffer.readableBytes)) }
        }
        return frames
    }

    /// Waits until the other side closes the connection; returns the frames it sent.
    func waitForClose() async throws -> [YamuxFrameHeader] {
        try await self.channel.closeFuture.get()
        return self.frames
    }

    /// Polls (briefly) until a frame matching `predicate` arrived.
    func waitForFrame(_ predicate: (YamuxFrameHeader) -> Bool) async throws -> YamuxFrameHeader {
        while true {
            if let frame = self.frames.first(where: predicate) { return frame }
            if !self.channel.isActive { throw TestFailure("connection closed; frames: \(self.frames)") }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    func close() async {
        try? await self.channel.close()
    }
}

/// A fake yamux server that accepts connections and records bytes but never answers.
final class SilentServer: Sendable {
    let channel: any Channel
    let port: Int

    init(reading: Bool = true) async throws {
        let bootstrap = ServerBootstrap(group: testGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: reading)
            .childChannelOption(.socketOption(.so_rcvbuf), value: reading ? 65536 : 4096)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Discard())
                }
            }
        self.channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        self.port = self.channel.localAddress!.port!
    }

    private final class Discard: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    }

    func close() async { try? await self.channel.close() }
}
