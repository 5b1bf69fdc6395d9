import Synchronization
import MuxRPCPool
import MuxRPCTransport

/// When a ``MuxRPCClient`` tries a failed call again.
///
/// Only calls that certainly did not run are retried (those whose error's
/// `isRetrySafe` is true: `MuxRPCError/isRetrySafe`, `RPCError.isRetrySafe`),
/// each on another endpoint when there
/// is one, after a jittered exponential backoff, and never past the call's
/// deadline. Retries are bounded by a budget, so that a failing server does
/// not make clients multiply their load on the others: over ``budgetWindow``,
/// retries may be at most ``budgetRatio`` of calls, plus
/// ``minimumRetriesPerSecond`` so that a quiet client can still retry.
/// (Finagle's retry budget.)
public struct RetryConfiguration: Sendable, Hashable {
    /// Attempts per call, the first included; 1 turns retries off. Default 3.
    public var maxAttempts: Int
    /// Retries as a share of calls. Default 0.2.
    public var budgetRatio: Double
    /// Retries always allowed per second. Default 10.
    public var minimumRetriesPerSecond: Int
    /// The span over which retries and calls are counted for the budget.
    /// Default 10 seconds.
    public var budgetWindow: Duration
    /// The first backoff's upper bound; each retry doubles it. Default 10 ms.
    public var initialBackoff: Duration
    /// The bound the backoff grows to. Default 1 second.
    public var maxBackoff: Duration

    /// A configuration with every default but those given.
    public init(
        maxAttempts: Int = 3,
        budgetRatio: Double = 0.2,
        minimumRetriesPerSecond: Int = 10,
        budgetWindow: Duration = .seconds(10),
        initialBackoff: Duration = .milliseconds(10),
        maxBackoff: Duration = .seconds(1)
    ) {
        self.maxAttempts = maxAttempts
        self.budgetRatio = budgetRatio
        self.minimumRetriesPerSecond = minimumRetriesPerSecond
        self.budgetWindow = budgetWindow
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    func validate() throws {
        let check = ConfigurationCheck { MuxRPCError.invalidConfiguration("MuxRPC client", "retry: " + $0) }
        try check.require(maxAttempts >= 1, "maxAttempts must be at least 1")
        try check.require(budgetRatio >= 0, "budgetRatio must not be negative")
        try check.require(minimumRetriesPerSecond >= 0, "minimumRetriesPerSecond must not be negative")
        try check.require(budgetWindow >= .seconds(1), "budgetWindow must be at least a second")
        try check.require(initialBackoff >= .zero && maxBackoff >= initialBackoff, "backoffs must satisfy 0 <= initialBackoff <= maxBackoff")
    }

    /// A random backoff before retry `retry` (1 for the first): "full
    /// jitter", uniform in [0, min(maxBackoff, initialBackoff × 2^(retry-1))].
    func backoff(beforeRetry retry: Int) -> Duration {
        let bound = min(maxBackoff, initialBackoff * (1 << min(retry - 1, 30)))
        return bound * Double.random(in: 0...1)
    }
}

/// Counts calls and retries per second over the budget window and says
/// whether one more retry fits.
final class RetryBudget: Sendable {
    private let configuration: RetryConfiguration
    private let state = Mutex<[(second: Int64, calls: Int, retries: Int)]>([])
    private let seconds: Int64

    init(configuration: RetryConfiguration) {
        self.configuration = configuration
        self.seconds = max(1, configuration.budgetWindow.components.seconds)
    }

    /// A call began.
    func recordCall(at now: ContinuousClock.Instant) {
        update(at: now) { $0.calls += 1 }
    }

    /// Takes one retry from the budget; false if none is left.
    func withdrawRetry(at now: ContinuousClock.Instant) -> Bool {
        let second = Self.second(now)
        return state.withLock { buckets in
            buckets.removeAll { $0.second <= second - seconds }
            let calls = buckets.reduce(0) { $0 + $1.calls }
            let retries = buckets.reduce(0) { $0 + $1.retries }
            let allowed = Double(configuration.minimumRetriesPerSecond) * Double(seconds) + configuration.budgetRatio * Double(calls)
            guard Double(retries) + 1 <= allowed else { return false }
            Self.bump(&buckets, second) { $0.retries += 1 }
            return true
        }
    }

    private func update(at now: ContinuousClock.Instant, _ change: (inout (second: Int64, calls: Int, retries: Int)) -> Void) {
        let second = Self.second(now)
        state.withLock { buckets in
            buckets.removeAll { $0.second <= second - seconds }
            Self.bump(&buckets, second, change)
        }
    }

    private static func bump(
        _ buckets: inout [(second: Int64, calls: Int, retries: Int)],
        _ second: Int64,
        _ change: (inout (second: Int64, calls: Int, retries: Int)) -> Void
    ) {
        if let last = buckets.indices.last, buckets[last].second == second {
            change(&buckets[last])
        } else {
            var bucket = (second: second, calls: 0, retries: 0)
            change(&bucket)
            buckets.append(bucket)
        }
    }

    private static let origin = ContinuousClock.now

    private static func second(_ now: ContinuousClock.Instant) -> Int64 {
        (now - origin).components.seconds
    }
}
