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

    @Option(help: "Call the server at HOST:PORT instead of one started in this process.")
    var addr: String?

    @OptionGroup var polling: BusyPollingOptions

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard values > 0 else { throw ValidationError("--values must be positive") }
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
}
