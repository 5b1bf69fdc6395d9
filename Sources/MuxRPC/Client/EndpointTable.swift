import NIOCore

/// What a client knows of one endpoint, as ``MuxRPCClient/endpointStatistics`` reports it.
public struct MuxRPCEndpointStatistics: Sendable {
    /// Where its circuit breaker stands.
    public enum BreakerState: Sendable, Hashable {
        case closed, open, halfOpen
    }

    public var endpoint: MuxRPCEndpoint
    public var callsInFlight: Int
    /// Attempts that ended, and of those the ones the endpoint failed.
    public var calls: Int
    public var failures: Int
    /// The peak-EWMA latency the balancer uses, nil before the first call.
    public var latency: Duration?
    public var breaker: BreakerState
}

/// How an attempt ended, for the endpoint's books.
enum AttemptOutcome {
    /// The server answered (an error reply included).
    case answered
    /// The endpoint failed: it could not be reached, broke the protocol,
    /// dropped the connection or did not answer in time.
    case endpointFailed
    /// Neither: cancelled, refused locally, or failed before it was sent for
    /// reasons that say nothing of the endpoint.
    case neutral
}

/// The client's endpoints with their load, latency and breakers, kept under
/// the client's lock.
struct EndpointTable {
    struct Entry {
        var endpoint: MuxRPCEndpoint
        var callsInFlight = 0
        var latency: PeakEWMA
        var breaker: CircuitBreaker
        var calls = 0
        var failures = 0
    }

    private(set) var order: [SocketAddress] = []
    private var entries: [SocketAddress: Entry] = [:]
    private(set) var hasEndpoints = false
    var isShutDown = false
    let breakerConfiguration: CircuitBreakerConfiguration
    let latencyDecay: Duration
    /// Scratch for ``pick``, kept with its memory between calls.
    private var candidates: [SocketAddress] = []
    private var loads: [EndpointLoad] = []

    init(breaker: CircuitBreakerConfiguration, latencyDecay: Duration) {
        self.breakerConfiguration = breaker
        self.latencyDecay = latencyDecay
    }

    /// Takes a resolver's new list; returns the addresses that left it.
    /// Endpoints that stay keep their load, latency and breaker.
    mutating func replace(with endpoints: [MuxRPCEndpoint]) -> [SocketAddress] {
        hasEndpoints = true
        var kept: [SocketAddress: Entry] = [:]
        var newOrder: [SocketAddress] = []
        for endpoint in endpoints where kept[endpoint.address] == nil {
            var entry = entries[endpoint.address] ?? Entry(
                endpoint: endpoint,
                latency: PeakEWMA(decay: latencyDecay),
                breaker: CircuitBreaker(configuration: breakerConfiguration)
            )
            entry.endpoint = endpoint
            kept[endpoint.address] = entry
            newOrder.append(endpoint.address)
        }
        let removed = order.filter { kept[$0] == nil }
        entries = kept
        order = newOrder
        return removed
    }

    /// Chooses the endpoint for an attempt among those whose breaker admits
    /// calls, preferring ones not in `excluded` (tried already by this call).
    mutating func pick(
        with balancer: any LoadBalancer,
        excluding excluded: [SocketAddress],
        at now: ContinuousClock.Instant
    ) throws(MuxRPCClientError) -> SocketAddress {
        if isShutDown { throw MuxRPCClientError(code: .shutDown, message: "the client is shutting down") }
        guard !order.isEmpty else {
            throw MuxRPCClientError(code: .noEndpoints, message: hasEndpoints ? "the resolver's list is empty" : "no endpoint list yet")
        }
        // Admitted endpoints not tried yet, or else all admitted ones.
        candidates.removeAll(keepingCapacity: true)
        for address in order where entries[address]!.breaker.admits(at: now) || !breakerConfiguration.isEnabled {
            candidates.append(address)
        }
        if !excluded.isEmpty, candidates.contains(where: { !excluded.contains($0) }) {
            candidates.removeAll { excluded.contains($0) }
        }
        guard !candidates.isEmpty else {
            throw MuxRPCClientError(code: .allEndpointsUnavailable, message: "the circuit breakers of all \(order.count) endpoints are open")
        }
        let chosen: SocketAddress
        if candidates.count == 1 {
            // Whatever the balancer says, it must be this one.
            chosen = candidates[0]
        } else {
            loads.removeAll(keepingCapacity: true)
            for address in candidates {
                let entry = entries[address]!
                loads.append(EndpointLoad(endpoint: entry.endpoint, callsInFlight: entry.callsInFlight, latency: entry.latency.value))
            }
            chosen = candidates[min(max(0, balancer.pick(from: loads)), candidates.count - 1)]
        }
        entries[chosen]!.callsInFlight += 1
        entries[chosen]!.breaker.callStarted()
        return chosen
    }

    /// Books an attempt's end. An endpoint removed meanwhile is ignored.
    mutating func finished(_ address: SocketAddress, _ outcome: AttemptOutcome, latency: Duration, at now: ContinuousClock.Instant) {
        guard var entry = entries[address] else { return }
        entry.callsInFlight -= 1
        entry.calls += 1
        switch outcome {
        case .answered:
            entry.latency.record(latency, at: now)
            entry.breaker.recordSuccess(at: now)
        case .endpointFailed:
            entry.failures += 1
            entry.latency.record(latency, at: now)
            if breakerConfiguration.isEnabled, entry.breaker.recordFailure(at: now) {
                let open = entries.values.count { $0.breaker.isOpen }
                let allowed = order.count * breakerConfiguration.maxEjectionPercent / 100
                if open < allowed { entry.breaker.open(at: now) } else { entry.breaker.stayClosed() }
            }
        case .neutral:
            break
        }
        entries[address] = entry
    }

    var statistics: [MuxRPCEndpointStatistics] {
        order.map { address in
            let entry = entries[address]!
            let breaker: MuxRPCEndpointStatistics.BreakerState = switch entry.breaker.state {
            case .closed: .closed
            case .open: .open
            case .halfOpen: .halfOpen
            }
            return MuxRPCEndpointStatistics(
                endpoint: entry.endpoint, callsInFlight: entry.callsInFlight, calls: entry.calls,
                failures: entry.failures, latency: entry.latency.value, breaker: breaker
            )
        }
    }
}
