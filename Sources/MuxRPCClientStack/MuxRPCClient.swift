public import MsgpackRPC
public import NIOCore
import NIOPosix
import Synchronization
public import MuxRPCPool
public import MuxRPCTransport

/// The client stack: calls go to several servers, chosen by a load
/// balancer, kept away from failing ones by circuit breakers, retried where
/// that is safe, through interceptors, over a `ConnectionPool`.
///
///     let client = try MuxRPCClient(endpoints: [serverA, serverB])
///     let reply = try await client.call("Echo.Echo", EchoArgs(msg: bytes), returning: EchoReply.self)
///     await client.shutdown()
///
/// A call's path: one deadline is fixed (the call's own, or
/// ``Configuration/defaultTimeout``); the balancer picks an endpoint whose
/// breaker admits calls; the interceptors run; the pool lends a stream and
/// the call is made. If the attempt fails in a way that proves the call did
/// not run (its error's `isRetrySafe`), and the retry budget and the deadline
/// allow, it is tried again on another endpoint after a jittered backoff.
public final class MuxRPCClient: Sendable {
    /// Everything about a client, each with a sensible default.
    ///
    /// The one setting most programs make is ``mode``, the wire the servers
    /// speak:
    ///
    ///     MuxRPCClient.Configuration(mode: .consulMultiplex)  // Consul's RPC port (the default)
    ///     MuxRPCClient.Configuration(mode: .nomadMultiplex)   // Nomad's RPC port
    ///     MuxRPCClient.Configuration(mode: .plain)            // one net/rpc connection per stream
    ///
    /// TLS wraps any of them, as Consul's 0x03 preamble does (with the
    /// package's default `TLS` trait): set `pool.connection.tls` to an
    /// `NIOSSLContext` and `pool.connection.serverHostname` to the name the
    /// servers' certificates carry.
    public struct Configuration: Sendable {
        /// The pool under the client: sessions, streams, limits, health pings, TLS.
        public var pool: ConnectionPool.Configuration
        /// Picks the endpoint of each attempt. Default
        /// ``PowerOfTwoChoicesBalancer``.
        public var loadBalancer: any LoadBalancer
        /// When an endpoint that keeps failing stops getting calls.
        public var circuitBreaker: CircuitBreakerConfiguration
        /// When a failed call is tried again, within a budget.
        public var retry: RetryConfiguration
        /// Run around every attempt, first outermost. Default none.
        public var interceptors: [RPCScopedInterceptor<any ClientInterceptor>]
        /// The deadline of a call that sets none. Default 30 seconds: a call
        /// to a stalled server must end some time. Nil for none.
        public var defaultTimeout: Duration?
        /// How fast old latency samples fade for the balancer. Default 10 seconds.
        public var latencyDecay: Duration

        /// The wire the servers speak: Consul's multiplexed mode (0x04, the
        /// default), Nomad's (0x06), or plain net/rpc (0x00). The same
        /// setting as `pool.connection.mode`.
        public var mode: ConnectionMode {
            get { pool.connection.mode }
            set { pool.connection.mode = newValue }
        }

        /// A configuration with every default but those given. A `mode`
        /// given here replaces the one in `pool`.
        public init(
            mode: ConnectionMode? = nil,
            pool: ConnectionPool.Configuration = .init(),
            loadBalancer: any LoadBalancer = PowerOfTwoChoicesBalancer(),
            circuitBreaker: CircuitBreakerConfiguration = .init(),
            retry: RetryConfiguration = .init(),
            interceptors: [RPCScopedInterceptor<any ClientInterceptor>] = [],
            defaultTimeout: Duration? = .seconds(30),
            latencyDecay: Duration = .seconds(10)
        ) {
            self.pool = pool
            if let mode { self.pool.connection.mode = mode }
            self.loadBalancer = loadBalancer
            self.circuitBreaker = circuitBreaker
            self.retry = retry
            self.interceptors = interceptors
            self.defaultTimeout = defaultTimeout
            self.latencyDecay = latencyDecay
        }

        func validate() throws {
            try pool.validate()
            try circuitBreaker.validate()
            try retry.validate()
            let check = ConfigurationCheck { MuxRPCError.invalidConfiguration("MuxRPC client", $0) }
            try check.require(defaultTimeout.map { $0 > .zero } ?? true, "defaultTimeout must be positive")
            try check.require(latencyDecay > .zero, "latencyDecay must be positive")
        }
    }

    /// The settings the client was made with.
    public let configuration: Configuration
    /// The pool the client's calls go through.
    public let pool: ConnectionPool
    private let table: Mutex<EndpointTable>
    private let budget: RetryBudget
    private let resolver: Mutex<Task<Void, Never>?>
    /// Completed when the first endpoint list arrives, so that calls made
    /// before it wait rather than fail.
    private let firstEndpoints: EventLoopPromise<Void>
    /// Set with the first endpoint list: each call checks it, without a lock.
    private let hasEndpointList = Atomic<Bool>(false)

