import DemoServices
import MsgpackRPC
import MuxRPC
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycleTestKit
import Testing

/// The client stack against several real servers on loopback.
@Suite("MuxRPC client", .timeLimit(.minutes(5)))
struct MuxRPCClientTests {
    typealias EchoArgs = DemoServices.EchoArgs
    typealias EchoReply = DemoServices.EchoReply

    /// A server of the demo services that counts the Echo.Echo calls it answers.
    final class CountingServer: Sendable {
        let server: MuxRPCServer
        private let echoes = NIOLockedValueBox(0)

        init(services: RPCServiceRegistry = DemoServices.registry, configuration: MuxRPCServer.Configuration = .patient()) {
            var services = services
            let echoes = self.echoes
            services.register(service: "Echo", method: "Echo") { (args: EchoArgs, _) -> EchoReply in
                echoes.withLockedValue { $0 += 1 }
                return EchoReply(msg: args.msg)
            }
            server = MuxRPCServer(services: services, configuration: configuration)
        }

        var echoCount: Int { echoes.withLockedValue { $0 } }
    }

    static func startServers(_ count: Int) async throws -> ([CountingServer], [SocketAddress]) {
        var servers: [CountingServer] = []
        var addresses: [SocketAddress] = []
        for _ in 0..<count {
            let server = CountingServer()
            addresses.append(try await server.server.start())
            servers.append(server)
        }
        return (servers, addresses)
    }

    static func echo(_ client: MuxRPCClient, _ text: String, options: RPCCallOptions = .defaults) async throws {
        let message = Array(text.utf8)
        let reply = try await client.call("Echo.Echo", EchoArgs(msg: message), returning: EchoReply.self, options: options)
        #expect(reply.msg == message)
    }

    /// A port nothing listens on.
    static func deadAddress() async throws -> SocketAddress {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let address = channel.localAddress!
        try await channel.close()
        return address
    }

    static let policies: [(String, any LoadBalancer)] = [
        ("round robin", RoundRobinBalancer()),
        ("random", RandomBalancer()),
        ("weighted random", WeightedRandomBalancer()),
        ("power of two choices", PowerOfTwoChoicesBalancer()),
    ]

