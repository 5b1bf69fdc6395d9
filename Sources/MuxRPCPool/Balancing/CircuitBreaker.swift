import MuxRPCTransport

/// When a `MuxRPCClient` stops sending calls to an endpoint that keeps
/// failing, and how it tries again.
///
/// A breaker *opens* after ``consecutiveFailures`` failures in a row, or when
/// at least ``failureRatio`` of the calls in the last ``window`` failed (once
/// the window holds ``minimumCalls``). An open endpoint gets no calls. After
/// ``cooldown`` (± ``cooldownJitter``, so that many clients do not probe at
/// the same instant) it turns *half-open*: one call goes through as a probe.
/// A success closes the breaker; a failure opens it again.
///
/// Only failures of the endpoint count: transport errors, timeouts, refused
/// connections. A server's error reply means the server works and counts as
/// a success.
///
/// Never more than ``maxEjectionPercent`` of the endpoints are open at once.
/// With one endpoint, or when a breaker would cross the cap, it stays closed:
/// a degraded server is better than none (Envoy's max ejection percent).
public struct CircuitBreakerConfiguration: Sendable, Hashable {
    /// False turns breaking off. Default true.
    public var isEnabled: Bool
    /// Failures in a row that open the breaker. Default 5.
    public var consecutiveFailures: Int
    /// The share of failed calls in ``window`` that opens it. Default 0.5.
    public var failureRatio: Double
    /// The span over which ``failureRatio`` is measured. Default 10 seconds.
    public var window: Duration
    /// Calls the window must hold before ``failureRatio`` applies. Default 20.
    public var minimumCalls: Int
    /// How long an open breaker waits before its probe. Default 5 seconds.
    public var cooldown: Duration
    /// The cooldown varies by up to this share either way. Default 0.2.
    public var cooldownJitter: Double
    /// The most endpoints, in percent, that may be open at once. Default 50.
    public var maxEjectionPercent: Int

    /// A configuration with every default but those given.
    public init(
        isEnabled: Bool = true,
        consecutiveFailures: Int = 5,
        failureRatio: Double = 0.5,
        window: Duration = .seconds(10),
        minimumCalls: Int = 20,
        cooldown: Duration = .seconds(5),
        cooldownJitter: Double = 0.2,
        maxEjectionPercent: Int = 50
    ) {
        self.isEnabled = isEnabled
        self.consecutiveFailures = consecutiveFailures
        self.failureRatio = failureRatio
        self.window = window
        self.minimumCalls = minimumCalls
        self.cooldown = cooldown
        self.cooldownJitter = cooldownJitter
        self.maxEjectionPercent = maxEjectionPercent
    }

    package func validate() throws {
        let check = ConfigurationCheck { MuxRPCError.invalidConfiguration("MuxRPC client", "circuit breaker: " + $0) }
        try check.require(consecutiveFailures >= 1, "consecutiveFailures must be at least 1")
        try check.require(failureRatio > 0 && failureRatio <= 1, "failureRatio must be in (0, 1]")
        try check.require(window > .zero, "window must be positive")
        try check.require(minimumCalls >= 1, "minimumCalls must be at least 1")
        try check.require(cooldown >= .zero, "cooldown must not be negative")
        try check.require(cooldownJitter >= 0 && cooldownJitter < 1, "cooldownJitter must be in [0, 1)")
        try check.require((0...100).contains(maxEjectionPercent), "maxEjectionPercent must be in 0...100")
    }
}