    /// A client of a list of servers: `["10.0.0.5:8300", "10.0.0.6:8300"]`,
    /// or `Endpoint`s. Hosts that are DNS names are resolved by the
    /// client, and again every 30 seconds (``DNSEndpointResolver``).
    ///
    /// - Throws: `MuxRPCError` with code `MuxRPCError/Code/invalidConfiguration`
    ///   for an endpoint that is not `host:port`, or a configuration that cannot work.
    public convenience init(
        endpoints: [Endpoint],
        configuration: Configuration = .init(),
        group: (any EventLoopGroup)? = nil
    ) throws {
        if let problem = endpoints.lazy.compactMap(\.problem).first {
            throw MuxRPCError.invalidConfiguration("MuxRPC client", problem)
        }
        let addresses = endpoints.compactMap(\.ipAddress)
        if addresses.count == endpoints.count {
            try self.init(resolver: StaticEndpointResolver(addresses.map { MuxRPCEndpoint($0) }), configuration: configuration, group: group)
        } else {
            try self.init(resolver: DNSEndpointResolver(endpoints: endpoints), configuration: configuration, group: group)
        }
    }

    /// A client of the servers `resolver` reports, as they come and go.
    public init(
        resolver: some EndpointResolver,
        configuration: Configuration = .init(),
        group: (any EventLoopGroup)? = nil
    ) throws {
        try configuration.validate()
        let group = group ?? MultiThreadedEventLoopGroup.singleton
        self.configuration = configuration
        self.pool = try ConnectionPool(configuration: configuration.pool, group: group)
        self.table = Mutex(EndpointTable(breaker: configuration.circuitBreaker, latencyDecay: configuration.latencyDecay))
        self.budget = RetryBudget(configuration: configuration.retry)
        self.resolver = Mutex(nil)
        self.firstEndpoints = group.any().makePromise(of: Void.self)
        if let fixed = resolver as? StaticEndpointResolver {
            // Known now: no task, and the first call need not wait.
            update(fixed.endpoints)
        } else {
            let task = Task {
                _ = try? await resolver.run { [weak self] endpoints in self?.update(endpoints) }
            }
            self.resolver.withLock { $0 = task }
        }
    }

    deinit {
        releaseEndpointWaiters()
        resolver.withLock { $0?.cancel() }
    }

    /// Lets calls that wait for a first endpoint list go on (to fail); a
    /// no-op once a list came, so that a client outliving its event loop
    /// group does not schedule work on a dead loop.
    private func releaseEndpointWaiters() {
        if !hasEndpointList.load(ordering: .acquiring) { firstEndpoints.succeed() }
    }

    /// What the client knows of each endpoint now, in the resolver's order.
    public var endpointStatistics: [MuxRPCEndpointStatistics] {
        table.withLock { $0.statistics }
    }

    // MARK: Calls

    /// Calls `serviceMethod` ("Service.Method") on one of the servers.
    ///
    /// - Throws: `RPCError` when the call failed on its stream (the server's
    ///   error reply among them: see its `code` and `requestWasSent`),
    ///   `MuxRPCError` when MuxRPC could not get it onto a stream (no
    ///   endpoint, a refused connection, a full pool, the deadline; nothing
    ///   was sent), or an interceptor's own error. Each error is the last
    ///   attempt's; the errors' `isRetrySafe` says whether trying again
    ///   later is safe.
    public func call<Arguments: Encodable & Sendable, Reply: Decodable & Sendable>(
        _ serviceMethod: String,
        _ arguments: Arguments,
        returning: Reply.Type = Reply.self,
        options: RPCCallOptions = .defaults
    ) async throws -> Reply {
        var options = options
        if options.timeout == nil, options.deadline == nil { options.timeout = configuration.defaultTimeout }
        let deadline = options.effectiveDeadline
        options.deadline = deadline
        options.timeout = nil

        // The clock is read once as each attempt starts and once as it ends:
        // every rule below takes its time from those two.
        let clock = ContinuousClock()
        var now = clock.now
        budget.recordCall(at: now)
        try await waitForEndpoints(until: deadline)
        // Endpoints of failed attempts; empty (and unallocated) on the
        // common path, where the first attempt answers.
        var tried: [SocketAddress] = []
        var attempt = 1
        while true {
            let balancer = configuration.loadBalancer
            let started = now
            let address = try table.withLock { table throws(MuxRPCError) in
                try table.pick(with: balancer, excluding: tried, at: started)
            }
            do {
                let (reply, sent) = try await attemptCall(serviceMethod, arguments, returning: Reply.self, on: address, attempt: attempt, options: options)
                let ended = clock.now
                // The balancer learns the server's latency: from the moment a
                // stream was in hand to the reply. Waiting for the stream (a
                // dial, a full pool) says nothing of the server, and as a peak
                // it would mark a server slow for seconds after one slow dial.
                table.withLock { $0.finished(address, .answered, latency: ended - sent, at: ended) }
                return reply
            } catch {
                let failure = CallFailure(error)
                now = clock.now
                let ended = now
                table.withLock { $0.finished(address, failure.outcome, latency: ended - started, at: ended) }
                if !tried.contains(address) { tried.append(address) }
                guard attempt < configuration.retry.maxAttempts, failure.isRetrySafe, !Task.isCancelled else { throw error }
                let backoff = configuration.retry.backoff(beforeRetry: attempt)
                if let deadline, deadline.timeRemaining <= backoff { throw error }
                guard budget.withdrawRetry(at: now) else { throw error }
                do {
                    try await Task.sleep(for: backoff)
                } catch {
                    throw MuxRPCError(code: .cancelled, message: "the task was cancelled before \(serviceMethod) was retried")
                }
                now = clock.now
                attempt += 1
            }
        }
    }

