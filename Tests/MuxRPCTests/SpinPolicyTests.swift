import Foundation
import MuxRPC
@testable import MuxRPCTransport
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

    /// Gaps drawn from an exponential distribution, as from many independent
    /// clients, with a fixed seed.
    private struct RandomGaps {
        var state: UInt64
        let callsPerSecond: Double

        mutating func next() -> TimeAmount {
            // SplitMix64.
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let unit = Double(z >> 11) / Double(1 << 53)
            return .nanoseconds(Int64(-log(1 - unit) / callsPerSecond * 1e9))
        }
    }

    @Test(arguments: [100.0, 1_000.0])
    func randomTrafficAtLowRatesCostsAlmostNoSpinning(callsPerSecond: Double) {
        var gaps = RandomGaps(state: 7, callsPerSecond: callsPerSecond)
        var loop = SimulatedLoop()
        let calls = 100_000
        for _ in 0..<calls { loop.serve(after: gaps.next()) }
        // The odd run of close calls engages the policy; its spins mostly
        // miss, and each engagement that does backs off further.
        #expect(loop.policy.misses * 2_000 < calls)
        #expect(loop.emptyTurns * 100 < calls)
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

    @Test func trafficSeenOnlyAfterTheWindowIsAMiss() {
        var loop = SimulatedLoop()
        loop.engage()
        for round in 0..<2 {
            // One empty turn, then the loop does not turn for 200 µs (other
            // threads have the CPU); the next request came meanwhile.
            loop.now = loop.now + loop.turnLength
            _ = loop.policy.turn(at: loop.now, sawTraffic: false)
            loop.now = loop.now + .microseconds(200)
            let spinsOn = loop.policy.turn(at: loop.now, sawTraffic: true)
            // The first late one leaves the score above zero; the second ends the engagement.
            #expect(spinsOn == (round == 0))
            loop.traffic(after: .zero)
        }
        #expect(loop.policy.hits == 0)
        #expect(loop.policy.misses == 2)
        #expect(!loop.policy.isEngaged)
        #expect(!loop.policy.isSpinning)
    }

    /// One empty turn, a yield from its end lasting `yield`, then a turn at
    /// the yield's end that sees traffic or not. Returns whether the loop spins on.
    private func turnAfterYielding(_ loop: inout SimulatedLoop, for yield: TimeAmount, thenTraffic: Bool) -> Bool {
        loop.now = loop.now + loop.turnLength
        let spinsOn = loop.policy.turn(at: loop.now, sawTraffic: false)
        #expect(spinsOn)
        let start = loop.now
        loop.now = loop.now + yield
        loop.policy.yielded(from: start, to: loop.now)
        return loop.policy.turn(at: loop.now, sawTraffic: thenTraffic)
    }

    @Test func anEmptyTurnAfterYieldingTheCPUToAnotherThreadIsAMiss() {
        var loop = SimulatedLoop()
        loop.engage()
        // Another thread had the CPU for 20 µs and no bytes came meanwhile: sleep.
        #expect(!turnAfterYielding(&loop, for: .microseconds(20), thenTraffic: false))
        #expect(!loop.policy.isSpinning)
        #expect(loop.policy.misses == 1)
        #expect(loop.policy.contendedMisses == 1)
        // A second one ends the engagement.
        loop.traffic(after: .microseconds(30))
        #expect(!turnAfterYielding(&loop, for: .microseconds(20), thenTraffic: false))
        #expect(!loop.policy.isEngaged)
    }

    @Test func aLongYieldAfterWhichBytesCameIsAHit() {
        var loop = SimulatedLoop()
        loop.engage()
        // The CPU went to another thread (this process's own, say, sending the next request).
        #expect(turnAfterYielding(&loop, for: .microseconds(20), thenTraffic: true))
        #expect(loop.policy.hits == 1)
        #expect(loop.policy.misses == 0)
    }

    @Test func aShortYieldGaveTheCPUToNoOne() {
        var loop = SimulatedLoop()
        loop.engage()
        #expect(turnAfterYielding(&loop, for: .microseconds(1), thenTraffic: false))
        #expect(loop.policy.isSpinning)
        #expect(loop.policy.misses == 0)
    }

    @Test func aFixedWindowSpinsOnWhateverElseWantsTheCPU() {
        var loop = SimulatedLoop(adaptive: false)
        loop.traffic(after: .zero)
        #expect(turnAfterYielding(&loop, for: .microseconds(20), thenTraffic: false))
        #expect(loop.policy.misses == 0)
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