/// One endpoint's breaker. A value type driven with explicit times, so that
/// its rules are tested without waiting.
///
/// It keeps its times as ``Swift/Duration``s since a fixed instant
/// (``Swift/ContinuousClock/Instant/timeSinceReference``), not as
/// `ContinuousClock.Instant`s: the standard library does not fix that type's
/// layout, and a record holding one is copied and switched on through
/// runtime calls, where this one lives on the call path.
package struct CircuitBreaker: Sendable {
    package enum State: Sendable, Hashable {
        case closed
        /// Open until this long after the reference instant.
        case open(until: Duration)
        /// Cooldown over; `probing` while the one probe call is in flight.
        case halfOpen(probing: Bool)
    }

    package private(set) var state: State = .closed
    private var failuresInRow = 0
    /// The window as ten buckets, each (bucket number, calls, failures).
    private var buckets: [(number: Int64, calls: Int, failures: Int)] = []
    /// When the last bucket ends. Until then a call is counted in it after
    /// one comparison; the bucket arithmetic (128-bit durations) runs once
    /// per bucket, not once per call.
    private var lastBucketEnd: Duration?
    package let configuration: CircuitBreakerConfiguration

    package init(configuration: CircuitBreakerConfiguration) {
        self.configuration = configuration
    }

    package var isOpen: Bool {
        if case .open = state { true } else { false }
    }

    /// Whether a call may go to the endpoint now; turns an open breaker whose
    /// cooldown is over half-open.
    package mutating func admits(at now: ContinuousClock.Instant) -> Bool {
        switch state {
        case .closed:
            return true
        case .open(let until):
            guard now.timeSinceReference >= until else { return false }
            state = .halfOpen(probing: false)
            return true
        case .halfOpen(let probing):
            return !probing
        }
    }

    /// The balancer picked this endpoint: a half-open breaker's call is its probe.
    package mutating func callStarted() {
        if case .halfOpen = state { state = .halfOpen(probing: true) }
    }

    package mutating func recordSuccess(at now: ContinuousClock.Instant) {
        count(failed: false, at: now.timeSinceReference)
        failuresInRow = 0
        if case .halfOpen = state {
            state = .closed
            resetBuckets()
        }
    }

    /// Records a failure. Returns true if the breaker wants to open; the
    /// caller then calls ``open(at:)`` unless the ejection cap forbids it.
    package mutating func recordFailure(at now: ContinuousClock.Instant) -> Bool {
        let now = now.timeSinceReference
        count(failed: true, at: now)
        failuresInRow += 1
        switch state {
        case .halfOpen:
            return true
        case .open:
            return false
        case .closed:
            if failuresInRow >= configuration.consecutiveFailures { return true }
            let (calls, failures) = totals(at: now)
            return calls >= configuration.minimumCalls && Double(failures) >= configuration.failureRatio * Double(calls)
        }
    }

    package mutating func open(at now: ContinuousClock.Instant) {
        let jitter = configuration.cooldownJitter == 0 ? 1 : Double.random(in: (1 - configuration.cooldownJitter)...(1 + configuration.cooldownJitter))
        state = .open(until: now.timeSinceReference + configuration.cooldown * jitter)
        failuresInRow = 0
        resetBuckets()
    }

    /// The ejection cap kept the breaker closed: start counting afresh, so
    /// that it does not ask again on every failure.
    package mutating func stayClosed() {
        if case .halfOpen = state { state = .closed }
        failuresInRow = 0
        resetBuckets()
    }

    private mutating func resetBuckets() {
        buckets.removeAll()
        lastBucketEnd = nil
    }

    private var bucketLength: Duration { configuration.window / 10 }

    private func bucketNumber(_ now: Duration) -> Int64 {
        let (seconds, attoseconds) = now.components
        let (lengthSeconds, lengthAttoseconds) = bucketLength.components
        let nanoseconds = Double(seconds) * 1e9 + Double(attoseconds) / 1e9
        let length = max(1, Double(lengthSeconds) * 1e9 + Double(lengthAttoseconds) / 1e9)
        return Int64(nanoseconds / length)
    }

    private mutating func count(failed: Bool, at now: Duration) {
        if let end = lastBucketEnd, now < end, let last = buckets.indices.last {
            buckets[last].calls += 1
            buckets[last].failures += failed ? 1 : 0
            return
        }
        let number = bucketNumber(now)
        buckets.removeAll { $0.number <= number - 10 }
        if let last = buckets.indices.last, buckets[last].number == number {
            buckets[last].calls += 1
            buckets[last].failures += failed ? 1 : 0
        } else {
            buckets.append((number, 1, failed ? 1 : 0))
        }
        lastBucketEnd = bucketLength * (number + 1)
    }

    private func totals(at now: Duration) -> (calls: Int, failures: Int) {
        let number = bucketNumber(now)
        return buckets.filter { $0.number > number - 10 }.reduce((0, 0)) { ($0.0 + $1.calls, $0.1 + $1.failures) }
    }
}

extension ContinuousClock.Instant {
    /// A fixed instant (the first time one was asked for) that the
    /// breakers and latency averages measure their times from.
    private static let reference = ContinuousClock.now

    /// The time since ``reference``, as a value of fixed layout to store.
    package var timeSinceReference: Duration { self - Self.reference }

    /// The instant `timeSinceReference` after ``reference``.
    package init(timeSinceReference: Duration) {
        self = Self.reference + timeSinceReference
    }
}