    @Test("calls spread over every server", arguments: 0..<4)
    func spread(policy: Int) async throws {
        let (servers, addresses) = try await Self.startServers(3)
        // A latency peak fades within milliseconds here: on a machine busy
        // with the other tests, one slow reply would otherwise keep its
        // server out of favour for seconds, longer than this test runs. That
        // is the balancer doing its job, not this test's subject
        // (ClientPolicyTests checks the decay itself).
        let configuration = MuxRPCClient.Configuration(loadBalancer: Self.policies[policy].1, latencyDecay: .milliseconds(20))
        let client = try MuxRPCClient(endpoints: addresses.map { Endpoint($0) }, configuration: configuration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<6 {
                group.addTask { for call in 0..<100 { try await Self.echo(client, "\(lane)/\(call)") } }
            }
            try await group.waitForAll()
        }
        let counts = servers.map(\.echoCount)
        #expect(counts.reduce(0, +) == 600)
        #expect(counts.allSatisfy { $0 >= 60 }, "\(Self.policies[policy].0): \(counts)")
        if policy == 0 { #expect(counts == [200, 200, 200]) }
        await client.shutdown()
        for server in servers { await server.server.shutdown() }
    }

    @Test("a server killed mid-run: calls move to the others; only calls in flight on it fail")
    func serverKilled() async throws {
        let (servers, survivors) = try await Self.startServers(2)
        var addresses = survivors
        let victim = MuxRPCServer(services: DemoServices.registry, configuration: .patient(shutdownGracePeriod: .zero))
        addresses.append(try await victim.start())
        let client = try MuxRPCClient(endpoints: addresses.map { Endpoint($0) }, configuration: .init(loadBalancer: RoundRobinBalancer()))
        let done = NIOLockedValueBox(0)
        let failures = NIOLockedValueBox(0)
        let killed = Signal()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<8 {
                group.addTask {
                    for call in 0..<375 {
                        do {
                            try await Self.echo(client, "\(lane)/\(call)")
                        } catch {
                            failures.withLockedValue { $0 += 1 }
                        }
                        if done.withLockedValue({ $0 += 1; return $0 }) == 1_000 {
                            await victim.shutdown()
                            killed.fire()
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        await killed.wait()
        let failed = failures.withLockedValue { $0 }
        #expect(failed <= 8, "at most the 8 calls in flight fail, not \(failed)")
        let stats = client.endpointStatistics
        #expect(stats[2].calls < 3_000 / 3, "the killed server stopped getting calls")
        #expect(servers.map(\.echoCount).reduce(0, +) + stats[2].calls - stats[2].failures >= 3_000 - failed)
        await client.shutdown()
        for server in servers { await server.server.shutdown() }
    }

    @Test("a stalled server: pings find it, its breaker opens, traffic moves away, and it comes back when healed")
    func stalledServer() async throws {
        let (servers, addresses) = try await Self.startServers(1)
        let stalled = try await StalledServer.start()
        var configuration = MuxRPCClient.Configuration(
            pool: .init(healthCheckInterval: .milliseconds(200), healthCheckTimeout: .seconds(2)),
            loadBalancer: RoundRobinBalancer(),
            circuitBreaker: .init(consecutiveFailures: 2, cooldown: .seconds(3), cooldownJitter: 0),
            defaultTimeout: .seconds(2)
        )
        configuration.retry.maxAttempts = 1
        let client = try MuxRPCClient(endpoints: [Endpoint(addresses[0]), Endpoint(stalled.address)], configuration: configuration)
        func statistics(_ index: Int) -> MuxRPCEndpointStatistics { client.endpointStatistics[index] }

        // Calls to the stalled server time out until its breaker opens.
        var calls = 0
        while statistics(1).breaker == .closed, calls < 20 {
            _ = try? await Self.echo(client, "until open \(calls)")
            calls += 1
        }
        #expect(statistics(1).breaker == .open)
        #expect(statistics(1).failures >= 2)

        // From now on the stalled server gets only the breaker's probes, at
        // most one per cooldown (3 s); every other call goes to the good one.
        let (goodBefore, stalledBefore) = (statistics(0).calls, statistics(1).calls)
        let started = ContinuousClock.now
        for call in 0..<20 { _ = try? await Self.echo(client, "moved \(call)") }
        let cooldowns = Int((ContinuousClock.now - started) / .seconds(3))
        let probes = statistics(1).calls - stalledBefore
        #expect(probes <= cooldowns + 1, "\(probes) calls reached the stalled server in \(cooldowns + 1) cooldowns")
        #expect(statistics(0).calls - goodBefore == 20 - probes)
        // The health checks closed the stalled sessions (and dialled anew).
        #expect(await ConnectionPoolTests.eventually { client.pool.statistics.sessionsClosed >= 1 })

        // Healed: a real server on the stalled one's port.
        let port = stalled.address.port!
        try await stalled.close()
        var healedConfiguration = MuxRPCServer.Configuration.patient()
        healedConfiguration.port = port
        let healed = CountingServer(configuration: healedConfiguration)
        try await healed.server.start()
        let backInService = await ConnectionPoolTests.eventually {
            _ = try? await Self.echo(client, "probe")
            return healed.echoCount >= 3
        }
        #expect(backInService)
        #expect(statistics(1).breaker == .closed)
        await client.shutdown()
        await healed.server.shutdown()
        for server in servers { await server.server.shutdown() }
    }

    @Test("calls to a refusing server are retried on another")
    func retriedElsewhere() async throws {
        let (servers, addresses) = try await Self.startServers(1)
        let dead = try await Self.deadAddress()
        let attempts = AttemptCounter()
        let client = try MuxRPCClient(
            endpoints: [Endpoint(dead), Endpoint(addresses[0])],
            configuration: .init(loadBalancer: RoundRobinBalancer(), interceptors: [.apply(attempts)])
        )
        for call in 0..<20 { try await Self.echo(client, "call \(call)") }
        #expect(servers[0].echoCount == 20)
        #expect(attempts.count > 20, "the calls first sent to the dead server were retried")
        await client.shutdown()
        await servers[0].server.shutdown()
    }

    @Test("the retry budget holds under a failing server")
    func retryBudget() async throws {
        let dead = try await Self.deadAddress()
        let attempts = AttemptCounter()
        let client = try MuxRPCClient(endpoints: [Endpoint(dead)], configuration: .init(
            retry: .init(maxAttempts: 10, budgetRatio: 0.1, minimumRetriesPerSecond: 0, initialBackoff: .zero, maxBackoff: .zero),
            interceptors: [.apply(attempts)]
        ))
        for call in 0..<100 {
            let error = await #expect(throws: MuxRPCError.self) { try await Self.echo(client, "call \(call)") }
            #expect(error?.code == .connectionRefused)
        }
        let retries = attempts.count - 100
        #expect(retries > 0 && retries <= 10, "10% of 100 calls: \(retries) retries")
        await client.shutdown()
    }

    @Test("a rate-limited call, never sent, is retried within the budget and held against no endpoint")
    func rateLimitedRetried() async throws {
        let (servers, addresses) = try await Self.startServers(1)
        let clock = ManualClock()
        let limiter = RateLimitingInterceptor(ratePerSecond: 1, burst: 1, whenEmpty: .failFast, clock: clock)
        let attempts = AttemptCounter()
        let client = try MuxRPCClient(endpoints: addresses.map { Endpoint($0) }, configuration: .init(
            retry: .init(initialBackoff: .zero, maxBackoff: .zero),
            interceptors: [.apply(attempts), .apply(SecondPerRetry(clock: clock)), .apply(limiter)]
        ))
        try await Self.echo(client, "takes the token")
        // No token: the first attempt is refused; its retry comes a second
        // later on the limiter's clock, with a token.
        try await Self.echo(client, "refused, then retried")
        #expect(attempts.count == 3)
        #expect(servers[0].echoCount == 2)
        #expect(client.endpointStatistics[0].failures == 0, "a limiter's refusal says nothing of the endpoint")
        await client.shutdown()

        // With no retry budget the refusal is the call's end.
        let unbudgeted = try MuxRPCClient(endpoints: addresses.map { Endpoint($0) }, configuration: .init(
            retry: .init(budgetRatio: 0, minimumRetriesPerSecond: 0, initialBackoff: .zero, maxBackoff: .zero),
            interceptors: [.apply(limiter)]
        ))
        let error = await #expect(throws: MuxRPCError.self) { try await Self.echo(unbudgeted, "refused") }
        #expect(error?.code == .rateLimited)
        #expect(error?.requestWasSent == false && error?.isRetrySafe == true)
        #expect(servers[0].echoCount == 2)
        await unbudgeted.shutdown()
        await servers[0].server.shutdown()
    }

    @Test("a call that may have run is not retried")
    func noRetryOnceSent() async throws {
        let holding = try await HoldingServer(shutdownGracePeriod: .zero)
        let (server, address, entered, release) = (holding.server, holding.address, holding.entered, holding.release)
        let attempts = AttemptCounter()
        let client = try MuxRPCClient(endpoints: [Endpoint(address)], configuration: .init(interceptors: [.apply(attempts)]))
        let call = Task { try await client.call("Hold.Call", RPCEmpty(), returning: RPCEmpty.self) }
        await entered.wait()
        await server.shutdown()
        await #expect {
            _ = try await call.value
        } throws: { error in
            guard let error = error as? RPCError else { return false }
            return error.requestWasSent && !error.isRetrySafe
        }
        #expect(attempts.count == 1)
        release.fire()
        await client.shutdown()
    }

    @Test("retries stop at the call's deadline")
    func deadlineAcrossRetries() async throws {
        let dead = try await Self.deadAddress()
        let attempts = AttemptCounter()
        // Neither the attempts nor the budget would ever run out: only the
        // deadline can end this call.
        let client = try MuxRPCClient(endpoints: [Endpoint(dead)], configuration: .init(
            retry: .init(maxAttempts: .max, minimumRetriesPerSecond: 1_000_000, initialBackoff: .milliseconds(20), maxBackoff: .milliseconds(20)),
            interceptors: [.apply(attempts)]
        ))
        await #expect {
            try await Self.echo(client, "late", options: .init(timeout: .seconds(1)))
        } throws: { error in
            [.connectionRefused, .deadlineExceeded].contains((error as? MuxRPCError)?.code)
                || (error as? RPCError)?.code == .deadlineExceeded
        }
        #expect(attempts.count >= 1)
        await client.shutdown()
    }

    @Test("interceptors run in order, in their scope, and reach the server")
    func interceptors() async throws {
        let serverLog = NIOLockedValueBox<[String]>([])
        var rpc = RPCServer.Configuration()
        rpc.interceptors = [
            .apply(ServerRecorder(log: serverLog), to: .methods(["Echo.Echo"])),
            .apply(Refuser(), to: .services(["Arith"])),
        ]
        var configuration = MuxRPCServer.Configuration.patient()
        configuration.rpc = rpc
        let server = MuxRPCServer(services: DemoServices.registry, configuration: configuration)
        let address = try await server.start()
        let clientLog = NIOLockedValueBox<[String]>([])
        let client = try MuxRPCClient(endpoints: [Endpoint(address)], configuration: .init(interceptors: [
            .apply(ClientRecorder(name: "outer", log: clientLog)),
            .apply(ClientRecorder(name: "echo only", log: clientLog), to: .services(["Echo"])),
            .apply(TraceSetter()),
        ]))
        try await Self.echo(client, "hello")
        _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        await #expect {
            _ = try await client.call("Arith.Add", DemoServices.AddArgs(a: 1, b: 2), returning: DemoServices.AddReply.self)
        } throws: { ($0 as? RPCError)?.message == "refused by interceptor" }
        #expect(clientLog.withLockedValue { $0 } == [
            "outer > Echo.Echo", "echo only > Echo.Echo", "echo only < Echo.Echo", "outer < Echo.Echo",
            "outer > Status.Ping", "outer < Status.Ping",
            "outer > Arith.Add", "outer < Arith.Add",
        ])
        #expect(serverLog.withLockedValue { $0 } == ["Echo.Echo traceparent=\(TraceSetter.traceparent)"])
        await client.shutdown()
        await server.shutdown()
    }

