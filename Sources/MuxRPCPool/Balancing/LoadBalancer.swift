#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import MuxRPCTransport

/// What a balancer knows of each endpoint it may pick.
public struct EndpointLoad: Sendable {
    /// The endpoint.
    public var endpoint: MuxRPCEndpoint
    /// Calls this client has in flight to it.
    public var callsInFlight: Int
    /// Its latency as a peak-sensitive moving average (see
    /// ``PowerOfTwoChoicesBalancer``), or nil before its first call.
    public var latency: Duration?

    /// A load with every value given, to test a balancer of your own.
    public init(endpoint: MuxRPCEndpoint, callsInFlight: Int, latency: Duration?) {
        self.endpoint = endpoint
        self.callsInFlight = callsInFlight
        self.latency = latency
    }
}

/// Picks the endpoint for each call among those whose circuit breaker
/// lets calls through. Called once per attempt, so keep it cheap; it may
/// keep state of its own (a round-robin cursor), behind a lock or an atomic.
public protocol LoadBalancer: Sendable {
    /// The index in `candidates` (never empty) of the endpoint to call.
    func pick(from candidates: [EndpointLoad]) -> Int
}

/// Each endpoint in turn.
public final class RoundRobinBalancer: LoadBalancer {
    private let next = Atomic<Int>(0)

    /// A balancer.
    public init() {}

    /// The index of the endpoint to call; see the type's description.
    public func pick(from candidates: [EndpointLoad]) -> Int {
        let turn = next.wrappingAdd(1, ordering: .relaxed).oldValue
        return Int(UInt(bitPattern: turn) % UInt(candidates.count))
    }
}

/// A uniformly random endpoint.
public struct RandomBalancer: LoadBalancer {
    /// A balancer.
    public init() {}

    /// The index of the endpoint to call; see the type's description.
    public func pick(from candidates: [EndpointLoad]) -> Int {
        Int.random(in: candidates.indices)
    }
}

/// A random endpoint, each chosen in proportion to its
/// ``MuxRPCEndpoint/weight``. Endpoints of weight 0 or less are never chosen
/// unless all are.
public struct WeightedRandomBalancer: LoadBalancer {
    /// A balancer.
    public init() {}

    /// The index of the endpoint to call; see the type's description.
    public func pick(from candidates: [EndpointLoad]) -> Int {
        let total = candidates.reduce(0.0) { $0 + max(0, $1.endpoint.weight) }
        guard total > 0 else { return Int.random(in: candidates.indices) }
        var point = Double.random(in: 0..<total)
        for (index, candidate) in candidates.enumerated() {
            point -= max(0, candidate.endpoint.weight)
            if point < 0 { return index }
        }
        return candidates.count - 1
    }
}

/// The default: two endpoints drawn at random, the one with the lower
/// cost wins. The cost is (calls in flight + 1) × peak-EWMA latency, as in
/// Finagle's P2C least-loaded / peak EWMA balancer.
///
/// Two random choices avoid the herd that "always the least loaded" makes
/// when every client sees the same numbers. Weighting by latency steers
/// traffic away from a server that is slow but not failing. Peak EWMA (the
/// average jumps up at once to a slower sample and decays slowly) reacts to
/// trouble fast and trusts recovery only gradually. An endpoint with no
/// sample yet costs as much as the fastest one known, so new servers get
/// traffic at once.
public struct PowerOfTwoChoicesBalancer: LoadBalancer {
    /// A balancer.
    public init() {}

    /// The index of the endpoint to call; see the type's description.
    public func pick(from candidates: [EndpointLoad]) -> Int {
        guard candidates.count > 1 else { return 0 }
        let first = Int.random(in: candidates.indices)
        var second = Int.random(in: 0..<(candidates.count - 1))
        if second >= first { second += 1 }
        let fallback = candidates.compactMap(\.latency).min() ?? .milliseconds(1)
        func cost(_ index: Int) -> Double {
            let latency = candidates[index].latency ?? fallback
            let (seconds, attoseconds) = latency.components
            let nanoseconds = max(1, Double(seconds) * 1e9 + Double(attoseconds) / 1e9)
            return Double(candidates[index].callsInFlight + 1) * nanoseconds
        }
        return cost(second) < cost(first) ? second : first
    }
}

/// A peak-sensitive exponentially weighted moving average of latency: a
/// sample above the average replaces it; one below pulls it down with a
/// weight that grows with the time since the last sample (time constant
/// `decay`).
package struct PeakEWMA: Sendable {
    package private(set) var value: Duration?
    /// As ``ContinuousClock/Instant/timeSinceReference``, which is what the
    /// breakers store for the same reason.
    private var lastSample: Duration?
    package let decay: Duration

    package init(decay: Duration = .seconds(10)) {
        self.decay = decay
    }

    package mutating func record(_ sample: Duration, at now: ContinuousClock.Instant) {
        let now = now.timeSinceReference
        defer { lastSample = now }
        guard let current = value, let last = lastSample, sample < current else {
            value = sample
            return
        }
        let elapsed = Self.seconds(now - last)
        let weight = exp(-elapsed / Self.seconds(decay))
        value = .nanoseconds(Int64(Self.seconds(current) * weight * 1e9 + Self.seconds(sample) * (1 - weight) * 1e9))
    }

    /// The average as the balancer should see it at `now`: it decays toward
    /// zero while no sample arrives. Without this an endpoint that once
    /// answered slowly would never be picked again while faster ones exist,
    /// so no new sample could ever clear it (as Finagle's peak EWMA, whose
    /// cost decays the same way when read).
    package func value(at now: ContinuousClock.Instant) -> Duration? {
        let now = now.timeSinceReference
        guard let value, let last = lastSample, now > last else { return value }
        let weight = exp(-Self.seconds(now - last) / Self.seconds(decay))
        return .nanoseconds(Int64(Self.seconds(value) * weight * 1e9))
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
