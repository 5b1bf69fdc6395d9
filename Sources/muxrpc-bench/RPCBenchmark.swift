import ArgumentParser
import DemoServices
import Foundation
import MsgpackRPC
import MuxRPC
import NIOCore
import NIOPosix
import ProcessTuning
import ProgramOptions
import Synchronization
import Yamux

/// Echo.Echo calls over loopback: a `MuxRPCServer` serving `DemoServices`,
/// and `--concurrency` callers, each making one call after another.
///
/// `--path client` (the default) calls through the client stack, as an
/// application does: `MuxRPCClient` with its default configuration and no
/// interceptors (its balancer, breakers, retry budget and default deadline
/// all on the path), over its `ConnectionPool`, which lends a pooled stream
/// of one session (Consul's multiplexed mode) per call. The client is given
/// one event loop of the group (`group.next()`) for its sessions, and the
/// callers run on that loop (`Task(executorPreference:)` with an
/// `EventLoopTaskExecutor`), so a call crosses no thread inside the client;
/// `--callers-off-loop` puts them on Swift's cooperative threads instead.
///
/// `--path pool` calls through a `ConnectionPool` alone (its default
/// configuration, no deadline), without the client's balancer, breakers,
/// retry budget and default deadline: between the two, it splits what the
/// stack costs.
///
/// `--mode plain` speaks net/rpc straight on TCP (mode 0x00): no yamux,
/// a connection of its own per call in flight, which the pool (and the
/// bare path's free list) keeps and reuses as it does streams. Against the
/// default, Consul's multiplexed mode, it shows what yamux costs a call.
///
/// `--path bare` skips the client stack: callers take `RPCClient` streams of
/// one `MuxRPCConnection` from a plain free list, on the connection's loop
/// in the same way. It shows what the stack above the stream costs.
///
/// The server runs Echo.Echo on the stream's event loop: inline, as
/// `DemoServices` registers it (`--server-methods inline`, the default), or
/// as an async method in a task that prefers the loop
/// (`--server-methods async`), to show what inline methods save.
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

    enum Path: String, ExpressibleByArgument, CaseIterable {
        case client, pool, bare
    }

    @Option(help: "client: through MuxRPCClient and its ConnectionPool (default); pool: through a ConnectionPool alone; bare: RPCClient streams from a plain free list, callers on the event loop.")
    var path: Path = .client

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case consul, plain
    }

    @Option(help: "consul: Consul's multiplexed mode, calls on yamux streams of one session (default); plain: net/rpc straight on TCP, a connection per call in flight and no yamux (mode 0x00), to show what yamux costs.")
    var mode: Mode = .consul

    enum ServerMethods: String, ExpressibleByArgument, CaseIterable {
        case inline, async
    }

    @Option(help: "inline: Echo.Echo registered inline, as DemoServices does (default); async: registered as an async method, run in a task.")
    var serverMethods: ServerMethods = .inline

    @Flag(help: "Run the callers on Swift's cooperative threads instead of the client's event loop.")
    var callersOffLoop = false

    @Flag(help: "Run the in-process server's handlers off the event loop (RPCServer.Configuration.runsHandlersOnEventLoop false); only async methods run in tasks (--server-methods async).")
    var handlersOffLoop = false

    @OptionGroup var loops: EventLoopOptions

    @Option(help: "Call the server at HOST:PORT (e.g. a muxrpc-server, Consul mode) instead of one started in this process.")
    var addr: String?

    @OptionGroup var polling: BusyPollingOptions

    @Option(help: "The most yamux frames gathered before an early flush, both ends (default: YamuxConfiguration's, 16).")
    var maxFramesPerFlush: Int?

    @Flag(help: "Flush yamux frames once at the end of each event loop turn, never early, both ends.")
    var noEarlyFlushes = false

    @Option(help: "Each stream's receive window in bytes, both ends (default: YamuxConfiguration's, 256 KiB, the least yamux allows).")
    var maxStreamWindow: UInt32?

    @Flag(help: "Keep each stream's window where it starts instead of letting auto-tuning grow it, both ends.")
    var noWindowAutoTuning = false

    @Flag(help: "Keep glibc's malloc defaults instead of MallocTuning's, as muxrpc-server does unless told otherwise.")
    var defaultMalloc = false

    @Option(help: "The most bytes a connection reads at a time, both ends (default: SocketReads.default, 256 KiB; NIO's own is 64 KiB).")
    var maxReadBytes: Int?

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard calls > 0, concurrency > 0, payload >= 0 else {
            throw ValidationError("--calls and --concurrency must be positive, --payload not negative")
        }
    }

    func run() async throws {
        if !defaultMalloc { MallocTuning.keepFreedMemoryForReuse() }
        // What both ends share: keepalive off, so that only calls make traffic, and the flags.
        var yamux = YamuxConfiguration()
        yamux.enableKeepAlive = false
        if let maxFramesPerFlush { yamux.maxFramesPerFlush = maxFramesPerFlush }
        if noEarlyFlushes { yamux.flushesEarly = false }
        if let maxStreamWindow { yamux.maxStreamWindowSize = maxStreamWindow }
        if noWindowAutoTuning { yamux.enableWindowAutoTuning = false }
        let busyPolling = try polling.makePollers()
        let socketReads = maxReadBytes.map { SocketReads(maximumBytes: $0) } ?? .default
        let serverConfiguration = MuxRPCServer.Configuration(
            rpc: RPCServer.Configuration(runsHandlersOnEventLoop: !handlersOffLoop),
            yamux: yamux,
            busyPolling: busyPolling,
            socketReads: socketReads
        )
        let group = loops.makeGroup().group
        var services = DemoServices.registry
        if serverMethods == .async {
            services.register(service: "Echo", method: "Echo") { (arguments: DemoServices.EchoArgs, _) in
                DemoServices.EchoReply(msg: arguments.msg)
            }
        }
        let server: MuxRPCServer?
        let address: SocketAddress
        if let addr {
            server = nil
            address = try Self.parse(addr)
        } else {
            let started = MuxRPCServer(services: services, configuration: serverConfiguration, group: group)
            address = try await started.start()
            server = started
        }
        let connectionConfiguration = MuxRPCConnection.Configuration(
            mode: mode == .plain ? .plain : .consulMultiplex,
            yamux: yamux,
            busyPolling: busyPolling,
            socketReads: socketReads
        )
        let arguments = DemoServices.EchoArgs(msg: (0..<payload).map { UInt8(truncatingIfNeeded: $0) })
        let total = calls
        let next = CallCounter()
        let concurrency = self.concurrency
        let clock = ContinuousClock()

        /// Runs `concurrency` callers until `total` calls are made; each call's latency.
        func measure(
            executor: (any TaskExecutor)?,
            _ call: @escaping @Sendable () async throws -> DemoServices.EchoReply
        ) async throws -> [Duration] {
            try await withThrowingTaskGroup(of: [Duration].self) { group in
                for _ in 0..<concurrency {
                    group.addTask(executorPreference: executor) {
                        var mine: [Duration] = []
                        mine.reserveCapacity(total / max(1, concurrency) + 1)
                        while next.take() < total {
                            let began = clock.now
                            let reply = try await call()
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
        }

        let latencies: [Duration]
        let elapsed: Duration
        switch path {
        case .client:
            var clientConfiguration = MuxRPCClient.Configuration()
            clientConfiguration.pool.connection = connectionConfiguration
            // The client's sessions on one loop of the group, where the
            // callers run too.
            let clientLoop = group.next()
            let client = try MuxRPCClient(endpoints: [Endpoint(address)], configuration: clientConfiguration, group: clientLoop)
            let executor = EventLoopTaskExecutor(eventLoop: clientLoop)
            // The first call dials: counted, as go-bench counts its connection.
            let start = clock.now
            latencies = try await measure(executor: callersOffLoop ? nil : executor) {
                try await client.call("Echo.Echo", arguments, returning: DemoServices.EchoReply.self)
            }
            elapsed = clock.now - start
            await client.shutdown()
        case .pool:
            var poolConfiguration = ConnectionPool.Configuration()
            poolConfiguration.connection = connectionConfiguration
            let clientLoop = group.next()
            let pool = try ConnectionPool(configuration: poolConfiguration, group: clientLoop)
            let executor = EventLoopTaskExecutor(eventLoop: clientLoop)
            let start = clock.now
            latencies = try await measure(executor: callersOffLoop ? nil : executor) {
                try await pool.withStream(to: address) { stream in
                    try await stream.call("Echo.Echo", arguments, returning: DemoServices.EchoReply.self)
                }
            }
            elapsed = clock.now - start
            await pool.shutdown()
        case .bare:
            // The session (or, in plain mode, every connection) on one loop of
            // the group, where the callers run too.
            let clientLoop = group.next()
            let connection = try await MuxRPCConnection.connect(to: address, configuration: connectionConfiguration, group: clientLoop)
            let streams = ConnectionStreams(connection)
            let executor = EventLoopTaskExecutor(eventLoop: clientLoop)
            let start = clock.now
            latencies = try await measure(executor: callersOffLoop ? nil : executor) {
                try await streams.withStream { client in
                    try await client.call("Echo.Echo", arguments, returning: DemoServices.EchoReply.self)
                }
            }
            elapsed = clock.now - start
            await connection.close()
        }
        await server?.shutdown()

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

extension RPCBenchmark {
    /// HOST:PORT (an IPv4 or IPv6 literal, or a name resolved once).
    static func parse(_ address: String) throws -> SocketAddress {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            throw ValidationError("--addr must be HOST:PORT, not \(address)")
        }
        let host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return try SocketAddress.makeAddressResolvingHost(host, port: port)
    }
}

/// `--path bare`: streams of one connection on a free list, opened when
/// the list is empty, put back after a call that left them usable.
final class ConnectionStreams: Sendable {
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
