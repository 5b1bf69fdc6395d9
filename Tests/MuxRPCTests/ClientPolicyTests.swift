import MsgpackRPC
import MuxRPC
@testable import MuxRPCTransport
@testable import MuxRPCPool
@testable import MuxRPCClientStack
import NIOCore
import Testing

/// The client stack's policies, one rule at a time, with explicit times.
@Suite("Client policies")
struct ClientPolicyTests {
    static let a = try! SocketAddress(ipAddress: "127.0.0.1", port: 1)
    static let b = try! SocketAddress(ipAddress: "127.0.0.1", port: 2)
    static let c = try! SocketAddress(ipAddress: "127.0.0.1", port: 3)

    static func load(_ address: SocketAddress, weight: Double = 1, inFlight: Int = 0, latency: Duration? = nil) -> EndpointLoad {
        EndpointLoad(endpoint: MuxRPCEndpoint(address, weight: weight), callsInFlight: inFlight, latency: latency)
    }

    // MARK: Balancers

    @Test("round robin takes each endpoint in turn")
    func roundRobin() {
        let balancer = RoundRobinBalancer()
        let candidates = [Self.load(Self.a), Self.load(Self.b), Self.load(Self.c)]
        let picks = (0..<9).map { _ in balancer.pick(from: candidates) }
        #expect(picks == [0, 1, 2, 0, 1, 2, 0, 1, 2])
    }

    @Test("weighted random follows the weights and never picks weight 0")
    func weightedRandom() {
        let balancer = WeightedRandomBalancer()
        let candidates = [Self.load(Self.a, weight: 1), Self.load(Self.b, weight: 3), Self.load(Self.c, weight: 0)]
        var counts = [0, 0, 0]
        for _ in 0..<20_000 { counts[balancer.pick(from: candidates)] += 1 }
        #expect(counts[2] == 0)
        // 3/4 expected; the bounds are more than 10 standard deviations wide.
        #expect((0.70...0.80).contains(Double(counts[1]) / 20_000))
    }

    @Test("power of two choices prefers fewer calls in flight and lower latency")
    func powerOfTwoChoices() {
        let balancer = PowerOfTwoChoicesBalancer()
        let busy = [Self.load(Self.a, inFlight: 10, latency: .milliseconds(1)), Self.load(Self.b, inFlight: 0, latency: .milliseconds(1))]
        #expect((0..<100).allSatisfy { _ in balancer.pick(from: busy) == 1 })
        let slow = [Self.load(Self.a, latency: .milliseconds(1)), Self.load(Self.b, latency: .milliseconds(50))]
        #expect((0..<100).allSatisfy { _ in balancer.pick(from: slow) == 0 })
        // A new endpoint costs as much as the fastest: it is not starved.
        let fresh = [Self.load(Self.a, inFlight: 1, latency: .milliseconds(1)), Self.load(Self.b)]
        #expect((0..<100).allSatisfy { _ in balancer.pick(from: fresh) == 1 })
        // Among many, the two drawn vary: every endpoint is picked sometimes.
        let many = (1...5).map { Self.load(try! SocketAddress(ipAddress: "127.0.0.1", port: $0)) }
        #expect(Set((0..<1_000).map { _ in balancer.pick(from: many) }) == Set(0..<5))
    }

    @Test("peak EWMA jumps up at once and decays down slowly")
    func peakEWMA() {
        var average = PeakEWMA(decay: .seconds(10))
        let start = ContinuousClock.now
        average.record(.milliseconds(10), at: start)
        average.record(.milliseconds(100), at: start + .milliseconds(1))
        #expect(average.value == .milliseconds(100))
        average.record(.milliseconds(10), at: start + .seconds(1))
        let afterOneSecond = average.value!
        #expect(afterOneSecond < .milliseconds(100) && afterOneSecond > .milliseconds(80))
        average.record(.milliseconds(10), at: start + .seconds(100))
        #expect(average.value! < .milliseconds(11))
    }

