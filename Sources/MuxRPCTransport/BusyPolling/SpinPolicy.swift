import NIOCore

/// Decides, for one event loop, whether the loop spins after its traffic
/// (keeps polling for I/O without sleeping) or sleeps at once. It is a pure
/// state machine: it sees only the instants it is given, at the loop's
/// traffic and at each turn the loop spins, so tests drive it with a fake
/// clock. ``BusyPoller`` feeds it and acts on its answers.
///
/// A spin pays back when the next bytes come while the loop spins: the loop
/// sees them at its next turn instead of being woken for them. It is wasted
/// when they do not come within ``Parameters/window``: the loop burns the
/// window and sleeps anyway. With a fixed window (``Parameters/isAdaptive``
/// false) the loop spins after every traffic. Adaptive, it spins only while
/// its traffic is dense enough for spins to pay back:
///
/// - **Disengaged** (where it starts), the loop sleeps as soon as it has
///   nothing to do, and the policy watches the gaps between traffic, which
///   cost nothing to see (one clock read per read or flush). A gap no longer
///   than ``Parameters/denseGap`` is dense; a longer one starts the count
///   again. After ``gapsToEngage`` dense gaps in a row the policy engages.
///   A dense gap is longer than the window: gaps seen while both ends sleep
///   include their wake-ups, which are what spinning removes.
/// - **Engaged**, the loop spins after each traffic for up to the window. A
///   spin that sees traffic within the window, after at least one empty
///   turn, is a *hit*; one that runs out is a *miss*, and the loop sleeps.
///   So is one that sees traffic only after the window, or that finds an
///   empty turn after yielding its CPU to another thread for long (each
///   empty turn yields, see ``yielded(from:to:)``): where other threads
///   want the CPU, a spinning loop takes turns with them and sees its bytes
///   late, while a sleeping one is woken ahead of them. A hit adds one to
///   ``score`` (up to ``Parameters/maximumScore``), a miss takes two: at zero
///   the policy disengages, so it stays engaged only while about two spins
///   in three hit. Traffic that comes after a gap longer than
///   ``Parameters/denseGap`` disengages it at once: traffic has thinned, and
///   the one miss that ended the last spin is all it cost.
/// - An engagement that paid back, with at least two hits for each miss as
///   the score asks, sets ``gapsToEngage`` back to
///   ``Parameters/gapsToEngage``; one that did not doubles it, up to
///   ``Parameters/maximumGapsToEngage``. Traffic whose gaps look dense but
///   are too long for the window (paced calls a little apart) is thereby
///   probed more and more rarely.
///
/// So an idle loop never spins, a loop with sparse traffic (whose gaps are
/// longer than ``Parameters/denseGap`` at least once in every
/// ``Parameters/gapsToEngage`` gaps) never spins, and a loop whose traffic
/// is dense, e.g. one call in flight after another, spins after each of its
/// bursts. Docs/tuning.md has what each costs and gains.
struct SpinPolicy {
    struct Parameters: Sendable, Hashable {
        /// How long a spin lasts without traffic before the loop sleeps.
        var window: TimeAmount
        /// False: spin after every traffic, for the window (the policy
        /// before it adapted); true: as described above.
        var isAdaptive: Bool
        /// The longest gap between traffic that counts as dense while disengaged.
        var denseGap: TimeAmount = .milliseconds(1)
        /// Dense gaps in a row that engage the policy, at first and after an
        /// engagement that paid back.
        var gapsToEngage = 8
        /// The most dense gaps in a row an engagement can come to need.
        var maximumGapsToEngage = 1024
        /// The score an engagement starts with: two misses before any hit end it.
        var initialScore = 4
        /// The highest score: how far back hits are remembered.
        var maximumScore = 8
        /// A yield at least this long gave the CPU to another thread: longer
        /// than the system call alone takes, shorter than another thread's
        /// turn on the CPU.
        var contendedYield: TimeAmount = .microseconds(5)

        init(window: TimeAmount, isAdaptive: Bool) {
            self.window = window
            self.isAdaptive = isAdaptive
        }
    }

    let parameters: Parameters