    @Test("the deadline is fixed where the call starts; an interceptor's timeout can shorten it, never extend it")
    func interceptorTimeouts() async throws {
        let (servers, addresses) = try await Self.startServers(1)
        let seen = NIOLockedValueBox<[RPCCallOptions]>([])
        func client(setting timeout: Duration?) throws -> MuxRPCClient {
            try MuxRPCClient(endpoints: [Endpoint(addresses[0])], configuration: .init(interceptors: [
                .apply(OptionsRecorder(seen: seen)),
                .apply(TimeoutSetter(timeout: timeout)),
            ]))
        }
        func isLateBeforeSending(_ error: any Error) -> Bool {
            guard let error = error as? MuxRPCError else { return false }
            return error.code == .deadlineExceeded && !error.requestWasSent
        }

        // The interceptors see the call's deadline as it was given, absolute.
        let deadline = RPCDeadline.after(.seconds(60))
        let plain = try client(setting: nil)
        try await Self.echo(plain, "as given", options: .init(deadline: deadline))
        #expect(seen.withLockedValue { $0.map(\.deadline) } == [deadline])
        #expect(seen.withLockedValue { $0.allSatisfy { $0.timeout == nil } })
        await plain.shutdown()

        // A shorter timeout set by an interceptor wins: zero ends the attempt
        // before anything is sent.
        let shortening = try client(setting: .zero)
        await #expect(performing: { try await Self.echo(shortening, "never sent") }, throws: isLateBeforeSending)
        await shortening.shutdown()

        // A longer one does not move a deadline that has passed.
        let extending = try client(setting: .seconds(60))
        await #expect(
            performing: { try await Self.echo(extending, "never sent", options: .init(deadline: .after(.seconds(-1)))) },
            throws: isLateBeforeSending
        )
        await extending.shutdown()
        #expect(servers[0].echoCount == 1)
        await servers[0].server.shutdown()
    }

    @Test("a resolver's changes: new endpoints take calls, removed ones drain")
    func resolverChanges() async throws {
        let (servers, addresses) = try await Self.startServers(2)
        let resolver = PushResolver()
        let client = try MuxRPCClient(resolver: resolver)
        resolver.push([addresses[0]])
        for call in 0..<10 { try await Self.echo(client, "a \(call)") }
        #expect(servers[0].echoCount == 10)
        resolver.push([addresses[1]])
        #expect(await ConnectionPoolTests.eventually { client.endpointStatistics.map(\.endpoint.address) == [addresses[1]] })
        for call in 0..<10 { try await Self.echo(client, "b \(call)") }
        #expect(servers[1].echoCount == 10)
        #expect(servers[0].echoCount == 10)
        #expect(await ConnectionPoolTests.eventually { servers[0].server.connectionCount == 0 }, "the removed server's session drained")
        await client.shutdown()
        for server in servers { await server.server.shutdown() }
    }

    @Test("the DNS resolver finds a server by name")
    func dnsResolver() async throws {
        let (servers, addresses) = try await Self.startServers(1)
        let client = try MuxRPCClient(resolver: DNSEndpointResolver(host: "localhost", port: addresses[0].port!))
        try await Self.echo(client, "by name")
        #expect(servers[0].echoCount == 1)
        #expect(client.endpointStatistics.contains { $0.endpoint.address == addresses[0] })
        await client.shutdown()
        await servers[0].server.shutdown()
    }

    @Test("endpoints written as host:port: an IP address is called as it is, a DNS name is resolved by the client")
    func endpointsAsText() async throws {
        let (servers, addresses) = try await Self.startServers(2)
        let byAddress = try MuxRPCClient(endpoints: ["127.0.0.1:\(addresses[0].port!)"])
        try await Self.echo(byAddress, "by address")
        #expect(servers[0].echoCount == 1)
        let byName = try MuxRPCClient(endpoints: [Endpoint(host: "localhost", port: addresses[1].port!)])
        try await Self.echo(byName, "by name")
        #expect(servers[1].echoCount == 1)
        #expect(byName.endpointStatistics.contains { $0.endpoint.address.port == addresses[1].port })
        await byAddress.shutdown()
        await byName.shutdown()
        for server in servers { await server.server.shutdown() }
    }

    @Test("an endpoint that is not host:port is refused when the client is made, with a typed error")
    func malformedEndpoint() throws {
        for text: Endpoint in ["no-port", "10.0.0.5:0", "10.0.0.5:70000", ":8300"] {
            let error = #expect(throws: MuxRPCError.self) { try MuxRPCClient(endpoints: [text]) }
            #expect(error?.code == .invalidConfiguration)
            #expect(error?.requestWasSent == false)
        }
    }

    @Test("as a Service, the client shuts down with its service group")
    func service() async throws {
        let (servers, addresses) = try await Self.startServers(1)
        let client = try MuxRPCClient(endpoints: addresses.map { Endpoint($0) })
        try await testGracefulShutdown { trigger in
            let running = Task { try await client.run() }
            try await Self.echo(client, "while running")
            trigger.triggerGracefulShutdown()
            try await running.value
        }
        #expect(client.pool.statistics.connections == 0)
        await #expect {
            try await Self.echo(client, "after")
        } throws: { ($0 as? MuxRPCError)?.code == .shutDown }
        await servers[0].server.shutdown()
    }

    @Test("after shutdown calls fail at once")
    func shutdown() async throws {
        let (servers, addresses) = try await Self.startServers(1)
        let client = try MuxRPCClient(endpoints: addresses.map { Endpoint($0) })
        try await Self.echo(client, "before")
        await client.shutdown()
        await #expect {
            try await Self.echo(client, "after")
        } throws: { ($0 as? MuxRPCError)?.code == .shutDown }
        await servers[0].server.shutdown()
    }
}