    @Test("an endpoint left alone after a slow reply looks cheaper as time passes, so it is tried again")
    func peakEWMADecaysWhileUnused() {
        var slow = PeakEWMA(decay: .seconds(10))
        var fast = PeakEWMA(decay: .seconds(10))
        let start = ContinuousClock.now
        slow.record(.seconds(1), at: start)
        fast.record(.milliseconds(10), at: start)
        #expect(slow.value(at: start) == .seconds(1))
        // Thirty seconds without a sample: e^-3 of a second.
        let later = start + .seconds(30)
        let decayed = slow.value(at: later)!
        #expect(decayed > .milliseconds(49) && decayed < .milliseconds(50))
        // The balancer then prefers it over a busy fast endpoint that keeps
        // answering in 10 ms.
        fast.record(.milliseconds(10), at: later)
        let loads = [
            EndpointLoad(endpoint: MuxRPCEndpoint(Self.a), callsInFlight: 0, latency: decayed),
            EndpointLoad(endpoint: MuxRPCEndpoint(Self.b), callsInFlight: 8, latency: fast.value(at: later)),
        ]
        #expect(PowerOfTwoChoicesBalancer().pick(from: loads) == 0)
    }

    // MARK: Circuit breaker

    static let breakerSettings = CircuitBreakerConfiguration(
        consecutiveFailures: 3, failureRatio: 0.5, window: .seconds(10), minimumCalls: 10,
        cooldown: .seconds(5), cooldownJitter: 0
    )

    @Test("opens after consecutive failures; half-open after the cooldown; a probe's success closes it")
    func breakerCycle() {
        var breaker = CircuitBreaker(configuration: Self.breakerSettings)
        let now = ContinuousClock.now
        let result1 = breaker.recordFailure(at: now)
        #expect(!result1)
        let result2 = breaker.recordFailure(at: now)
        #expect(!result2)
        let result3 = breaker.recordFailure(at: now)
        #expect(result3)
        breaker.open(at: now)
        let result4 = breaker.admits(at: now + .seconds(4))
        #expect(!result4)
        let result5 = breaker.admits(at: now + .seconds(5))
        #expect(result5)
        breaker.callStarted()
        let result6 = breaker.admits(at: now + .seconds(5))
        #expect(!result6, "one probe at a time")
        breaker.recordSuccess(at: now + .seconds(6))
        #expect(breaker.state == .closed)
        let result7 = breaker.admits(at: now + .seconds(6))
        #expect(result7)
    }

    @Test("a failed probe opens the breaker again")
    func failedProbe() {
        var breaker = CircuitBreaker(configuration: Self.breakerSettings)
        let now = ContinuousClock.now
        breaker.open(at: now)
        let result8 = breaker.admits(at: now + .seconds(5))
        #expect(result8)
        breaker.callStarted()
        let result9 = breaker.recordFailure(at: now + .seconds(5))
        #expect(result9)
        breaker.open(at: now + .seconds(5))
        let result10 = breaker.admits(at: now + .seconds(9))
        #expect(!result10)
    }

    @Test("opens on the failure ratio over the window, once it holds enough calls")
    func breakerRatio() {
        var breaker = CircuitBreaker(configuration: Self.breakerSettings)
        let now = ContinuousClock.now
        var wantsOpen = false
        for call in 0..<10 {
            // Alternate, so there are never three failures in a row.
            if call % 2 == 0 { breaker.recordSuccess(at: now) } else { wantsOpen = breaker.recordFailure(at: now) }
        }
        #expect(wantsOpen, "5 of 10 failed")
        var recovered = CircuitBreaker(configuration: Self.breakerSettings)
        for call in 0..<10 { if call % 2 == 0 { recovered.recordSuccess(at: now) } else { _ = recovered.recordFailure(at: now) } }
        // Twenty seconds later the old calls have left the window.
        let result11 = recovered.recordFailure(at: now + .seconds(20))
        #expect(!result11)
    }

    @Test("the ejection cap never opens every endpoint")
    func ejectionCap() throws {
        var table = EndpointRecords(breaker: Self.breakerSettings, latencyDecay: .seconds(10))
        _ = table.replace(with: [MuxRPCEndpoint(Self.a), MuxRPCEndpoint(Self.b)])
        let now = ContinuousClock.now
        for address in [Self.a, Self.b] {
            for _ in 0..<3 {
                let picked = try table.pick(with: FirstOf(address), excluding: [], at: now)
                #expect(picked == address)
                table.finished(address, .endpointFailed, latency: .milliseconds(1), at: now)
            }
        }
        let states = table.statistics.map(\.breaker)
        #expect(states.filter { $0 == .open }.count == 1, "50% of two endpoints: one may open, \(states)")
        // The one left closed still takes calls.
        let survivor = table.statistics.first { $0.breaker == .closed }!.endpoint.address
        #expect(try table.pick(with: RandomBalancer(), excluding: [], at: now) == survivor)

        var single = EndpointRecords(breaker: Self.breakerSettings, latencyDecay: .seconds(10))
        _ = single.replace(with: [MuxRPCEndpoint(Self.a)])
        for _ in 0..<10 {
            _ = try single.pick(with: RandomBalancer(), excluding: [], at: now)
            single.finished(Self.a, .endpointFailed, latency: .milliseconds(1), at: now)
        }
        #expect(single.statistics[0].breaker == .closed)
    }

