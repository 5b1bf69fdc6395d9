import ArgumentParser
import DemoServices
import Foundation
import MsgpackRPC
import MuxRPC
import NIOCore
import NIOPosix
import ProcessTuning
import ProgramOptions
import Yamux

/// Echo.Echo calls at a steady rate, or none at all, against a server in
/// another process, for a fixed time, with this process's CPU time over
/// that time: what a service that is mostly idle pays for its settings.
///
/// `--clients` `MuxRPCClient`s (each with its own connection, on NIO's
/// shared group, as separate applications would have) each make one call
/// first, so that every connection is up. Then the program prints
/// `phase-start` on its own line, and for `--seconds` one caller (on
/// Swift's cooperative threads, as an application's request handler would
/// be) starts a call every 1/`--rate` seconds, taking the clients in turn;
/// with `--rate 0` it makes none and the connections sit idle (the pool's
/// health pings and yamux keepalives still run). Then it prints
/// `phase-end`, closes its connections and prints its result line. A script
/// reads the server's CPU time at `phase-start` and at `phase-end`;
/// `scripts/measure-defaults.py` does.
struct PacedBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paced",
        abstract: "Echo.Echo at --rate calls/s (0: idle connections) against --addr for --seconds; reports this process's CPU time."
    )

    @Option(help: "The server, HOST:PORT (e.g. a muxrpc-server).")
    var addr: String

    @Option(help: "Calls per second, over all clients; 0 makes none.")
    var rate: Double = 100

    @Option(help: "How long the measured phase lasts, in seconds.")
    var seconds: Double = 20

    @Option(help: "MuxRPCClients, each with a connection of its own.")
    var clients = 4

    @Option(help: "Echo payload bytes.")
    var payload = 64

    @OptionGroup var polling: BusyPollingOptions

    @Flag(help: "Flush yamux frames once at the end of each event loop turn, never early.")
    var noEarlyFlushes = false

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard rate >= 0, seconds > 0, clients > 0, payload >= 0 else {
            throw ValidationError("--rate and --payload must not be negative, --seconds and --clients must be positive")
        }
    }

    func run() async throws {
        MallocTuning.keepFreedMemoryForReuse()
        let address = try RPCBenchmark.parse(addr)
        var configuration = MuxRPCClient.Configuration()
        configuration.pool.connection.busyPolling = try polling.makePollers()
        if noEarlyFlushes { configuration.pool.connection.yamux.flushesEarly = false }
        let callers = try (0..<clients).map { _ in try MuxRPCClient(endpoints: [Endpoint(address)], configuration: configuration) }
        let arguments = DemoServices.EchoArgs(msg: (0..<payload).map { UInt8(truncatingIfNeeded: $0) })
        func call(_ client: MuxRPCClient) async throws {
            let reply = try await client.call("Echo.Echo", arguments, returning: DemoServices.EchoReply.self)
            guard reply.msg.count == arguments.msg.count else {
                throw ValidationError("echo returned \(reply.msg.count) bytes, want \(arguments.msg.count)")
            }
        }
        for client in callers { try await call(client) }

        FileHandle.standardOutput.write(Data("phase-start\n".utf8))
        let clock = ContinuousClock()
        let cpuBefore = ProcessCPUTime.now()
        let start = clock.now
        let end = start + .seconds(seconds)
        var latencies: [Duration] = []
        if rate > 0 {
            var number = 0
            while true {
                // On a schedule, not a fixed pause after each call: the rate holds whatever a call takes.
                let due = start + .seconds(Double(number) / rate)
                guard due < end else { break }
                try await Task.sleep(until: due, clock: clock)
                let began = clock.now
                try await call(callers[number % callers.count])
                latencies.append(clock.now - began)
                number += 1
            }
        } else {
            try await Task.sleep(until: end, clock: clock)
        }
        let elapsed = clock.now - start
        let cpu = ProcessCPUTime.now() - cpuBefore
        FileHandle.standardOutput.write(Data("phase-end\n".utf8))
        for client in callers { await client.shutdown() }

        let sorted = latencies.sorted()
        func micros(_ d: Duration) -> Double { d.seconds * 1e6 }
        var report = BenchmarkReport()
        report.add("calls", latencies.count)
        report.add("seconds", elapsed.seconds)
        report.add("calls_per_s", Double(latencies.count) / elapsed.seconds)
        report.add("cpu_ms", cpu.total * 1e3)
        report.add("cpu_user_ms", cpu.user * 1e3)
        report.add("cpu_sys_ms", cpu.system * 1e3)
        report.add("cpu_us_per_call", latencies.isEmpty ? 0 : cpu.total * 1e6 / Double(latencies.count))
        report.add("p50_us", sorted.isEmpty ? 0 : micros(sorted[sorted.count / 2]))
        report.add("p99_us", sorted.isEmpty ? 0 : micros(sorted[sorted.count * 99 / 100]))
        report.print(json: output.json)
    }
}

/// This process's CPU time so far, all threads (`getrusage`), in seconds.
struct ProcessCPUTime {
    var user: Double
    var system: Double
    var total: Double { user + system }

    static func now() -> ProcessCPUTime {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return ProcessCPUTime(user: seconds(usage.ru_utime), system: seconds(usage.ru_stime))
    }

    static func - (lhs: ProcessCPUTime, rhs: ProcessCPUTime) -> ProcessCPUTime {
        ProcessCPUTime(user: lhs.user - rhs.user, system: lhs.system - rhs.system)
    }
}
