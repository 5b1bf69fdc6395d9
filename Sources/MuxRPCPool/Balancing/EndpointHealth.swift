import NIOCore
package import MuxRPCTransport

/// What a client knows of one endpoint, as `MuxRPCClient/endpointStatistics` reports it.
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

/// How a client's endpoints are judged: the breakers' settings and how fast
/// the balancer's latency average forgets.
package struct EndpointPolicy: Sendable {
    package var breaker: CircuitBreakerConfiguration
    package var latencyDecay: Duration

    package init(breaker: CircuitBreakerConfiguration, latencyDecay: Duration) {
        self.breaker = breaker
        self.latencyDecay = latencyDecay
    }
}

/// The client's part of an endpoint's record in the pool's state machine:
/// what the balancer weighs and the breaker decides on. The calls in flight
/// are the record's own count (the pool's), not kept here.
package struct EndpointHealth {
    package var endpoint: MuxRPCEndpoint
    package var latency: PeakEWMA
    package var breaker: CircuitBreaker
    /// Attempts the balancer sent here that are still in their interceptors,
    /// not (or no longer) holding a lease or waiting for one: the balancer
    /// counts them as load all the same.
    package var attemptsBeforePool = 0
    package var calls = 0
    package var failures = 0

    package init(endpoint: MuxRPCEndpoint, policy: EndpointPolicy) {
        self.endpoint = endpoint
        self.latency = PeakEWMA(decay: policy.latencyDecay)
        self.breaker = CircuitBreaker(configuration: policy.breaker)
    }

    /// Books an attempt's end. Returns true when the breaker wants to open;
    /// the caller decides under the ejection cap. A nil `sample` (a call
    /// long by design, as a blocking query) leaves the latency average as
    /// it was: the breaker still counts the outcome.
    package mutating func record(_ outcome: AttemptOutcome, latency sample: Duration?, at now: ContinuousClock.Instant) -> Bool {
        calls += 1
        switch outcome {
        case .answered:
            if let sample { latency.record(sample, at: now) }
            breaker.recordSuccess(at: now)
            return false
        case .endpointFailed:
            failures += 1
            if let sample { latency.record(sample, at: now) }
            return breaker.configuration.isEnabled && breaker.recordFailure(at: now)
        case .neutral:
            return false
        }
    }

    package func statistics(callsInFlight: Int) -> MuxRPCEndpointStatistics {
        let state: MuxRPCEndpointStatistics.BreakerState = switch breaker.state {
        case .closed: .closed
        case .open: .open
        case .halfOpen: .halfOpen
        }
        return MuxRPCEndpointStatistics(
            endpoint: endpoint, callsInFlight: callsInFlight, calls: calls,
            failures: failures, latency: latency.value, breaker: state
        )
    }
}