/// Counts attempts.
final class AttemptCounter: ClientInterceptor {
    private let attempts = NIOLockedValueBox(0)
    var count: Int { attempts.withLockedValue { $0 } }

    func intercept(
        _ request: ClientRequest,
        context: ClientContext,
        next: (ClientRequest, ClientContext) async throws -> ClientResponse
    ) async throws -> ClientResponse {
        attempts.withLockedValue { $0 += 1 }
        return try await next(request, context)
    }
}

/// Moves a manual clock on by a second before each retry (not before a
/// first attempt), so that a rate limiter on that clock has a token for it.
struct SecondPerRetry: ClientInterceptor {
    let clock: ManualClock

    func intercept(
        _ request: ClientRequest,
        context: ClientContext,
        next: (ClientRequest, ClientContext) async throws -> ClientResponse
    ) async throws -> ClientResponse {
        if context.attempt > 1 { clock.advance(by: .seconds(1)) }
        return try await next(request, context)
    }
}

/// Logs "name > method" on the way in and "name < method" on the way out.
struct ClientRecorder: ClientInterceptor {
    let name: String
    let log: NIOLockedValueBox<[String]>

    func intercept(
        _ request: ClientRequest,
        context: ClientContext,
        next: (ClientRequest, ClientContext) async throws -> ClientResponse
    ) async throws -> ClientResponse {
        log.withLockedValue { $0.append("\(name) > \(request.serviceMethod)") }
        defer { log.withLockedValue { $0.append("\(name) < \(request.serviceMethod)") } }
        return try await next(request, context)
    }
}

