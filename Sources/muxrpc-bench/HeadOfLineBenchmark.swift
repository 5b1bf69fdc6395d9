import ArgumentParser
import MuxRPC
import NIOCore
import NIOPosix
import Yamux

/// Head-of-line blocking: small echoes on one stream while another stream of the same
/// session writes to a reader that has stalled. Measured twice in one run, without the
/// stalled writer and with it, so the two latencies sit side by side.
struct HeadOfLineBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "head-of-line",
        abstract: "Yamux head-of-line: --round-trips echoes of --size bytes on one stream, alone and while another stream writes --stalled-bytes to a reader that never reads; p50/p99/max of each."
    )

    @Option(help: "Echo round trips measured, each phase.")
    var roundTrips = 10_000

    @Option(help: "Bytes per echo.")
    var size = 1024

    @Option(help: "Bytes the other stream tries to write to its stalled reader.")
    var stalledBytes = 1 << 30

    @OptionGroup var output: OutputOptions

    func run() async throws {
        let configuration = {
            var configuration = YamuxConfiguration()
            configuration.enableKeepAlive = false
            return configuration
        }()
        let serverConfiguration = configuration
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let session = try YamuxSession.configure(on: channel, role: .server, configuration: serverConfiguration)
                    Task { await Self.serve(session) }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: server.localAddress!.port!) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try YamuxSession.configure(on: channel, role: .client, configuration: configuration)
                }
            }

        // The first stream the server accepts is the one it stalls on.
        let stalled = try await client.openStream()
        try await stalled.configurePipeline { _ in }
        let alone = try await self.echoLatencies(client)

        let writer = Task {
            try await stalled.executeThenClose { _, outbound in
                let chunk = ByteBuffer(repeating: 0xab, count: 64 * 1024)
                for _ in 0..<(self.stalledBytes / chunk.readableBytes) { try await outbound.write(chunk) }
            }
        }
        let beside = try await self.echoLatencies(client)
        writer.cancel()
        _ = await writer.result
        await client.close()
        try? await server.close()

        var report = BenchmarkReport()
        report.add("round_trips", roundTrips)
        report.add("size", size)
        report.add("alone_p50_us", alone.percentile(0.50))
        report.add("alone_p99_us", alone.percentile(0.99))
        report.add("alone_max_us", alone.percentile(1.0))
        report.add("stalled_p50_us", beside.percentile(0.50))
        report.add("stalled_p99_us", beside.percentile(0.99))
        report.add("stalled_max_us", beside.percentile(1.0))
        report.print(json: output.json)
    }

    /// Round trips on a new stream, each timed.
    private func echoLatencies(_ session: YamuxSession) async throws -> Latencies {
        let stream = try await session.openStream()
        let message = ByteBuffer(repeating: 0x42, count: size)
        return try await stream.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var samples: [Duration] = []
            samples.reserveCapacity(roundTrips)
            let clock = ContinuousClock()
            for _ in 0..<roundTrips {
                let start = clock.now
                try await outbound.write(message)
                var received = 0
                while received < size {
                    guard let part = try await iterator.next() else { throw ValidationError("echo stream ended early") }
                    received += part.readableBytes
                }
                samples.append(clock.now - start)
            }
            return Latencies(samples: samples)
        }
    }

    /// The server: its first stream is never read (its window is never credited); every
    /// other stream echoes.
    private static func serve(_ session: YamuxSession) async {
        await withTaskGroup(of: Void.self) { group in
            var first = true
            do {
                for try await stream in session.inboundStreams {
                    if first {
                        first = false
                        _ = try? await stream.configurePipeline { try $0.pipeline.syncOperations.addHandler(NeverRead()) }
                        continue
                    }
                    group.addTask {
                        try? await stream.executeThenClose { inbound, outbound in
                            for try await part in inbound { try await outbound.write(part) }
                        }
                    }
                }
            } catch {}
        }
    }
}

/// Swallows read requests: the stream it sits on never reads.
private final class NeverRead: ChannelOutboundHandler, Sendable {
    typealias OutboundIn = Never
    func read(context: ChannelHandlerContext) {}
}

/// Latency samples in microseconds, sorted.
private struct Latencies {
    let sorted: [Double]

    init(samples: [Duration]) {
        self.sorted = samples.map { Double($0.components.seconds) * 1e6 + Double($0.components.attoseconds) / 1e12 }.sorted()
    }

    func percentile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }
}
