import DemoServices
import Foundation
import MsgpackRPC
import MuxRPC
import MuxRPCPool
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Blocking queries through `MuxRPCClient`: a call that carries
/// `MinQueryIndex`/`MaxQueryTime` gets a deadline for its blocking time, not
/// the short default; absurd values are capped; its latency stays out of the
/// balancer's average.
@Suite("Blocking queries through MuxRPCClient", .timeLimit(.minutes(5)))
struct BlockingQueryClientTests {
    struct WatchArgs: Codable, Sendable, RPCBlockingQueryArguments {
        var Key = "service/web"
        var MinQueryIndex: UInt64
        var MaxQueryTime: Int64

        var minQueryIndex: UInt64 { MinQueryIndex }
        var maxQueryTimeNanoseconds: Int64 { MaxQueryTime }
    }

    struct WatchReply: Codable, Sendable, Equatable {
        var Index: UInt64
    }

    /// A server whose `KV.Watch` holds each call until the test releases it,
    /// and records the deadline each call carried.
    final class WatchServer: Sendable {
        let server: MuxRPCServer
        let entered = Signal()
        let release = Signal()
        let deadlines = NIOLockedValueBox<[RPCDeadline?]>([])

        init() {
            var services = DemoServices.registry
            let (entered, release, deadlines) = (entered, release, deadlines)
            services.register(service: "KV", method: "Watch") { (args: WatchArgs, context) -> WatchReply in
                deadlines.withLockedValue { $0.append(context.deadline) }
                entered.fire()
                await release.wait()
                // A wait cut short by the propagated deadline is no answer.
                try Task.checkCancellation()
                return WatchReply(Index: args.MinQueryIndex + 1)
            }
            services.register(service: "KV", method: "Deadline") { (args: WatchArgs, context) -> WatchReply in
                deadlines.withLockedValue { $0.append(context.deadline) }
                return WatchReply(Index: args.MinQueryIndex)
            }
            server = MuxRPCServer(services: services, configuration: .patient())
        }
    }

    @Test("a blocking query outlives the client's defaultTimeout because it carries MaxQueryTime")
    func blockingQueryOutlivesTheDefaultTimeout() async throws {
        let watch = WatchServer()
        let address = try await watch.server.start()
        let client = try MuxRPCClient(
            endpoints: [Endpoint(address)],
            configuration: .init(defaultTimeout: .milliseconds(200))
        )
        let query = Task {
            try await client.call("KV.Watch", WatchArgs(MinQueryIndex: 41, MaxQueryTime: 60_000_000_000), returning: WatchReply.self)
        }
        await watch.entered.wait()
        // The same wait without MinQueryIndex is an ordinary call: it fails
        // once the default timeout passes. It started after the query, so by
        // the time it has failed the query has outlived the default timeout.
        let ordinary = await #expect(throws: (any Error).self) {
            _ = try await client.call("KV.Watch", WatchArgs(MinQueryIndex: 0, MaxQueryTime: 60_000_000_000), returning: WatchReply.self)
        }
        // Its deadline ended it: the client's timer, the server's (which
        // answers with an error), or, on a busy machine, the wait for a stream.
        let code = (ordinary as? RPCError)?.code
        let endedByDeadline = code == .deadlineExceeded || code == .serverError
            || (ordinary as? MuxRPCError)?.code == .deadlineExceeded
        #expect(endedByDeadline, "\(String(describing: ordinary))")
        watch.release.fire()
        #expect(try await query.value == WatchReply(Index: 42))

