import NIOCore
import MuxRPCPool
import MuxRPCTransport

/// What a client knows of one endpoint, as ``MuxRPCClient/endpointStatistics`` reports it.
public struct MuxRPCEndpointStatistics: Sendable {
    /// Where its circuit breaker stands.
    public enum BreakerState: Sendable, Hashable {
        /// Calls go through.
        case closed
        /// The endpoint gets no calls until its cooldown ends.
        case open
        /// One probe call is allowed; its outcome closes or reopens the breaker.
        case halfOpen
    }

    /// The endpoint.
    public var endpoint: MuxRPCEndpoint
    /// Calls this client has in flight to it now.
    public var callsInFlight: Int
    /// Attempts that ended.
    public var calls: Int
    /// Attempts that ended in a failure of the endpoint (refused, dropped,
    /// late); error replies are not among them.
    public var failures: Int
    /// The peak-EWMA latency the balancer uses, nil before the first call.
    public var latency: Duration?
    /// Where its circuit breaker stands.
    public var breaker: BreakerState
}

/// The client's endpoints with their load, latency and breakers, kept under
/// the client's lock.
///
/// Entries live in an array in the resolver's order and are read and updated
/// in place: a call's pick and its end touch each entry without copying it
/// (a copy retains everything an entry holds, and showed in profiles).
struct EndpointTable {
    struct Entry {
        var endpoint: MuxRPCEndpoint
        var callsInFlight = 0
        var latency: PeakEWMA
        var breaker: CircuitBreaker
        var calls = 0
        var failures = 0
    }

    /// In the resolver's order.
    private var entries: [Entry] = []
    /// Where each address is in `entries`.
    private var positions: [SocketAddress: Int] = [:]
    private(set) var hasEndpoints = false
    var isShutDown = false
    let breakerConfiguration: CircuitBreakerConfiguration
    let latencyDecay: Duration
    /// Scratch for ``pick``, kept with its memory between calls.
    private var candidates: [Int] = []
    private var loads: [EndpointLoad] = []

    init(breaker: CircuitBreakerConfiguration, latencyDecay: Duration) {
        self.breakerConfiguration = breaker
        self.latencyDecay = latencyDecay
    }

    /// Takes a resolver's new list; returns the addresses that left it.
    /// Endpoints that stay keep their load, latency and breaker.
    mutating func replace(with endpoints: [MuxRPCEndpoint]) -> [SocketAddress] {
        hasEndpoints = true
        var kept: [Entry] = []
        var keptPositions: [SocketAddress: Int] = [:]
        for endpoint in endpoints where keptPositions[endpoint.address] == nil {
            var entry = positions[endpoint.address].map { entries[$0] } ?? Entry(
                endpoint: endpoint,
                latency: PeakEWMA(decay: latencyDecay),
                breaker: CircuitBreaker(configuration: breakerConfiguration)
            )
            entry.endpoint = endpoint
            keptPositions[endpoint.address] = kept.count
            kept.append(entry)
        }
        let removed = entries.map(\.endpoint.address).filter { keptPositions[$0] == nil }
        entries = kept
        positions = keptPositions
        return removed
    }

    /// Chooses the endpoint for an attempt among those whose breaker admits
    /// calls, preferring ones not in `excluded` (tried already by this call).
    mutating func pick(
        with balancer: any LoadBalancer,
        excluding excluded: [SocketAddress],
        at now: ContinuousClock.Instant
    ) throws(MuxRPCError) -> SocketAddress {
        if isShutDown { throw MuxRPCError(code: .shutDown, message: "the client is shutting down") }
        guard !entries.isEmpty else {
            throw MuxRPCError(code: .noEndpoints, message: hasEndpoints ? "the resolver's list is empty" : "no endpoint list yet")
        }
        // Admitted endpoints not tried yet, or else all admitted ones.
        candidates.removeAll(keepingCapacity: true)
        for index in entries.indices where entries[index].breaker.admits(at: now) || !breakerConfiguration.isEnabled {
            candidates.append(index)
        }
        if !excluded.isEmpty, candidates.contains(where: { !excluded.contains(entries[$0].endpoint.address) }) {
            candidates.removeAll { excluded.contains(entries[$0].endpoint.address) }
        }
        guard !candidates.isEmpty else {
            throw MuxRPCError(code: .allEndpointsUnavailable, message: "the circuit breakers of all \(entries.count) endpoints are open")
        }
        let chosen: Int
        if candidates.count == 1 {
            // Whatever the balancer says, it must be this one.
            chosen = candidates[0]
        } else {
            loads.removeAll(keepingCapacity: true)
            for index in candidates {
                loads.append(EndpointLoad(
                    endpoint: entries[index].endpoint,
                    callsInFlight: entries[index].callsInFlight,
                    latency: entries[index].latency.value(at: now)
                ))
            }
            chosen = candidates[min(max(0, balancer.pick(from: loads)), candidates.count - 1)]
        }
        entries[chosen].callsInFlight += 1
        entries[chosen].breaker.callStarted()
        return entries[chosen].endpoint.address
    }

    /// Books an attempt's end. An endpoint removed meanwhile is ignored.
    mutating func finished(_ address: SocketAddress, _ outcome: AttemptOutcome, latency: Duration, at now: ContinuousClock.Instant) {
        guard let index = positions[address] else { return }
        entries[index].callsInFlight -= 1
        entries[index].calls += 1
        switch outcome {
        case .answered:
            entries[index].latency.record(latency, at: now)
            entries[index].breaker.recordSuccess(at: now)
        case .endpointFailed:
            entries[index].failures += 1
            entries[index].latency.record(latency, at: now)
            if breakerConfiguration.isEnabled, entries[index].breaker.recordFailure(at: now) {
                let open = entries.count { $0.breaker.isOpen }
                let allowed = entries.count * breakerConfiguration.maxEjectionPercent / 100
                if open < allowed { entries[index].breaker.open(at: now) } else { entries[index].breaker.stayClosed() }
            }
        case .neutral:
            break
        }
    }

    var statistics: [MuxRPCEndpointStatistics] {
        entries.map { entry in
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
