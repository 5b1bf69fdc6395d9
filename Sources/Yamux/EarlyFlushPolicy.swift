/// How many frames a session gathers before it flushes early: half of the streams that carried
/// data lately, at most `YamuxConfiguration.maxFramesPerFlush`.
///
/// Why half: with N requests in flight between two event loops, each end answers a batch of
/// them per turn. Flushed once at the end of the turn, the whole batch goes back and forth and
/// the two ends work in turn; flushed after half of it, the peer starts on the first half while
/// this end writes the second, and both work at once. More, smaller flushes cost a `writev`
/// each and gain nothing more. N is not something yamux sees, but the streams that carried data lately are: in
/// request/response traffic, one per call in flight.
///
/// "Lately" is counted in turns, not time, so that it is the same on a fast and a slow machine:
/// a stream counts while it sent or received a data frame in this epoch of `turnsPerEpoch`
/// turns or in the one before. A pool's idle streams drop out within two epochs, and a stream
/// is counted once however many frames it carries.
struct EarlyFlushPolicy {
    /// Turns (read batches and end-of-turn flushes) per epoch. Long enough that every stream
    /// of a busy set carries a frame in each epoch; short enough that streams gone idle stop
    /// counting after a few dozen turns.
    static let turnsPerEpoch = 32

    /// Every stream's stamp starts below it, so a stream's first frame counts.
    private(set) var epoch: UInt64 = 1
    private var turnsInEpoch = 0
    private var activeThisEpoch = 0
    private var activeLastEpoch = 0

    /// Streams that carried data in this epoch or the last.
    var activeStreams: Int { max(self.activeThisEpoch, self.activeLastEpoch) }

    /// Frames to gather before flushing early: half the active streams (at least 1), at most
    /// `limit`.
    func threshold(limit: Int) -> Int {
        min(limit, max(1, self.activeStreams / 2))
    }

    /// A stream sent or received a data frame; `stamp` is the stream's own record of the epoch
    /// it last counted in.
    mutating func streamCarriedData(stamp: inout UInt64) {
        guard stamp != self.epoch else { return }
        stamp = self.epoch
        self.countActiveStream()
    }

    /// A stream carried its first data frame in this epoch (its owner keeps the stamp, as
    /// the session's state machine does beside each stream's protocol state).
    mutating func countActiveStream() {
        self.activeThisEpoch += 1
    }

    /// A read batch or an end-of-turn flush is over.
    mutating func turnEnded() {
        self.turnsInEpoch += 1
        guard self.turnsInEpoch >= Self.turnsPerEpoch else { return }
        self.turnsInEpoch = 0
        self.activeLastEpoch = self.activeThisEpoch
        self.activeThisEpoch = 0
        self.epoch &+= 1
    }
}
