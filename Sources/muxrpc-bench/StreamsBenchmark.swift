import ArgumentParser
import NIOCore
import NIOPosix
import Yamux

/// Bulk transfer over yamux streams on one loopback session.
struct StreamsBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streams",
        abstract: "Yamux bulk transfer: --bytes in total over --streams streams at once, --chunk per write, counted at the receiver."
    )

    @Option(help: "Concurrent streams.")
    var streams = 1

    @Option(help: "Bytes in total, split evenly over the streams.")
    var bytes = 1 << 30

    @Option(help: "Bytes per write.")
    var chunk = 64 << 10

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard streams > 0, bytes >= streams, chunk > 0 else {
            throw ValidationError("--streams, --bytes and --chunk must be positive, and --bytes at least --streams")
        }
    }

    func run() async throws {
        let pair = try await YamuxLoopbackPair()
        let perStream = bytes / streams
        let clock = ContinuousClock()
        let start = clock.now
        try await pair.transfer(streams: streams, bytesPerStream: perStream, chunk: chunk)
        let elapsed = clock.now - start
        await pair.close()

        var report = BenchmarkReport()
        report.add("streams", streams)
        report.add("chunk", chunk)
        report.add("bytes", perStream * streams)
        report.add("MBps", Double(perStream * streams) / elapsed.seconds / 1e6)
        report.print(json: output.json)
    }
}

/// A yamux client session connected over 127.0.0.1 to a server session that
/// reads each stream to its end and answers with the number of bytes it got.
final class YamuxLoopbackPair: Sendable {
    let server: any Channel
    let client: YamuxSession

    init() async throws {
        var configuration = YamuxConfiguration()
        configuration.enableKeepAlive = false
        let serverConfiguration = configuration
        server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let session = try YamuxSession.configure(on: channel, role: .server, configuration: serverConfiguration)
                    Task { await Self.serve(session) }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let clientChannel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: server.localAddress!.port!).get()
        client = try await YamuxSession.install(on: clientChannel, role: .client, configuration: configuration).get()
    }

    static func serve(_ session: YamuxSession) async {
        await withTaskGroup(of: Void.self) { group in
            do {
                for try await stream in session.inboundStreams {
                    group.addTask {
                        try? await stream.executeThenClose { inbound, outbound in
                            var received: UInt64 = 0
                            for try await chunk in inbound { received += UInt64(chunk.readableBytes) }
                            try await outbound.write(ByteBuffer(integer: received))
                        }
                    }
                }
            } catch {}
        }
    }

    /// Sends `bytesPerStream` on each of `streams` streams at once; checks the
    /// server's count for each.
    func transfer(streams: Int, bytesPerStream: Int, chunk: Int) async throws {
        let payload = ByteBuffer(repeating: 0x5a, count: chunk)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<streams {
                group.addTask {
                    let stream = try await self.client.openStream()
                    try await stream.executeThenClose { inbound, outbound in
                        var sent = 0
                        while sent < bytesPerStream {
                            let size = min(chunk, bytesPerStream - sent)
                            try await outbound.write(size == chunk ? payload : payload.getSlice(at: 0, length: size)!)
                            sent += size
                        }
                        outbound.finish()
                        var answer = ByteBuffer()
                        for try await part in inbound { answer.writeImmutableBuffer(part) }
                        guard answer.readInteger(as: UInt64.self) == UInt64(bytesPerStream) else {
                            throw ValidationError("the server counted a different number of bytes")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    func close() async {
        await client.close()
        try? await server.close()
    }
}

/// Stream open and close, one after another on one session.
struct StreamOpenBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream-open",
        abstract: "Yamux stream open+close rate: --count streams, one at a time (open, FIN, the server's answer, close)."
    )

    @Option(help: "Streams to open and close.")
    var count = 10_000

    @OptionGroup var output: OutputOptions

    func run() async throws {
        let pair = try await YamuxLoopbackPair()
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<count {
            try await pair.transfer(streams: 1, bytesPerStream: 0, chunk: 1)
        }
        let elapsed = clock.now - start
        await pair.close()

        var report = BenchmarkReport()
        report.add("streams", count)
        report.add("opens_per_s", Double(count) / elapsed.seconds)
        report.print(json: output.json)
    }
}