    /// Whether the loop is spinning: ``turn(at:sawTraffic:)`` is due at each of its turns.
    private(set) var isSpinning = false
    /// Whether spins are on (always, with a fixed window).
    private(set) var isEngaged: Bool
    private(set) var score = 0
    /// Dense gaps in a row seen while disengaged.
    private(set) var denseGaps = 0
    /// Dense gaps in a row needed to engage.
    private(set) var gapsToEngage: Int

    /// The last traffic the policy knows of: while spinning, the start of the quiet time.
    private var lastTraffic: NIODeadline?
    private var quietTurns = 0
    private var lastYieldWasContended = false
    private var engagementHits = 0
    private var engagementMisses = 0

    /// Counts since the policy began, for tests and statistics.
    private(set) var hits = 0
    private(set) var misses = 0
    /// The misses that ended a spin because its yield gave the CPU away.
    private(set) var contendedMisses = 0
    private(set) var spins = 0
    private(set) var engagements = 0

    init(_ parameters: Parameters) {
        self.parameters = parameters
        self.isEngaged = !parameters.isAdaptive
        self.gapsToEngage = parameters.gapsToEngage
    }

    /// The loop read or flushed while it was not spinning, at `now`. Returns
    /// whether it should spin from now on.
    mutating func traffic(at now: NIODeadline) -> Bool {
        guard !isSpinning else { return true }
        let gap = lastTraffic.map { now - $0 }
        lastTraffic = now
        guard parameters.isAdaptive else { return startSpinning() }
        let dense = gap.map { $0 <= parameters.denseGap } ?? false
        if isEngaged {
            guard dense else {
                disengage()
                return false
            }
            return startSpinning()
        }
        denseGaps = dense ? denseGaps + 1 : 0
        guard denseGaps >= gapsToEngage else { return false }
        engage()
        return startSpinning()
    }

    /// The loop turned while spinning, at `now`; `sawTraffic` says whether it
    /// read or flushed since the last turn. Returns whether it should spin
    /// on: false means the loop may sleep.
    mutating func turn(at now: NIODeadline, sawTraffic: Bool) -> Bool {
        guard isSpinning, let quietSince = lastTraffic else { return false }
        if sawTraffic {
            // Traffic after an empty turn was caught by the spin, if in
            // time; traffic at every turn means the loop had no chance to
            // sleep anyway.
            if quietTurns > 0 {
                if now - quietSince <= parameters.window { hit() } else { miss() }
            }
            quietTurns = 0
            lastTraffic = now
            // A late one may have disengaged the policy: sleep when next idle.
            isSpinning = isEngaged
            return isSpinning
        }
        quietTurns += 1
        // A fixed window spins its window out whatever else wants the CPU.
        let yieldedToOthers = parameters.isAdaptive && lastYieldWasContended
        lastYieldWasContended = false
        guard now - quietSince >= parameters.window || yieldedToOthers else { return true }
        isSpinning = false
        if yieldedToOthers { contendedMisses += 1 }
        miss()
        return false
    }

    /// The loop yielded its CPU from `start` to `end` after an empty turn.
    /// A yield that long gave the CPU to another thread: if the next turn is
    /// empty too, the spin is a miss, since it has only been taking turns
    /// with threads that want the CPU, while a sleeping loop is woken
    /// ahead of them as soon as its bytes come.
    mutating func yielded(from start: NIODeadline, to end: NIODeadline) {
        lastYieldWasContended = end - start >= parameters.contendedYield
    }

    private mutating func startSpinning() -> Bool {
        isSpinning = true
        quietTurns = 0
        lastYieldWasContended = false
        spins += 1
        return true
    }

    private mutating func hit() {
        hits += 1
        guard parameters.isAdaptive else { return }
        engagementHits += 1
        score = min(score + 1, parameters.maximumScore)
    }

    private mutating func miss() {
        misses += 1
        guard parameters.isAdaptive else { return }
        engagementMisses += 1
        score -= 2
        if score <= 0 { disengage() }
    }

    private mutating func engage() {
        isEngaged = true
        engagements += 1
        score = parameters.initialScore
        engagementHits = 0
        engagementMisses = 0
        denseGaps = 0
    }

    private mutating func disengage() {
        isEngaged = false
        denseGaps = 0
        if engagementHits >= 2 * engagementMisses {
            gapsToEngage = parameters.gapsToEngage
        } else {
            gapsToEngage = min(gapsToEngage * 2, parameters.maximumGapsToEngage)
        }
    }
}
