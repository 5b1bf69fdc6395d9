@testable import MuxRPC
import NIOCore
import Testing

/// The busy poller's decisions, without sockets or a real clock: a simulated
/// loop feeds the policy traffic at chosen instants and turns every 2 µs
/// while it spins, as ``BusyPoller`` does on a real loop.
@Suite("Spin policy")
struct SpinPolicyTests {
    /// A loop as the policy sees it.
    struct SimulatedLoop {
        var policy: SpinPolicy
        var now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        /// How long one spinning turn takes.
        let turnLength = TimeAmount.microseconds(2)
        /// Turns spun without traffic, in total.
        private(set) var emptyTurns = 0

        init(_ parameters: SpinPolicy.Parameters) {
            policy = SpinPolicy(parameters)
        }

        init(adaptive: Bool = true) {
            self.init(SpinPolicy.Parameters(window: .microseconds(50), isAdaptive: adaptive))
        }

        /// Nothing happens for `gap`, then the loop reads or flushes. While the
        /// policy says spin, the loop turns; a turn that comes after the
        /// traffic sees it. Otherwise the loop sleeps and the traffic wakes it.
        mutating func traffic(after gap: TimeAmount) {
            let arrival = now + gap
            while policy.isSpinning {
                let next = now + turnLength
                if next >= arrival {
                    now = next
                    let spinsOn = policy.turn(at: now, sawTraffic: true)
                    #expect(spinsOn)
                    return
                }
                now = next
                emptyTurns += 1
                _ = policy.turn(at: now, sawTraffic: false)
            }
            now = arrival
            _ = policy.traffic(at: now)
        }

        /// Serves calls whose gaps, both ends asleep, are dense until the policy engages.
        mutating func engage() {
            while !policy.isEngaged { serve(after: .microseconds(140)) }
        }

        /// One call served: a request read after `gap`, its reply flushed in
        /// the same turn.
        mutating func serve(after gap: TimeAmount) {
            traffic(after: gap)
            traffic(after: .zero)
        }

        /// One call made: a request flushed after `gap`, its reply read a
        /// round trip later.
        mutating func call(after gap: TimeAmount, roundTrip: TimeAmount) {
            traffic(after: gap)
            traffic(after: roundTrip)
        }
    }

    @Test func aLoopThatHasNoTrafficNeverSpins() {
        var loop = SimulatedLoop()
        #expect(!loop.policy.isSpinning)
        let spins = loop.policy.turn(at: loop.now + .seconds(1), sawTraffic: false)
        #expect(!spins)
        // A lone burst an hour later does not start a spin either.
        loop.serve(after: .hours(1))
        #expect(loop.policy.spins == 0)
        #expect(loop.emptyTurns == 0)
    }

    @Test func aHundredCallsASecondNeverSpin() {
        // Server: a request every 10 ms, the reply in the same turn.
        var server = SimulatedLoop()
        // Client: a request every 10 ms, its reply a sleeping round trip later.
        var client = SimulatedLoop()
        for _ in 0..<10_000 {
            server.serve(after: .milliseconds(10))
            client.call(after: .milliseconds(10), roundTrip: .microseconds(150))
        }
        for loop in [server, client] {
            #expect(loop.policy.spins == 0)
            #expect(loop.policy.engagements == 0)
            #expect(loop.emptyTurns == 0)
        }
    }

    @Test func denseTrafficEngagesAfterItsGapsAndStaysEngaged() {
        var loop = SimulatedLoop()
        let needed = loop.policy.parameters.gapsToEngage
        // Both ends asleep: the gaps include the wake-ups, but are dense.
        // A served call is two traffics; the first has no gap before it.
        for _ in 0..<(needed / 2) {
            loop.serve(after: .microseconds(140))
        }
        #expect(!loop.policy.isEngaged)
        #expect(loop.policy.denseGaps == needed - 1)
        loop.serve(after: .microseconds(140))
        #expect(loop.policy.isEngaged)
        #expect(loop.policy.isSpinning)
        // Both ends spinning: each request comes within the window, a hit.
        for _ in 0..<10_000 {
            loop.serve(after: .microseconds(20))
        }
        #expect(loop.policy.isEngaged)
        #expect(loop.policy.engagements == 1)
        #expect(loop.policy.hits == 10_000)
        #expect(loop.policy.misses == 0)
    }

    @Test func whenTrafficStopsTheSpinRunsOutAndTheLoopSleeps() {
        var loop = SimulatedLoop()
        for _ in 0..<100 { loop.serve(after: .microseconds(20)) }
        #expect(loop.policy.isSpinning)
        let turnsBefore = loop.emptyTurns
        let spinningSince = loop.now

        // No traffic for a second: the loop turns until the window has run out, then sleeps.
        var turns = 0
        while loop.policy.isSpinning {
            loop.now = loop.now + loop.turnLength
            turns += 1
            _ = loop.policy.turn(at: loop.now, sawTraffic: false)
        }
        #expect(loop.now - spinningSince == loop.policy.parameters.window)
        #expect(turns == 25)
        #expect(loop.policy.misses == 1)
        #expect(loop.emptyTurns == turnsBefore)

        // The next traffic, long after, finds traffic thinned: no spin, disengaged.
        let spins = loop.policy.spins
        loop.traffic(after: .seconds(1))
        #expect(!loop.policy.isSpinning)
        #expect(!loop.policy.isEngaged)
        #expect(loop.policy.spins == spins)
    }

