import ArgumentParser
import DemoServices
import Foundation
import Logging
import MetricsEndpoint
import MsgpackRPC
import MuxRPC
import NIOCore
import ProgramOptions
import ProcessTuning
import Synchronization

/// `muxrpc-client`: calls the demo services on one or more servers through the
/// client stack (balancing, breakers, retries, the pool), checks every answer,
/// and ends with one summary line.
///
/// Unlike MuxRPC's library, the program keeps glibc's freed memory for
/// reuse (`MallocTuning`), which changes the whole process.
@main
struct MuxRPCClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "muxrpc-client",
        abstract: "Call MuxRPC's demo services, check every answer, print a summary line.",
        discussion: """
            Exits non-zero when any answer was wrong or any call failed. Settings that differ \
            from MuxRPC's library defaults: glibc's malloc keeps freed memory for reuse (the \
            library never changes the process's allocator). Busy polling and early flushes are \
            the library's defaults; Docs/tuning.md has the measurements behind them.
            """
    )

    @Option(name: .customLong("addr"), help: "Server address HOST:PORT (repeat for several servers).")
    var addresses: [String]

    @Option(help: "Calls in total.")
    var calls = 10_000

    @Option(help: "Calls in flight at once.")
    var concurrency = 8

    @Option(help: "Bytes in each Echo.Echo payload.")
    var payload = 64

    @Option(help: "Connection mode: consul, nomad or plain.")
    var mode: Mode = .consul

    @OptionGroup var polling: BusyPollingOptions

    @Option(help: "Serve Prometheus metrics (calls, errors, latency, pool gauges) at GET /metrics on this port; 0 picks a free one.")
    var metricsPort: Int?

    @Option(help: "Address the metrics endpoint listens on.")
    var metricsHost = "127.0.0.1"

    @Option(help: "Seconds to keep serving /metrics after the calls are done, for a last scrape.")
    var metricsLinger = 0

    @Option(help: "Log level for the per-call log lines (with --metrics-port): trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "notice"

    enum Mode: String, ExpressibleByArgument {
        case consul, nomad, plain

        var connectionMode: ConnectionMode {
            switch self {
            case .consul: return .consulMultiplex
            case .nomad: return .nomadMultiplex
            case .plain: return .plain
            }
        }
    }

    func validate() throws {
        guard !addresses.isEmpty else { throw ValidationError("give at least one --addr HOST:PORT") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level \(logLevel) is not a level") }
        guard calls > 0, concurrency > 0, payload >= 0 else {
            throw ValidationError("--calls and --concurrency must be positive, --payload not negative")
        }
        for address in addresses { _ = try parse(address) }
    }

    func parse(_ address: String) throws -> Endpoint {
        guard let endpoint = Endpoint(address) else { throw ValidationError("\(address) is not HOST:PORT") }
        return endpoint
    }

    func run() async throws {
        // Large replies (Echo with --payload) would otherwise fault their buffers in afresh each call.
        MallocTuning.keepFreedMemoryForReuse()
        let servers = try addresses.map(parse)
        // With --metrics-port: Prometheus as the metrics backend, the client
        // interceptors around every attempt, and the pool's gauges.
        var interceptors: [RPCScopedInterceptor<any ClientInterceptor>] = []
        let registry = metricsPort.map { _ in bootstrapPrometheusMetrics() }
        if registry != nil {
            var logger = Logger(label: "muxrpc-client") { StreamLogHandler.standardError(label: $0) }
            logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
            interceptors = [.apply(MetricsInterceptor()), .apply(LoggingInterceptor(logger: logger))]
        }
        // One object for NIO's shared group, where the client's connections run.
        let pollers = try polling.makePollers()
        let client = try MuxRPCClient(endpoints: servers, configuration: .init(
            mode: mode.connectionMode,
            pool: .init(connection: .init(busyPolling: pollers), keepsStreamsAfterServerErrors: true),
            interceptors: interceptors
        ))
        var metrics: (server: MetricsServer, reporter: Task<Void, any Error>)?
        if let metricsPort, let registry {
            let reporter = ConnectionPoolMetricsReporter(pool: client.pool, interval: .seconds(1))
            let server = MetricsServer(registry: registry, host: metricsHost, port: metricsPort)
            let port = try await server.start()
            FileHandle.standardOutput.write(Data("metrics on \(metricsHost):\(port)\n".utf8))
            metrics = (server, Task { try await reporter.run() })
        }
        let tally = Tally(calls: calls)
        let clock = ContinuousClock()
        let start = clock.now
        let progress = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                let done = tally.done
                FileHandle.standardError.write(Data("muxrpc-client: \(done)/\(calls) calls\n".utf8))
            }
        }
        let message = (0..<payload).map { UInt8(truncatingIfNeeded: $0) }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<min(concurrency, calls) {
                group.addTask {
                    while let number = tally.take() {
                        let began = clock.now
                        do {
                            try await Self.call(number, through: client, message: message)
                            tally.record(ok: true, latency: clock.now - began)
                        } catch {
                            FileHandle.standardError.write(Data("muxrpc-client: call \(number) failed: \(error)\n".utf8))
                            tally.record(ok: false, latency: clock.now - began)
                        }
                    }
                }
            }
        }
        progress.cancel()
        let elapsed = clock.now - start
        if let metrics {
            if metricsLinger > 0 { try? await Task.sleep(for: .seconds(metricsLinger)) }
            metrics.reporter.cancel()
            _ = try? await metrics.reporter.value
            await metrics.server.shutdown()
        }
        await client.shutdown()
        let summary = tally.summary(elapsed: elapsed)
        print(summary.line)
        if summary.failed { throw ExitCode.failure }
    }

    /// Call `number` goes to one of the demo services in turn; each answer is
    /// checked against what it must be.
    static func call(_ number: Int, through client: MuxRPCClient, message: [UInt8]) async throws {
        switch number % 4 {
        case 0:
            _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        case 1:
            let a = Int64(number) * 7_919, b = -Int64(number)
            let reply = try await client.call("Arith.Add", DemoServices.AddArgs(a: a, b: b), returning: DemoServices.AddReply.self)
            guard reply.sum == a + b else { throw WrongAnswer("Arith.Add(\(a), \(b)) = \(reply.sum)") }
        case 2:
            do {
                _ = try await client.call("Test.Fail", DemoServices.FailArgs(message: "failure \(number)"), returning: RPCEmpty.self)
                throw WrongAnswer("Test.Fail succeeded")
            } catch let error as RPCError where error.code == .serverError {
                guard error.message == "failure \(number)" else { throw WrongAnswer("Test.Fail said \(error.message)") }
            }
        default:
            let reply = try await client.call("Echo.Echo", DemoServices.EchoArgs(msg: message), returning: DemoServices.EchoReply.self)
            guard reply.msg == message else { throw WrongAnswer("Echo.Echo returned \(reply.msg.count) different bytes") }
        }
    }
}

