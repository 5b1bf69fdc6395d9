import ArgumentParser
import MsgpackRPC
import MuxRPC
import NIOCore
import NIOPosix
import Synchronization
import Yamux

/// Echo.Echo calls over loopback: a `MuxRPCServer` serving `DemoServices`, and
/// `--concurrency` callers on one `MuxRPCConnection` (Consul's multiplexed
/// mode), each call on an RPC stream taken from a free list and put back after
/// it, as a connection pool hands them out.
///
/// Callers run on the connection's event loop (`Task(executorPreference:)`
/// with an `EventLoopTaskExecutor`), and the server runs its handlers there
/// too (its default), so a call crosses no thread inside either end.
struct RPCBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rpc",
        abstract: "Echo.Echo over one yamux session: --calls in total, --concurrency in flight, --payload bytes each way."
    )

    @Option(help: "Calls in total.")
    var calls = 20_000

    @Option(help: "Calls in flight at once (each on its own stream).")
    var concurrency = 1

    @Option(help: "Echo payload bytes.")
    var payload = 64

    @Flag(help: "Run the callers on Swift's cooperative threads instead of the connection's event loop.")
    var callersOffLoop = false

    @Option(help: "Event loop threads shared by server and client (default: NIO's shared group, one per core). With 1, both ends of the loopback connection run on one thread.")
    var eventLoops: Int?

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard calls > 0, concurrency > 0, payload >= 0 else {
            throw ValidationError("--calls and --concurrency must be positive, --payload not negative")
        }
    }

    func run() async throws {
        var serverConfiguration = MuxRPCServer.Configuration()
        serverConfiguration.yamux.enableKeepAlive = false
        let group: any EventLoopGroup = eventLoops.map { MultiThreadedEventLoopGroup(numberOfThreads: $0) } ?? MultiThreadedEventLoopGroup.singleton
        let server = MuxRPCServer(services: DemoServices.registry, configuration: serverConfiguration, group: group)
        let address = try await server.start()
        var clientConfiguration = MuxRPCConnection.Configuration()
        clientConfiguration.yamux.enableKeepAlive = false
        let connection = try await MuxRPCConnection.connect(to: address, configuration: clientConfiguration, group: group)

        // The one line a connection pool replaces.
        let streams: any RPCStreamSource = ConnectionStreams(connection)

        let arguments = DemoServices.EchoArgs(msg: (0..<payload).map { UInt8(truncatingIfNeeded: $0) })
        let executor = EventLoopTaskExecutor(eventLoop: connection.session!.channel.eventLoop)
        let total = calls
        let next = CallCounter()
        let offLoop = callersOffLoop
        let concurrency = self.concurrency
        let clock = ContinuousClock()
        let start = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
            for _ in 0..<concurrency {
                group.addTask(executorPreference: offLoop ? nil : executor) {
                    var mine: [Duration] = []
                    mine.reserveCapacity(total / max(1, concurrency) + 1)
                    while next.take() < total {
                        let began = clock.now
                        let reply = try await streams.withStream { client in
                            try await client.call("Echo.Echo", arguments, returning: DemoServices.EchoReply.self)
                        }
                        mine.append(clock.now - began)
                        guard reply.msg.count == arguments.msg.count else {
                            throw ValidationError("echo returned \(reply.msg.count) bytes, want \(arguments.msg.count)")
                        }
                    }
                    return mine
                }
            }
            var all: [Duration] = []
            all.reserveCapacity(total)
            for try await part in group { all += part }
            return all
        }
        let elapsed = clock.now - start
        await connection.close()
        await server.shutdown()

        let sorted = latencies.sorted()
        func micros(_ d: Duration) -> Double { d.seconds * 1e6 }
        var report = BenchmarkReport()
        report.add("calls", total)
        report.add("conc", concurrency)
        report.add("payload", payload)
        report.add("calls_per_s", Double(total) / elapsed.seconds)
        report.add("p50_us", micros(sorted[sorted.count / 2]))
        report.add("p99_us", micros(sorted[sorted.count * 99 / 100]))
        report.print(json: output.json)
    }
}

/// Where callers get an RPC stream for one call. A connection pool is one of
/// these; until it lands, ``ConnectionStreams`` stands in for it.
protocol RPCStreamSource: Sendable {
    /// Runs `body` with a stream that carries no other call meanwhile.
    func withStream<Result: Sendable>(_ body: (RPCClient) async throws -> Result) async throws -> Result
}

/// The stand-in pool: streams of one connection on a free list, opened when
/// the list is empty, put back after a call that left them usable.
final class ConnectionStreams: RPCStreamSource {
    private let connection: MuxRPCConnection
    private let idle = Mutex<[RPCClient]>([])

    init(_ connection: MuxRPCConnection) {
        self.connection = connection
    }

    func withStream<Result: Sendable>(_ body: (RPCClient) async throws -> Result) async throws -> Result {
        let reused = idle.withLock { $0.popLast() }
        let client: RPCClient
        if let reused {
            client = reused
        } else {
            client = try await connection.openStream()
        }
        do {
            let result = try await body(client)
            idle.withLock { $0.append(client) }
            return result
        } catch {
            if client.isUsable {
                idle.withLock { $0.append(client) }
            } else {
                try? await client.close()
            }
            throw error
        }
    }
}

/// Hands out call numbers to the callers.
final class CallCounter: Sendable {
    private let next = Atomic<Int>(0)
    func take() -> Int { next.add(1, ordering: .relaxed).oldValue }
}