    private func attemptCall<Arguments: Encodable & Sendable, Reply: Decodable & Sendable>(
        _ serviceMethod: String,
        _ arguments: Arguments,
        returning: Reply.Type,
        on address: SocketAddress,
        attempt: Int,
        options: RPCCallOptions
    ) async throws -> (reply: Reply, sent: ContinuousClock.Instant) {
        let interceptors = configuration.interceptors
        guard !interceptors.isEmpty else {
            return try await callOnPooledStream(serviceMethod, arguments, returning: Reply.self, on: address, options: options)
        }
        let sent = SendTime(.now)
        let response = try await interceptors.intercept(
            serviceMethod: serviceMethod,
            ClientRequest(serviceMethod: serviceMethod, arguments: arguments, options: options),
            ClientContext(serviceMethod: serviceMethod, endpoint: address, attempt: attempt),
            invoke: { interceptor, request, context, next in
                try await interceptor.intercept(request, context: context, next: next)
            },
            terminal: { request, context in
                let result = try await self.callOnPooledStream(
                    request.serviceMethod, arguments, returning: Reply.self, on: context.endpoint, options: request.options
                )
                sent.instant = result.sent
                return ClientResponse(reply: result.reply)
            }
        )
        guard let reply = response.reply as? Reply else {
            throw RPCError(
                code: .decodingFailed,
                message: "an interceptor replaced the reply to \(serviceMethod) with a \(type(of: response.reply))",
                isStreamUsable: true
            )
        }
        return (reply, sent.instant)
    }

    /// One call on a stream the pool lends to `address`, and the moment the
    /// stream was in hand (where the balancer's latency starts).
    private func callOnPooledStream<Arguments: Encodable, Reply: Decodable>(
        _ serviceMethod: String,
        _ arguments: Arguments,
        returning: Reply.Type,
        on address: SocketAddress,
        options: RPCCallOptions
    ) async throws -> (reply: Reply, sent: ContinuousClock.Instant) {
        // One deadline for the wait and the call, fixed now: `call` fixed
        // one, but an interceptor may have set a timeout since.
        var options = options
        options.deadline = options.effectiveDeadline
        options.timeout = nil
        let clock = ContinuousClock()
        var sent = clock.now
        let reply = try await pool.withStream(to: address, deadline: options.deadline) { stream in
            sent = clock.now
            return try await stream.call(serviceMethod, arguments, returning: Reply.self, options: options)
        }
        return (reply, sent)
    }

    /// When an attempt had its stream, set from inside the interceptors.
    private final class SendTime {
        var instant: ContinuousClock.Instant
        init(_ instant: ContinuousClock.Instant) { self.instant = instant }
    }

    // MARK: Endpoints

    private func update(_ endpoints: [MuxRPCEndpoint]) {
        let removed = table.withLock { $0.replace(with: endpoints) }
        for address in removed { pool.drain(address) }
        hasEndpointList.store(true, ordering: .releasing)
        firstEndpoints.succeed()
    }

    private func waitForEndpoints(until deadline: RPCDeadline?) async throws {
        if hasEndpointList.load(ordering: .acquiring) { return }
        let limit = deadline?.timeRemaining ?? .seconds(365 * 24 * 3600)
        if await firstEndpoints.futureResult.result(before: .now() + TimeAmount(limit)) == nil {
            throw MuxRPCError(code: .deadlineExceeded, message: "no endpoint list arrived before the deadline")
        }
    }

    // MARK: Shutdown

    /// Fails new calls with `MuxRPCError/Code/shutDown`, stops the
    /// resolver and shuts the pool down (calls in flight get its grace period).
    public func shutdown() async {
        await shutdown(gracePeriod: configuration.pool.shutdownGracePeriod)
    }

    func shutdown(gracePeriod: Duration) async {
        let task = table.withLock { table in
            table.isShutDown = true
            return resolver.withLock { $0.take() }
        }
        task?.cancel()
        releaseEndpointWaiters()
        await pool.shutdown(gracePeriod: gracePeriod)
    }
}
