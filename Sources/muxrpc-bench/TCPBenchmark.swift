import ArgumentParser
import MuxRPC
import NIOCore
import NIOPosix

/// Raw loopback TCP on NIO: the ceiling the yamux numbers are read against.
struct TCPBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcp",
        abstract: "Raw loopback TCP on NIO: send --bytes in --chunk writes, counted at the receiver."
    )

    @Option(help: "Bytes to send in total.")
    var bytes = 1 << 30

    @Option(help: "Bytes per write.")
    var chunk = 64 << 10

    @Option(help: "Busy polling window in microseconds on both connections, as MuxRPC's connections have (default: 0, off: NIO as it comes).")
    var busyPollMicroseconds = 0

    @Flag(help: "With --busy-poll-microseconds: spin after every traffic for the window, instead of only while traffic is dense (adaptive).")
    var fixedWindow = false

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard bytes > 0, chunk > 0 else { throw ValidationError("--bytes and --chunk must be positive") }
    }

    func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let received = group.any().makePromise(of: Void.self)
        let total = bytes
        let setting = BusyPolling(window: .microseconds(busyPollMicroseconds), isAdaptive: !fixedWindow)
        try setting.validate()
        let busyPolling = setting.isEnabled ? BusyPollers(setting) : nil
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addBusyPolling(busyPolling)
                    try channel.pipeline.syncOperations.addHandler(ByteCounter(expecting: total, done: received))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()

        let sent = group.any().makePromise(of: Void.self)
        let payload = ByteBuffer(repeating: 0x5a, count: chunk)
        let clock = ContinuousClock()
        let start = clock.now
        let client = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addBusyPolling(busyPolling)
                    try channel.pipeline.syncOperations.addHandler(BulkWriter(total: total, chunk: payload, done: sent))
                }
            }
            .connect(host: "127.0.0.1", port: server.localAddress!.port!).get()
        try await received.futureResult.get()
        let elapsed = clock.now - start
        try await sent.futureResult.get()
        try await client.close()
        try await server.close()

        var report = BenchmarkReport()
        report.add("chunk", chunk)
        report.add("bytes", bytes)
        report.add("MBps", Double(bytes) / elapsed.seconds / 1e6)
        report.print(json: output.json)
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// Writes `total` bytes as fast as the channel takes them: while writable,
/// one chunk after another (the same storage each time, no copies), and
/// again when writability comes back.
final class BulkWriter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let total: Int
    private let chunk: ByteBuffer
    private let done: EventLoopPromise<Void>
    private var sent = 0

    init(total: Int, chunk: ByteBuffer, done: EventLoopPromise<Void>) {
        self.total = total
        self.chunk = chunk
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        writeWhileWritable(context: context)
        context.fireChannelActive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writeWhileWritable(context: context)
        context.fireChannelWritabilityChanged()
    }

    private func writeWhileWritable(context: ChannelHandlerContext) {
        guard sent < total else { return }
        while context.channel.isWritable && sent < total {
            let size = min(chunk.readableBytes, total - sent)
            let buffer = size == chunk.readableBytes ? chunk : chunk.getSlice(at: chunk.readerIndex, length: size)!
            sent += size
            context.write(wrapOutboundOut(buffer), promise: sent == total ? done : nil)
        }
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.close(promise: nil)
    }
}

/// Counts bytes until `expecting` have arrived.
final class ByteCounter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let expecting: Int
    private let done: EventLoopPromise<Void>
    private var received = 0

    init(expecting: Int, done: EventLoopPromise<Void>) {
        self.expecting = expecting
        self.done = done
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
        if received >= expecting { done.succeed() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if received < expecting {
            done.fail(ChannelError.eof)
        }
        context.fireChannelInactive()
    }
}
