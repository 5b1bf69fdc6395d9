// The connection pool's costs, measured in-process on loopback:
//
//   swift run -c release --package-path Benchmarks PoolBenchmarks [--rounds R]
//
// 1. acquire/release: T tasks each borrowing and returning a stream with
//    `withStream` and no call, so only the pool's own bookkeeping and its
//    lock are measured, under contention from many tasks.
// 2. calls/s: 64-byte Echo.Echo through the pool against the same calls on
//    bare streams (one RPCClient per task, no pool), C tasks in flight,
//    alternating rounds, medians.
//
// One `key=value` line per result on stdout (Docs/benchmarks.md has the
// figures and the machine). Async code runs in a plain executable rather
// than ordo-one/benchmark, whose runner blocks a cooperative thread and
// deadlocks async benchmarks on two cores (Docs/architecture.md).

import Foundation
import MsgpackRPC
import MuxRPC
import NIOCore
import NIOPosix
import SharedDemoServices

@main
enum PoolBenchmarks {
    static func main() async throws {
        let arguments = CommandLine.arguments
        let rounds = arguments.firstIndex(of: "--rounds").flatMap { Int(arguments[$0 + 1]) } ?? 5

        // The server and the clients each get an event loop of their own, so
        // that the pool and the bare streams are placed alike: with a shared
        // group, whether a client lands on the server's thread decides the
        // one-in-flight rate more than anything measured here.
        let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = MuxRPCServer(services: DemoServices.registry, group: serverGroup)
        let address = try await server.start()

        for tasks in [1, 8, 64, 512] {
            var rates: [Double] = []
            for _ in 0..<rounds {
                rates.append(try await acquireRelease(address: address, tasks: tasks, perTask: max(2_000, 200_000 / tasks)))
            }
            print("bench=acquire_release tasks=\(tasks) ops_per_s=\(format(median(rates)))")
        }

        for concurrency in [1, 32] {
            var pooled: [Double] = []
            var bare: [Double] = []
            for _ in 0..<rounds {
                pooled.append(try await callsThroughPool(address: address, concurrency: concurrency, calls: 20_000))
                bare.append(try await callsOnBareStreams(address: address, concurrency: concurrency, calls: 20_000))
            }
            let ratio = median(pooled) / median(bare)
            print("bench=echo64 conc=\(concurrency) pool_calls_per_s=\(format(median(pooled))) bare_calls_per_s=\(format(median(bare))) pool_over_bare=\(String(format: "%.2f", ratio))")
        }
        await server.shutdown()
    }

    /// Borrow-and-return operations per second over all tasks.
    static func acquireRelease(address: SocketAddress, tasks: Int, perTask: Int) async throws -> Double {
        let pool = try ConnectionPool(configuration: .init(maxIdleStreamsPerSession: tasks), group: clientGroup)
        // Warm up: every task's stream opened once, so the loop measures reuse.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<tasks {
                group.addTask { try await pool.withStream(to: address) { _ in try await Task.sleep(for: .milliseconds(5)) } }
            }
            try await group.waitForAll()
        }
        let clock = ContinuousClock()
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    for _ in 0..<perTask {
                        try await pool.withStream(to: address) { _ in }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - start
        await pool.shutdown()
        return Double(tasks * perTask) / seconds(elapsed)
    }

    static let message = [UInt8](repeating: 0x61, count: 64)
    static let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    static func callsThroughPool(address: SocketAddress, concurrency: Int, calls: Int) async throws -> Double {
        let pool = try ConnectionPool(group: clientGroup)
        try await echo(through: pool, address: address)
        let rate = try await measure(concurrency: concurrency, calls: calls) { _ in
            try await echo(through: pool, address: address)
        }
        await pool.shutdown()
        return rate
    }

    static func callsOnBareStreams(address: SocketAddress, concurrency: Int, calls: Int) async throws -> Double {
        let connection = try await MuxRPCConnection.connect(to: address, group: clientGroup)
        var streams: [RPCClient] = []
        for _ in 0..<concurrency { streams.append(try await connection.openStream()) }
        let lanes = streams
        let rate = try await measure(concurrency: concurrency, calls: calls) { lane in
            let reply = try await lanes[lane].call("Echo.Echo", DemoServices.EchoArgs(msg: message), returning: DemoServices.EchoReply.self)
            precondition(reply.msg == message)
        }
        await connection.close()
        return rate
    }

    static func echo(through pool: ConnectionPool, address: SocketAddress) async throws {
        let reply = try await pool.call("Echo.Echo", DemoServices.EchoArgs(msg: message), returning: DemoServices.EchoReply.self, on: address)
        precondition(reply.msg == message)
    }

    /// Calls per second with `concurrency` tasks sharing `calls` calls.
    static func measure(concurrency: Int, calls: Int, _ body: @escaping @Sendable (Int) async throws -> Void) async throws -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<concurrency {
                group.addTask {
                    for _ in stride(from: lane, to: calls, by: concurrency) { try await body(lane) }
                }
            }
            try await group.waitForAll()
        }
        return Double(calls) / seconds(clock.now - start)
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static func format(_ value: Double) -> String { String(format: "%.0f", value) }
}