        // Its latency, long by design, was kept out of the endpoint's
        // average; the ordinary call's timeout was counted against it.
        let endpoint = try #require(client.endpointStatistics.first)
        #expect(endpoint.calls == 2)
        await client.shutdown()
        await watch.server.shutdown()
    }

    @Test("the deadline a blocking query sends is its capped blocking time, jitter and hold margin", arguments: [
        // MaxQueryTime (ns), the blocking time the client must assume.
        (Int64(60_000_000_000), Duration.seconds(60)),
        (Int64.max, .seconds(600)),
        (Int64(-1), .seconds(300)),
        (Int64.min, .seconds(300)),
        (Int64(0), .seconds(300)),
    ])
    func sentDeadline(maxQueryTime: Int64, blocking: Duration) async throws {
        let watch = WatchServer()
        let address = try await watch.server.start()
        let client = try MuxRPCClient(endpoints: [Endpoint(address)])
        let policy = client.configuration.blockingQueries
        let before = RPCDeadline.now
        _ = try await client.call("KV.Deadline", WatchArgs(MinQueryIndex: 1, MaxQueryTime: maxQueryTime), returning: WatchReply.self)
        let after = RPCDeadline.now
        let sent = try #require(watch.deadlines.withLockedValue { $0.first } ?? nil)
        let timeout = policy.callTimeout(blocking: blocking)
        #expect(timeout == blocking + blocking / 16 + .seconds(7))
        #expect(sent >= before.advanced(by: timeout))
        #expect(sent <= after.advanced(by: timeout))
        await client.shutdown()
        await watch.server.shutdown()
    }

    @Test("a call that is not a blocking query keeps the default timeout; an explicit timeout wins over a blocking one")
    func ordinaryAndExplicitDeadlines() async throws {
        let watch = WatchServer()
        let address = try await watch.server.start()
        let client = try MuxRPCClient(endpoints: [Endpoint(address)], configuration: .init(defaultTimeout: .seconds(30)))
        var before = RPCDeadline.now
        _ = try await client.call("KV.Deadline", WatchArgs(MinQueryIndex: 0, MaxQueryTime: Int64.max), returning: WatchReply.self)
        var after = RPCDeadline.now
        var sent = try #require(watch.deadlines.withLockedValue { $0.last } ?? nil)
        #expect(sent >= before.advanced(by: .seconds(30)) && sent <= after.advanced(by: .seconds(30)))

        before = RPCDeadline.now
        _ = try await client.call(
            "KV.Deadline", WatchArgs(MinQueryIndex: 9, MaxQueryTime: 60_000_000_000), returning: WatchReply.self,
            options: RPCCallOptions(timeout: .seconds(5))
        )
        after = RPCDeadline.now
        sent = try #require(watch.deadlines.withLockedValue { $0.last } ?? nil)
        #expect(sent >= before.advanced(by: .seconds(5)) && sent <= after.advanced(by: .seconds(5)))

        // The option marks arguments that do not adopt the protocol.
        before = RPCDeadline.now
        _ = try await client.call(
            "KV.Deadline", WatchArgs(MinQueryIndex: 0, MaxQueryTime: 0), returning: WatchReply.self,
            options: RPCCallOptions(blockingQueryTime: .seconds(100))
        )
        after = RPCDeadline.now
        sent = try #require(watch.deadlines.withLockedValue { $0.last } ?? nil)
        let timeout = Duration.seconds(100 + 6.25 + 7)
        #expect(sent >= before.advanced(by: timeout) && sent <= after.advanced(by: timeout))
        await client.shutdown()
        await watch.server.shutdown()
    }

    @Test("a blocking query's latency stays out of the average; its timeout still counts against the endpoint")
    func latencyAndTimeoutBooks() async throws {
        let watch = WatchServer()
        let address = try await watch.server.start()
        // A small hold margin, so that the timeout below comes soon; the
        // default leaves the first call (a dial on a busy machine) time.
        let policy = RPCBlockingQueryPolicy(maxQueryTime: .seconds(60), defaultQueryTime: .seconds(30), holdMargin: .milliseconds(50))
        let client = try MuxRPCClient(endpoints: [Endpoint(address)], configuration: .init(blockingQueries: policy))
        // Answered: booked as a call, with no latency sample.
        _ = try await client.call("KV.Deadline", WatchArgs(MinQueryIndex: 3, MaxQueryTime: 0), returning: WatchReply.self)
        var endpoint = try #require(client.endpointStatistics.first)
        #expect(endpoint.calls == 1 && endpoint.failures == 0)
        #expect(endpoint.latency == nil)

        // Never answered: the client's own deadline ends it (the server is
        // not told the deadline, so only the client's timer can), and that
        // counts against the endpoint, still without a latency sample.
        let error = await #expect(throws: RPCError.self) {
            _ = try await client.call(
                "KV.Watch", WatchArgs(MinQueryIndex: 3, MaxQueryTime: 500_000_000), returning: WatchReply.self,
                options: RPCCallOptions(propagatesDeadline: false)
            )
        }
        #expect(error?.code == .deadlineExceeded)
        endpoint = try #require(client.endpointStatistics.first)
        #expect(endpoint.calls == 2 && endpoint.failures == 1)
        #expect(endpoint.latency == nil)

        // An ordinary call is sampled.
        _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        endpoint = try #require(client.endpointStatistics.first)
        #expect(endpoint.latency != nil)
        watch.release.fire()
        await client.shutdown()
        await watch.server.shutdown()
    }

    @Test("a client whose blocking-query limits cannot work is refused, naming what is wrong")
    func invalidPolicy() {
        let policy = RPCBlockingQueryPolicy(maxQueryTime: .seconds(10), defaultQueryTime: .seconds(20))
        let error = #expect(throws: MuxRPCError.self) {
            try MuxRPCClient(endpoints: [], configuration: .init(blockingQueries: policy))
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.description == "invalid MuxRPC client configuration: blockingQueries.defaultQueryTime must be positive and at most maxQueryTime")
    }

    @Test("a nil latency sample leaves the average as it was; the breaker still counts the outcome")
    func endpointHealthWithoutSample() {
        var health = EndpointHealth(
            endpoint: MuxRPCEndpoint(try! SocketAddress(ipAddress: "127.0.0.1", port: 1)),
            policy: EndpointPolicy(breaker: .init(), latencyDecay: .seconds(10))
        )
        let now = ContinuousClock.now
        _ = health.record(.answered, latency: nil, at: now)
        #expect(health.latency.value == nil)
        _ = health.record(.endpointFailed, latency: nil, at: now)
        #expect(health.latency.value == nil)
        #expect(health.calls == 2 && health.failures == 1)
        _ = health.record(.answered, latency: .milliseconds(3), at: now)
        #expect(health.latency.value != nil)
    }
}