struct WrongAnswer: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Shared between the lanes: call numbers to hand out, and the results.
final class Tally: Sendable {
    private struct State {
        var next = 0
        var ok = 0
        var errors = 0
        var latencies: [Duration] = []
    }

    private let calls: Int
    private let state = Mutex(State())

    init(calls: Int) {
        self.calls = calls
        state.withLock { $0.latencies.reserveCapacity(calls) }
    }

    func take() -> Int? {
        state.withLock { state in
            guard state.next < calls else { return nil }
            defer { state.next += 1 }
            return state.next
        }
    }

    func record(ok: Bool, latency: Duration) {
        state.withLock { state in
            if ok { state.ok += 1 } else { state.errors += 1 }
            state.latencies.append(latency)
        }
    }

    var done: Int { state.withLock { $0.ok + $0.errors } }

    func summary(elapsed: Duration) -> (line: String, failed: Bool) {
        state.withLock { state in
            let sorted = state.latencies.sorted()
            func micros(_ quantile: Double) -> String {
                guard !sorted.isEmpty else { return "0" }
                let duration = sorted[min(sorted.count - 1, Int(Double(sorted.count) * quantile))]
                let (seconds, attoseconds) = duration.components
                return String(format: "%.1f", Double(seconds) * 1e6 + Double(attoseconds) / 1e12)
            }
            let (seconds, attoseconds) = elapsed.components
            let rate = Double(state.ok + state.errors) / (Double(seconds) + Double(attoseconds) / 1e18)
            let line = "calls=\(calls) ok=\(state.ok) errors=\(state.errors) calls_per_s=\(String(format: "%.0f", rate)) p50_us=\(micros(0.5)) p99_us=\(micros(0.99))"
            return (line, state.errors > 0 || state.ok != calls)
        }
    }
}