/// Sets a fixed trace context on every request.
struct TraceSetter: ClientInterceptor {
    static let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    func intercept(
        _ request: ClientRequest,
        context: ClientContext,
        next: (ClientRequest, ClientContext) async throws -> ClientResponse
    ) async throws -> ClientResponse {
        var request = request
        request.options.traceContext = RPCTraceContext(traceParent: Self.traceparent)
        return try await next(request, context)
    }
}

/// Records the options each attempt reaches it with.
struct OptionsRecorder: ClientInterceptor {
    let seen: NIOLockedValueBox<[RPCCallOptions]>

    func intercept(
        _ request: ClientRequest,
        context: ClientContext,
        next: (ClientRequest, ClientContext) async throws -> ClientResponse
    ) async throws -> ClientResponse {
        seen.withLockedValue { $0.append(request.options) }
        return try await next(request, context)
    }
}

/// Sets a timeout on the requests it passes on.
struct TimeoutSetter: ClientInterceptor {
    let timeout: Duration?

    func intercept(
        _ request: ClientRequest,
        context: ClientContext,
        next: (ClientRequest, ClientContext) async throws -> ClientResponse
    ) async throws -> ClientResponse {
        var request = request
        if let timeout { request.options.timeout = timeout }
        return try await next(request, context)
    }
}

