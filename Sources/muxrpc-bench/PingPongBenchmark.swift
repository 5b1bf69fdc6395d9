import ArgumentParser
import MuxRPC
import NIOCore
import NIOPosix
import ProgramOptions

/// Raw loopback TCP round trips on NIO: one message of `--payload` bytes
/// goes out, the peer sends it back, and only then the next goes out. It is
/// the ceiling the `rpc` rows with one call in flight are read against: the
/// same two event loops, the same busy polling, no yamux and no RPC.
struct PingPongBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pingpong",
        abstract: "Raw loopback TCP round trips on NIO: --round-trips messages of --payload bytes, one in flight."
    )

    @Option(help: "Round trips in total.")
    var roundTrips = 100_000

    @Option(help: "Bytes each way per round trip.")
    var payload = 64

    @OptionGroup var loops: EventLoopOptions

    @OptionGroup var polling: BusyPollingOptions

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard roundTrips > 0, payload > 0 else { throw ValidationError("--round-trips and --payload must be positive") }
    }

    func run() async throws {
        let (group, ownGroup) = loops.makeGroup()
        let busyPolling = try polling.makePollers()
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addBusyPolling(busyPolling)
                    try channel.pipeline.syncOperations.addHandler(Reflector())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()

        let done = group.any().makePromise(of: Void.self)
        let pinger = Pinger(roundTrips: roundTrips, message: ByteBuffer(repeating: 0x5a, count: payload), done: done)
        let clock = ContinuousClock()
        let start = clock.now
        let client = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addBusyPolling(busyPolling)
                    try channel.pipeline.syncOperations.addHandler(pinger)
                }
            }
            .connect(host: "127.0.0.1", port: server.localAddress!.port!).get()
        try await done.futureResult.get()
        let elapsed = clock.now - start
        try await client.close()
        try await server.close()
        try await ownGroup?.shutdownGracefully()

        var report = BenchmarkReport()
        report.add("round_trips", roundTrips)
        report.add("payload", payload)
        report.add("round_trips_per_s", Double(roundTrips) / elapsed.seconds)
        report.add("mean_us", elapsed.seconds / Double(roundTrips) * 1e6)
        report.print(json: output.json)
    }
}

/// Sends every byte it reads straight back, one flush per read batch.
private final class Reflector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }
}

/// Sends `message`, waits for all of it to come back, sends it again, until
/// `roundTrips` are done. Its state is touched only on the channel's loop;
/// it is `Sendable` so that the bootstrap's initializer can take it.
private final class Pinger: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let roundTrips: Int
    private let message: ByteBuffer
    private let done: EventLoopPromise<Void>
    private var completed = 0
    private var pending = 0

    init(roundTrips: Int, message: ByteBuffer, done: EventLoopPromise<Void>) {
        self.roundTrips = roundTrips
        self.message = message
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending -= unwrapInboundIn(data).readableBytes
        guard pending <= 0 else { return }
        completed += 1
        if completed == roundTrips {
            done.succeed()
        } else {
            send(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if completed < roundTrips { done.fail(ChannelError.eof) }
        context.fireChannelInactive()
    }

    private func send(context: ChannelHandlerContext) {
        pending = message.readableBytes
        context.writeAndFlush(wrapOutboundOut(message), promise: nil)
    }
}