    @Test("a retry avoids the endpoints the call tried when another is admitted")
    func exclusion() throws {
        var table = EndpointRecords(breaker: Self.breakerSettings, latencyDecay: .seconds(10))
        _ = table.replace(with: [MuxRPCEndpoint(Self.a), MuxRPCEndpoint(Self.b)])
        let now = ContinuousClock.now
        #expect(try table.pick(with: FirstOf(Self.a), excluding: [Self.a], at: now) == Self.b)
        #expect(try table.pick(with: FirstOf(Self.a), excluding: [Self.a, Self.b], at: now) == Self.a)
    }

    @Test("a new endpoint list keeps the state of endpoints that stay and reports the ones removed")
    func replacingEndpoints() throws {
        var table = EndpointRecords(breaker: Self.breakerSettings, latencyDecay: .seconds(10))
        _ = table.replace(with: [MuxRPCEndpoint(Self.a), MuxRPCEndpoint(Self.b)])
        _ = try table.pick(with: FirstOf(Self.a), excluding: [], at: .now)
        let removed = table.replace(with: [MuxRPCEndpoint(Self.a), MuxRPCEndpoint(Self.c)])
        #expect(removed == [Self.b])
        #expect(table.statistics.map(\.endpoint.address) == [Self.a, Self.c])
        #expect(table.statistics[0].callsInFlight == 1)
        table.finished(Self.b, .answered, latency: .milliseconds(1), at: .now)  // a late end on a removed endpoint
        #expect(table.statistics.count == 2)
        let error = #expect(throws: MuxRPCError.self) {
            var empty = EndpointRecords(breaker: Self.breakerSettings, latencyDecay: .seconds(10))
            _ = try empty.pick(with: RandomBalancer(), excluding: [], at: .now)
        }
        #expect(error?.code == .noEndpoints)
    }

    @Test("one step picks an endpoint and leases a stream on it; one counter holds the call, waiting or leased")
    func pickAndLease() throws {
        var records = EndpointRecords(breaker: Self.breakerSettings, latencyDecay: .seconds(10))
        _ = records.replace(with: [MuxRPCEndpoint(Self.a), MuxRPCEndpoint(Self.b)])
        let instant = ContinuousClock.now
        let now = NIODeadline.now()
        let first = try records.machine.pickAndAcquire(with: FirstOf(Self.a), excluding: [], at: instant, now: now, deadlinePassed: false)
        #expect(first.address == Self.a)
        let (_, dial) = try #require(first.decision.waiting)
        #expect(records.statistics.map(\.callsInFlight) == [1, 0], "a caller waiting for a stream is load")
        let connected = records.machine.connected(try #require(dial), connection: "a#0", now: now)
        let grant = try #require(connected.grants.first?.1)
        #expect(records.statistics.map(\.callsInFlight) == [1, 0])
        #expect(records.machine.statistics.callsInFlight == 1)
        _ = records.machine.release(grant.lease, stream: 0, reusable: true, now: now)
        records.machine.finishAttempt(at: Self.a, .answered, latency: .milliseconds(3), at: instant, releasingPick: false)
        #expect(records.statistics.map(\.callsInFlight) == [0, 0])
        #expect(records.statistics[0].calls == 1 && records.statistics[0].latency == .milliseconds(3))

        // The stream returned is reused by the next pick, in the same step.
        let second = try records.machine.pickAndAcquire(with: FirstOf(Self.a), excluding: [], at: instant, now: now, deadlinePassed: false)
        guard case .idleStream(0, _) = try #require(second.decision.grant) else {
            Issue.record("expected stream 0 back, got \(second.decision)")
            return
        }
        #expect(records.statistics.map(\.callsInFlight) == [1, 0])

        // A late attempt is picked but never leased.
        let late = try records.machine.pickAndAcquire(with: FirstOf(Self.b), excluding: [], at: instant, now: now, deadlinePassed: true)
        #expect(late.decision.failure?.code == .deadlineExceeded)
        #expect(records.machine.statistics.callsInFlight == 1)
    }

    @Test("a pool without a client keeps no endpoint books")
    func poolWithoutEndpoints() throws {
        var machine = EndpointRecords.Machine(limits: EndpointRecords.limits)
        let error = #expect(throws: MuxRPCError.self) {
            _ = try machine.pickEndpoint(with: RandomBalancer(), excluding: [], at: .now)
        }
        #expect(error?.code == .noEndpoints)
        #expect(machine.endpointStatistics.isEmpty)
    }

    // MARK: Retries

    @Test("the retry budget allows a ratio of calls plus a floor per second")
    func retryBudget() {
        let budget = RetryBudget(configuration: .init(budgetRatio: 0.1, minimumRetriesPerSecond: 1, budgetWindow: .seconds(10)))
        let now = ContinuousClock.now
        for _ in 0..<100 { budget.recordCall(at: now) }
        // 1 per second × 10 s + 10% of 100 calls.
        let granted = (0..<50).filter { _ in budget.withdrawRetry(at: now) }.count
        #expect(granted == 20)
        // After the window, the old calls and retries no longer count.
        #expect(budget.withdrawRetry(at: now + .seconds(11)))
    }

    @Test("backoff is jittered, grows, and stays within its bounds")
    func backoff() {
        let retry = RetryConfiguration(initialBackoff: .milliseconds(10), maxBackoff: .milliseconds(50))
        for attempt in 1...6 {
            let bound = min(.milliseconds(50), Duration.milliseconds(10) * (1 << (attempt - 1)))
            #expect((0..<100).allSatisfy { _ in retry.backoff(beforeRetry: attempt) <= bound })
        }
        #expect(Set((0..<50).map { _ in retry.backoff(beforeRetry: 3) }).count > 1)
    }

    @Test("a client configuration that cannot work is refused, naming what is wrong")
    func invalidConfiguration() {
        let refusals: [(MuxRPCClient.Configuration, String)] = [
            (.init(retry: .init(maxAttempts: 0)), "invalid MuxRPC client configuration: retry: maxAttempts must be at least 1"),
            (.init(circuitBreaker: .init(failureRatio: 2)), "invalid MuxRPC client configuration: circuit breaker: failureRatio must be in (0, 1]"),
            (.init(defaultTimeout: .zero), "invalid MuxRPC client configuration: defaultTimeout must be positive"),
            (.init(pool: .init(healthCheckTimeout: .zero)), "invalid connection pool configuration: healthCheckTimeout must be positive"),
        ]
        for (configuration, text) in refusals {
            let error = #expect(throws: MuxRPCError.self) { try MuxRPCClient(endpoints: [], configuration: configuration) }
            #expect(error?.code == .invalidConfiguration)
            #expect(error?.description == text)
            #expect(error?.isRetrySafe == false)
        }
    }

    /// Each MuxRPC code: whether a call failing with it may be retried, and
    /// what it says of the endpoint.
    static let muxRPCCodes: [(MuxRPCError.Code, isRetrySafe: Bool, AttemptOutcome)] = [
        (.invalidConfiguration, false, .neutral),
        (.shutDown, false, .neutral),
        (.noEndpoints, false, .neutral),
        (.allEndpointsUnavailable, false, .neutral),
        (.overloaded, true, .neutral),
        (.tooManyWaiters, true, .neutral),
        (.deadlineExceeded, false, .neutral),
        (.cancelled, false, .neutral),
        (.rateLimited, true, .neutral),
        (.connectionRefused, true, .endpointFailed),
        (.unreachable, true, .endpointFailed),
        (.connectTimeout, true, .endpointFailed),
        (.connectFailed, true, .endpointFailed),
        (.streamOpenFailed, true, .endpointFailed),
        (.preambleRefused, false, .neutral),
        (.handshakeTimeout, false, .neutral),
        (.closedBeforePreamble, false, .neutral),
    ]

    @Test("MuxRPC errors: retry safety and endpoint blame follow the code", arguments: muxRPCCodes)
    func muxRPCErrorFailure(code: MuxRPCError.Code, isRetrySafe: Bool, outcome: AttemptOutcome) {
        let error = MuxRPCError(code: code, message: "")
        #expect(!error.requestWasSent)
        #expect(error.isRetrySafe == isRetrySafe)
        #expect(CallFailure(error).isRetrySafe == isRetrySafe)
        #expect(CallFailure(error).outcome == outcome)
        // Whatever the code, a request that went out is never retried.
        #expect(!MuxRPCError(code: code, message: "", requestWasSent: true).isRetrySafe)
    }

    @Test("RPC errors: only calls that were not sent are retried; the server's answers count for it")
    func rpcErrorFailure() {
        func failure(_ code: RPCError.Code, sent: Bool) -> CallFailure {
            CallFailure(RPCError(code: code, message: "", isStreamUsable: false, requestWasSent: sent))
        }
        #expect(failure(.connectionClosed, sent: false).isRetrySafe)
        #expect(failure(.streamUnusable, sent: false).isRetrySafe)
        #expect(!failure(.connectionClosed, sent: true).isRetrySafe)
        #expect(!failure(.serverError, sent: true).isRetrySafe)
        for code: RPCError.Code in [.encodingFailed, .deadlineExceeded, .cancelled] {
            #expect(!failure(code, sent: false).isRetrySafe, "\(code)")
        }
        #expect(RPCError(code: .transportFailure, message: "", isStreamUsable: false, requestWasSent: false).isRetrySafe)

        #expect(failure(.serverError, sent: true).outcome == .answered)
        #expect(failure(.decodingFailed, sent: true).outcome == .answered)
        for code: RPCError.Code in [.connectionClosed, .transportFailure, .protocolViolation, .limitExceeded, .streamUnusable] {
            #expect(failure(code, sent: true).outcome == .endpointFailed, "\(code)")
        }
        // Late counts against a server only if it had the request.
        #expect(failure(.deadlineExceeded, sent: true).outcome == .endpointFailed)
        #expect(failure(.deadlineExceeded, sent: false).outcome == .neutral)
        #expect(failure(.cancelled, sent: true).outcome == .neutral)
        #expect(failure(.encodingFailed, sent: false).outcome == .neutral)
    }

    @Test("an error of the caller's own (an interceptor's) is neither retried nor held against the endpoint")
    func foreignErrorFailure() {
        struct Refused: Error {}
        #expect(!CallFailure(Refused()).isRetrySafe)
        #expect(CallFailure(Refused()).outcome == .neutral)
        #expect(!CallFailure(CancellationError()).isRetrySafe)
    }
}

