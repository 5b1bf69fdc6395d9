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
        /// `PowerOfTwoChoicesBalancer`.
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
        /// How long blocking queries may block and what deadline they get
        /// (in place of ``defaultTimeout``). Default: Consul's limits.
        public var blockingQueries: RPCBlockingQueryPolicy

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
            latencyDecay: Duration = .seconds(10),
            blockingQueries: RPCBlockingQueryPolicy = .init()
        ) {
            self.pool = pool
            if let mode { self.pool.connection.mode = mode }
            self.loadBalancer = loadBalancer
            self.circuitBreaker = circuitBreaker
            self.retry = retry
            self.interceptors = interceptors
            self.defaultTimeout = defaultTimeout
            self.latencyDecay = latencyDecay
            self.blockingQueries = blockingQueries
        }

        func validate() throws {
            try pool.validate()
            try circuitBreaker.validate()
            try retry.validate()
            let check = ConfigurationCheck { MuxRPCError.invalidConfiguration("MuxRPC client", $0) }
            try check.require(defaultTimeout.map { $0 > .zero } ?? true, "defaultTimeout must be positive")
            try check.require(latencyDecay > .zero, "latencyDecay must be positive")
            let blockingProblem = blockingQueries.problem
            try check.require(blockingProblem == nil, blockingProblem ?? "")
        }
    }

    /// The settings the client was made with.
    public let configuration: Configuration
    /// The pool the client's calls go through.
    public let pool: ConnectionPool
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
        // The pool keeps the endpoints' balancer and breaker state in their
        // records, next to their sessions.
        self.pool = try ConnectionPool(
            configuration: configuration.pool,
            group: group,
            endpointPolicy: EndpointPolicy(breaker: configuration.circuitBreaker, latencyDecay: configuration.latencyDecay)
        )
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
        pool.endpointStatistics
    }

    // MARK: Calls

    /// Calls `serviceMethod` ("Service.Method") on one of the servers.
    ///
    /// The call's deadline is fixed once, as it starts: the earlier of
    /// `options.deadline` and now + `options.timeout` (or
    /// ``Configuration/defaultTimeout`` when neither is set). Retries and
    /// interceptors see it as an absolute `options.deadline`, with
    /// `options.timeout` nil. An interceptor may set a timeout or an earlier
    /// deadline on the request it passes on: the attempt then ends at the
    /// earlier of the two, read once where the interceptors hand it to the
    /// pool. An interceptor cannot extend the call past its deadline.
    ///
    /// A blocking query (`RPCCallOptions.blockingQueryTime`, or arguments
    /// that adopt `RPCBlockingQueryArguments` with a `MinQueryIndex` above
    /// 0) that sets no timeout or deadline gets, in place of
    /// ``Configuration/defaultTimeout``, its blocking time (capped by
    /// ``Configuration/blockingQueries``), the server's largest jitter and a
    /// hold margin; its latency, long by design, is kept out of the
    /// endpoint's latency average, but a timeout of it counts against the
    /// endpoint as any call's does.
    ///
    /// Cancelling the calling task ends the call at once: its stream is
    /// reset (a yamux RST), which makes a MuxRPC server cancel the
    /// handler's task, and is never reused.
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
        // Nil for the common call: an option not set, and arguments that do
        // not adopt RPCBlockingQueryArguments (one cached conformance check).
        let blocking = configuration.blockingQueries.blockingTime(of: arguments, options: options)
        options.blockingQueryTime = blocking
        if options.timeout == nil, options.deadline == nil {
            options.timeout = if let blocking {
                configuration.blockingQueries.callTimeout(blocking: blocking)
            } else {
                configuration.defaultTimeout
            }
        }
        let deadline = options.effectiveDeadline
        options.deadline = deadline
        options.timeout = nil

        // The clock is read as each attempt starts, when it has its stream
        // and as it ends (the last two by the pool, on the common path):
        // every rule below takes its time from those.
        let clock = ContinuousClock()
        var now = clock.now
        budget.recordCall(at: now)
        try await waitForEndpoints(until: deadline)
        let interceptors = configuration.interceptors
        // Endpoints of failed attempts; empty (and unallocated) on the
        // common path, where the first attempt answers.
        var tried: [SocketAddress] = []
        var attempt = 1
        while true {
            let balancer = configuration.loadBalancer
            let started = now
            let address: SocketAddress
            let failure: any Error
            if interceptors.isEmpty {
                // Two locks on the way out and back, both the pool's: one
                // picks the endpoint and leases a stream on it, the other
                // returns the stream and books the outcome and latency. (The
                // retry budget counts the call with an atomic.)
                var picked: SocketAddress?
                do {
                    return try await pool.attempt(
                        pickingWith: balancer, excluding: tried, startedAt: started.timeSinceReference, deadline: deadline,
                        samplesLatency: blocking == nil, picked: &picked
                    ) { stream in
                        try await stream.call(serviceMethod, arguments, returning: Reply.self, options: options)
                    }
                } catch {
                    // No endpoint could be picked: no attempt was made.
                    guard let picked else { throw error }
                    (address, failure) = (picked, error)
                }
                now = clock.now
            } else {
                address = try pool.pickEndpoint(with: balancer, excluding: tried, at: started)
                do {
                    let (reply, sent) = try await interceptedAttempt(
                        serviceMethod, arguments, returning: Reply.self, on: address, attempt: attempt, options: options
                    )
                    let ended = clock.now
                    let latency = sent.map { ended.timeSinceReference - $0 } ?? ended - started
                    pool.finishAttempt(at: address, .answered, latency: blocking == nil ? latency : nil, at: ended, releasingPick: true)
                    return reply
                } catch {
                    failure = error
                    now = clock.now
                    pool.finishAttempt(
                        at: address, CallFailure(error).outcome, latency: blocking == nil ? now - started : nil, at: now, releasingPick: true
                    )
                }
            }
            if !tried.contains(address) { tried.append(address) }
            guard attempt < configuration.retry.maxAttempts, CallFailure(failure).isRetrySafe, !Task.isCancelled else { throw failure }
            let backoff = configuration.retry.backoff(beforeRetry: attempt)
            if let deadline, deadline.timeRemaining <= backoff { throw failure }
            guard budget.withdrawRetry(at: now) else { throw failure }
            do {
                try await Task.sleep(for: backoff)
            } catch {
                throw MuxRPCError(code: .cancelled, message: "the task was cancelled before \(serviceMethod) was retried")
            }
            now = clock.now
            attempt += 1
        }
    }

    /// An attempt through the interceptors, and the moment its stream was
    /// in hand (nil if an interceptor answered without the pool).
    private func interceptedAttempt<Arguments: Encodable & Sendable, Reply: Decodable & Sendable>(
        _ serviceMethod: String,
        _ arguments: Arguments,
        returning: Reply.Type,
        on address: SocketAddress,
        attempt: Int,
        options: RPCCallOptions
    ) async throws -> (reply: Reply, sent: Duration?) {
        let response = try await configuration.interceptors.intercept(
            serviceMethod: serviceMethod,
            ClientRequest(serviceMethod: serviceMethod, arguments: arguments, options: options),
            ClientContext(serviceMethod: serviceMethod, endpoint: address, attempt: attempt),
            invoke: { interceptor, request, context, next in
                try await interceptor.intercept(request, context: context, next: next)
            },
            terminal: { request, context in
                // The one place an interceptor's timeout is folded into the
                // deadline the call started with; below, it stays absolute.
                var options = request.options
                if options.timeout != nil {
                    options.deadline = options.effectiveDeadline
                    options.timeout = nil
                }
                var sent: Duration?
                let reply = try await self.pool.withStream(
                    to: context.endpoint, picked: address, deadline: options.deadline, sent: &sent
                ) { stream in
                    try await stream.call(request.serviceMethod, arguments, returning: Reply.self, options: options)
                }
                var response = ClientResponse(reply: reply)
                response.streamInHand = sent
                return response
            }
        )
        guard let reply = response.reply as? Reply else {
            throw RPCError(
                code: .decodingFailed,
                message: "an interceptor replaced the reply to \(serviceMethod) with a \(type(of: response.reply))",
                isStreamUsable: true
            )
        }
        return (reply, response.streamInHand)
    }

    // MARK: Endpoints

    private func update(_ endpoints: [MuxRPCEndpoint]) {
        pool.replaceEndpoints(with: endpoints)
        hasEndpointList.store(true, ordering: .releasing)
        firstEndpoints.succeed()
    }

    func waitForEndpoints(until deadline: RPCDeadline?) async throws {
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
        pool.stopPicking()
        let task = resolver.withLock { $0.take() }
        task?.cancel()
        releaseEndpointWaiters()
        await pool.shutdown(gracePeriod: gracePeriod)
    }
}
