import ArgumentParser
import DemoServices
import MsgpackRPC
import MuxRPC
import NIOCore
import NIOPosix
import ProgramOptions

/// One streaming call (Nomad's streaming RPC) reading `Stream.Count`'s
/// frames: how many values a second one call moves. Against this process's
/// own server in Nomad mode, or any server at `--addr` that serves
/// `Stream.Count` (`muxrpc-server --mode nomad`, or a Go peer).
struct StreamingCallBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streaming-call",
        abstract: "One streaming call reading --values frames of Stream.Count ({N: n}), through a MuxRPCConnection in Nomad mode."
    )

    @Option(help: "Frames the server writes.")
    var values = 1_000_000

    @Option(help: "Instead of reading: open this many calls that never read their frames, and report the memory they hold once the server can send them nothing more.")
    var stalled: Int?

    @Option(help: "Call the server at HOST:PORT instead of one started in this process.")
    var addr: String?

    @OptionGroup var polling: BusyPollingOptions

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard values > 0 else { throw ValidationError("--values must be positive") }
        if let stalled {
            guard stalled > 0, addr == nil else { throw ValidationError("--stalled needs a positive count and this process's own server") }
        }
    }

    func run() async throws {
        let busyPolling = try polling.makePollers()
        var server: MuxRPCServer?
        let address: SocketAddress
        if let addr {
            address = try RPCBenchmark.parse(addr)
        } else {
            var configuration = MuxRPCServer.Configuration()
            configuration.busyPolling = busyPolling
            let started = MuxRPCServer(services: DemoServices.registry, streaming: DemoStreamingServices.registry, configuration: configuration)
            address = try await started.start()
            server = started
        }
        var connectionConfiguration = MuxRPCConnection.Configuration(mode: .nomadMultiplex)
        connectionConfiguration.busyPolling = busyPolling
        let connection = try await MuxRPCConnection.connect(to: address, configuration: connectionConfiguration)

        if let stalled {
            try await measureStalled(stalled, on: connection, server: server)
            await connection.close()
            await server?.shutdown()
            return
        }

        let clock = ContinuousClock()
        let start = clock.now
        var received = 0
        var last: Int64 = -1
        for try await frame in connection.stream("Stream.Count", DemoStreamingServices.CountArgs(count: Int64(values)), of: DemoStreamingServices.CountFrame.self) {
            // Checked as they come: a benchmark that counted wrong frames
            // would measure nothing.
            guard frame.n == last + 1 else { throw ValidationError("frame \(frame.n) came after \(last)") }
            last = frame.n
            received += 1
        }
        let elapsed = clock.now - start
        guard received == values else { throw ValidationError("\(received) of \(values) frames arrived") }
        await connection.close()
        await server?.shutdown()

        var report = BenchmarkReport()
        report.add("values", values)
        report.add("values_per_s", Double(values) / elapsed.seconds)
        report.add("mean_ns", elapsed.seconds / Double(values) * 1e9)
        report.print(json: output.json)
    }

    /// Opens `count` calls of `Stream.Count` that never read, waits until the
    /// server can send them nothing more (each caller's window is full), and
    /// reports what that costs: this process's resident memory (both ends),
    /// the caller's unread bytes and the server's most buffered bytes.
    private func measureStalled(_ count: Int, on connection: MuxRPCConnection, server: MuxRPCServer?) async throws {
        guard let session = connection.session, let server else { throw ValidationError("--stalled needs a session") }
        let before = residentBytes()
        let release = AsyncStream<Void>.makeStream()
        let calls = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<count {
                    group.addTask {
                        try await connection.withStreamingCall(
                            "Stream.Count", sending: DemoStreamingServices.CountArgs.self, receiving: DemoStreamingServices.CountFrame.self
                        ) { _, writer in
                            try await writer.write(DemoStreamingServices.CountArgs(count: Int64.max))
                            for await _ in release.stream { break }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        // Full when the unread bytes stop growing: every window is spent.
        var last = -1
        var steady = 0
        while steady < 20 {
            try await Task.sleep(for: .milliseconds(10))
            let unread = await session.statistics.unreadBytes
            steady = unread == last && unread > 0 ? steady + 1 : 0
            last = unread
        }
        let after = residentBytes()
        release.continuation.finish()
        calls.cancel()
        _ = try? await calls.value

        var report = BenchmarkReport()
        report.add("stalled_calls", count)
        report.add("unread_kib_per_call", Double(last) / Double(count) / 1024)
        report.add("server_max_buffered_kib", Double(server.statistics.maxSessionBufferedBytes) / 1024)
        report.add("rss_kib_per_call", Double(after - before) / Double(count) / 1024)
        report.print(json: output.json)
    }
}