/// A balancer that picks one address whenever it is a candidate.
struct FirstOf: LoadBalancer {
    let address: SocketAddress
    init(_ address: SocketAddress) { self.address = address }
    func pick(from candidates: [EndpointLoad]) -> Int {
        candidates.firstIndex { $0.endpoint.address == address } ?? 0
    }
}

/// The endpoint records of the pool's state machine, driven the way a
/// client with interceptors drives them: a pick, then the attempt's end.
struct EndpointRecords {
    typealias Machine = ConnectionPoolStateMachine<SocketAddress, String, Int>
    var machine: Machine

    static let limits = Machine.Limits(
        maxSessionsPerAddress: 1,
        maxStreamsPerSession: 1024,
        maxIdleStreamsPerSession: 64,
        maxConcurrentCallsPerAddress: 2048,
        maxWaitersPerAddress: 1024,
        failFastWhenBusy: false,
        maxIdleTime: .seconds(120)
    )

    init(breaker: CircuitBreakerConfiguration, latencyDecay: Duration) {
        machine = Machine(limits: Self.limits, endpointPolicy: EndpointPolicy(breaker: breaker, latencyDecay: latencyDecay))
    }

    mutating func replace(with endpoints: [MuxRPCEndpoint]) -> [SocketAddress] {
        machine.replaceEndpoints(with: endpoints, now: .now()).removed
    }

    mutating func pick(with balancer: any LoadBalancer, excluding excluded: [SocketAddress], at now: ContinuousClock.Instant) throws(MuxRPCError) -> SocketAddress {
        try machine.pickEndpoint(with: balancer, excluding: excluded, at: now)
    }

    mutating func finished(_ address: SocketAddress, _ outcome: AttemptOutcome, latency: Duration, at now: ContinuousClock.Instant) {
        machine.finishAttempt(at: address, outcome, latency: latency, at: now, releasingPick: true)
    }

    var statistics: [MuxRPCEndpointStatistics] { machine.endpointStatistics }
}