    @Test func sparseTrafficAfterDenseTrafficCostsOneMiss() {
        var loop = SimulatedLoop()
        for _ in 0..<100 { loop.serve(after: .microseconds(20)) }
        let turnsAtTheEndOfDenseTraffic = loop.emptyTurns
        for _ in 0..<1_000 { loop.serve(after: .milliseconds(10)) }
        #expect(loop.policy.misses == 1)
        #expect(loop.emptyTurns - turnsAtTheEndOfDenseTraffic == 25)
        // The dense engagement paid back: the next dense traffic engages as soon as at first.
        #expect(loop.policy.gapsToEngage == loop.policy.parameters.gapsToEngage)
    }

    @Test func spinsThatMissDisengage() {
        var loop = SimulatedLoop()
        loop.engage()
        // Requests 200 µs apart: dense, but no spin of 50 µs catches them.
        loop.serve(after: .microseconds(200))
        #expect(loop.policy.isEngaged)
        loop.serve(after: .microseconds(200))
        #expect(!loop.policy.isEngaged)
        #expect(loop.policy.misses == 2)
        #expect(loop.policy.hits == 0)
        // It missed more than it hit: the next engagement needs twice the dense gaps.
        #expect(loop.policy.gapsToEngage == 2 * loop.policy.parameters.gapsToEngage)
    }

    @Test func trafficTooSlowForTheWindowIsProbedMoreAndMoreRarely() {
        var loop = SimulatedLoop()
        let calls = 100_000
        for _ in 0..<calls {
            loop.serve(after: .microseconds(300))
        }
        #expect(loop.policy.gapsToEngage == loop.policy.parameters.maximumGapsToEngage)
        #expect(loop.policy.hits == 0)
        // Once backed off, two misses per 1,024 gaps (512 calls): well under 1% of the calls.
        #expect(loop.policy.misses * 100 < calls)
        // Every turn spun was one of those misses' windows.
        #expect(loop.emptyTurns == loop.policy.misses * 25)
    }

    @Test func anEngagementThatHitsResetsTheBackOff() {
        var loop = SimulatedLoop()
        for _ in 0..<10_000 { loop.serve(after: .microseconds(300)) }
        #expect(loop.policy.gapsToEngage > loop.policy.parameters.gapsToEngage)
        // Dense traffic again: engaged once the backed-off count is reached, then hits.
        loop.engage()
        for _ in 0..<100 { loop.serve(after: .microseconds(20)) }
        #expect(loop.policy.hits == 100)
        // It ends when traffic thins; that engagement paid back.
        loop.serve(after: .seconds(1))
        #expect(!loop.policy.isEngaged)
        #expect(loop.policy.gapsToEngage == loop.policy.parameters.gapsToEngage)
    }

    @Test func mostlyHitsKeepTheLoopEngaged() {
        var loop = SimulatedLoop()
        loop.engage()
        // Four requests in five come within the window; the fifth after 150 µs.
        for round in 0..<10_000 {
            loop.serve(after: round % 5 == 4 ? .microseconds(150) : .microseconds(20))
        }
        #expect(loop.policy.isEngaged)
        #expect(loop.policy.engagements == 1)
        #expect(loop.policy.misses == 2_000)
    }

    @Test func mostlyMissesDisengage() {
        var loop = SimulatedLoop()
        loop.engage()
        // One request in two within the window: each miss takes back two
        // hits, so engagements end, and each one that ends backs off.
        let rounds = 10_000
        for round in 0..<rounds {
            loop.serve(after: round.isMultiple(of: 2) ? .microseconds(20) : .microseconds(150))
        }
        #expect(loop.policy.gapsToEngage == loop.policy.parameters.maximumGapsToEngage)
        #expect(loop.policy.engagements > 1)
        #expect(loop.policy.misses * 20 < rounds)
    }

    @Test func aClientsCallsAreSeenAsTheServersAre() {
        // Dense: the next request as soon as the reply is read, replies 30 µs after.
        var dense = SimulatedLoop()
        for _ in 0..<10_000 { dense.call(after: .microseconds(2), roundTrip: .microseconds(30)) }
        #expect(dense.policy.isEngaged)
        #expect(dense.policy.engagements == 1)
        #expect(dense.policy.misses == 0)
        // Sparse: calls 10 ms apart; the round trip alone is a dense gap, but one in two is not.
        var sparse = SimulatedLoop()
        for _ in 0..<10_000 { sparse.call(after: .milliseconds(10), roundTrip: .microseconds(30)) }
        #expect(sparse.policy.spins == 0)
    }

    @Test func aFixedWindowSpinsAfterEveryTraffic() {
        var loop = SimulatedLoop(adaptive: false)
        #expect(loop.policy.isEngaged)
        for _ in 0..<1_000 { loop.serve(after: .milliseconds(10)) }
        // Each burst: a spin that ran its whole window out (the last one still spinning).
        #expect(loop.policy.spins == 1_000)
        #expect(loop.policy.misses == 999)
        #expect(loop.emptyTurns == 999 * 25)
        #expect(loop.policy.isEngaged)
    }

    @Test func trafficEveryTurnIsNeitherHitNorMiss() {
        var loop = SimulatedLoop()
        loop.engage()
        let hits = loop.policy.hits
        // A loop busy at every turn would not have slept: no hit to count.
        for _ in 0..<1_000 { loop.traffic(after: .microseconds(1)) }
        #expect(loop.policy.hits == hits)
        #expect(loop.policy.misses == 0)
        #expect(loop.policy.isSpinning)
    }
}
