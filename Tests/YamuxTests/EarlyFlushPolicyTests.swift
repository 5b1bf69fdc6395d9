import Testing
@testable import Yamux

/// `EarlyFlushPolicy`: half the streams that carried data lately, counted per epoch of turns.
@Suite struct EarlyFlushPolicyTests {
    /// Ends the policy's current epoch.
    private func endEpoch(_ policy: inout EarlyFlushPolicy) {
        for _ in 0..<EarlyFlushPolicy.turnsPerEpoch { policy.turnEnded() }
    }

    @Test func thresholdIsHalfTheActiveStreamsWithinOneAndTheLimit() {
        var stamps = [UInt64](repeating: 0, count: 40)
        var policy = EarlyFlushPolicy()
        #expect(policy.threshold(limit: 16) == 1, "no stream yet")
        policy.streamCarriedData(stamp: &stamps[0])
        #expect(policy.threshold(limit: 16) == 1, "one stream")
        for index in 1..<8 { policy.streamCarriedData(stamp: &stamps[index]) }
        #expect(policy.activeStreams == 8)
        #expect(policy.threshold(limit: 16) == 4)
        #expect(policy.threshold(limit: 3) == 3, "the limit caps it")
        for index in 8..<40 { policy.streamCarriedData(stamp: &stamps[index]) }
        #expect(policy.threshold(limit: 16) == 16)
    }

    @Test func aStreamCountsOncePerEpoch() {
        var stamp: UInt64 = 0
        var other: UInt64 = 0
        var policy = EarlyFlushPolicy()
        for _ in 0..<10 { policy.streamCarriedData(stamp: &stamp) }
        policy.streamCarriedData(stamp: &other)
        #expect(policy.activeStreams == 2)
        endEpoch(&policy)
        // Counted again in the new epoch, still once.
        for _ in 0..<10 { policy.streamCarriedData(stamp: &stamp) }
        #expect(policy.activeStreams == 2, "the last epoch's two still count")
        endEpoch(&policy)
        #expect(policy.activeStreams == 1, "only one carried data in the epoch before")
    }

    @Test func idleStreamsStopCountingWithinTwoEpochs() {
        var stamps = [UInt64](repeating: 0, count: 32)
        var policy = EarlyFlushPolicy()
        for index in stamps.indices { policy.streamCarriedData(stamp: &stamps[index]) }
        #expect(policy.threshold(limit: 16) == 16)
        // From now on only two of them carry data, as a pool's busy streams after a burst.
        for _ in 0..<(EarlyFlushPolicy.turnsPerEpoch - 1) { policy.turnEnded() }
        #expect(policy.activeStreams == 32, "the epoch has not ended")
        policy.turnEnded()
        policy.streamCarriedData(stamp: &stamps[0])
        policy.streamCarriedData(stamp: &stamps[1])
        #expect(policy.activeStreams == 32, "the burst's epoch is the last one")
        endEpoch(&policy)
        #expect(policy.activeStreams == 2)
        #expect(policy.threshold(limit: 16) == 1)
    }
}