/// Records the method and trace context of what it serves.
struct ServerRecorder: RPCServerInterceptor {
    let log: NIOLockedValueBox<[String]>

    func intercept(
        _ request: RPCServerRequest,
        context: RPCServerContext,
        next: (RPCServerRequest, RPCServerContext) async throws -> RPCServerResponse
    ) async throws -> RPCServerResponse {
        log.withLockedValue { $0.append("\(context.serviceMethod) traceparent=\(context.traceContext?.traceParent ?? "none")") }
        return try await next(request, context)
    }
}

/// Refuses every call in its scope.
struct Refuser: RPCServerInterceptor {
    func intercept(
        _ request: RPCServerRequest,
        context: RPCServerContext,
        next: (RPCServerRequest, RPCServerContext) async throws -> RPCServerResponse
    ) async throws -> RPCServerResponse {
        throw RPCError(serverError: "refused by interceptor")
    }
}

/// A resolver the test pushes lists into.
final class PushResolver: EndpointResolver {
    private let stream: AsyncStream<[MuxRPCEndpoint]>
    private let continuation: AsyncStream<[MuxRPCEndpoint]>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream()
    }

    func push(_ addresses: [SocketAddress]) {
        continuation.yield(addresses.map { MuxRPCEndpoint($0) })
    }

    func run(updating update: @escaping @Sendable ([MuxRPCEndpoint]) -> Void) async throws {
        for await endpoints in stream { update(endpoints) }
    }
}

/// Accepts connections and never reads from them: a server that hangs.
final class StalledServer: Sendable {
    let listener: any Channel
    let accepted: NIOLockedValueBox<[any Channel]>
    var address: SocketAddress { listener.localAddress! }

    private init(listener: any Channel, accepted: NIOLockedValueBox<[any Channel]>) {
        self.listener = listener
        self.accepted = accepted
    }

    static func start() async throws -> StalledServer {
        let accepted = NIOLockedValueBox<[any Channel]>([])
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0.append(channel) }
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return StalledServer(listener: listener, accepted: accepted)
    }

    func close() async throws {
        try await listener.close()
        for channel in accepted.withLockedValue({ $0 }) { try? await channel.close() }
    }
}
