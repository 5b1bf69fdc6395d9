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
///
/// Every call is counted, so counting one takes no lock: each second of the
/// window has a slot in a ring, an atomic word holding the second it counts
/// and its count. Withdrawing a retry (rare) reads the ring under a lock, so
/// that two retries never both take the last one allowed.
final class RetryBudget: Sendable {
    /// One second's count, packed as (second + 1) << 32 | count, so that a
    /// slot from an older second is recognised and restarted in one
    /// compare-and-exchange.
    private final class Slot: Sendable {
        let word = Atomic<UInt64>(0)
    }

    private let configuration: RetryConfiguration
    private let seconds: Int64
    private let calls: [Slot]
    private let retries: [Slot]
    private let withdrawing = Mutex<Void>(())

    init(configuration: RetryConfiguration) {
        self.configuration = configuration
        self.seconds = max(1, configuration.budgetWindow.components.seconds)
        self.calls = (0..<seconds).map { _ in Slot() }
        self.retries = (0..<seconds).map { _ in Slot() }
    }

    /// A call began.
    func recordCall(at now: ContinuousClock.Instant) {
        Self.count(in: calls, second: Self.second(now))
    }

    /// Takes one retry from the budget; false if none is left.
    func withdrawRetry(at now: ContinuousClock.Instant) -> Bool {
        let second = Self.second(now)
        return withdrawing.withLock { _ in
            let allowed = Double(configuration.minimumRetriesPerSecond) * Double(seconds)
                + configuration.budgetRatio * Double(total(of: calls, at: second))
            guard Double(total(of: retries, at: second)) + 1 <= allowed else { return false }
            Self.count(in: retries, second: second)
            return true
        }
    }

    /// The counts of the window's seconds at `second`.
    private func total(of ring: [Slot], at second: Int64) -> Int {
        ring.reduce(0) { sum, slot in
            let word = slot.word.load(ordering: .relaxed)
            let slotSecond = Int64(word >> 32) - 1
            guard slotSecond > second - seconds else { return sum }
            return sum + Int(word & 0xFFFF_FFFF)
        }
    }

    private static func count(in ring: [Slot], second: Int64) {
        let slot = ring[Int(second % Int64(ring.count))]
        let tag = UInt64(second + 1) << 32
        var word = slot.word.load(ordering: .relaxed)
        while true {
            // A slot still on an older second starts afresh; one already on
            // a later second (a thread that read the clock later) takes the
            // count too, as the bucket list did.
            let next = word >> 32 < UInt64(second + 1) ? tag | 1 : word &+ 1
            let (exchanged, original) = slot.word.weakCompareExchange(
                expected: word, desired: next, successOrdering: .relaxed, failureOrdering: .relaxed
            )
            if exchanged { return }
            word = original
        }
    }

    private static let origin = ContinuousClock.now

    private static func second(_ now: ContinuousClock.Instant) -> Int64 {
        max(0, (now - origin).components.seconds)
    }
}
