import NIOCore

/// Bytes of receive window that auto-tuning has handed out across a session, bounded by
/// `YamuxConfiguration.maxAutoTunedSessionWindow`.
struct AutoTuneBudget {
    let limit: Int
    private(set) var granted: Int = 0

    init(limit: Int) { self.limit = limit }

    /// Grants up to `wanted` bytes; returns what was granted.
    mutating func take(_ wanted: Int) -> Int {
        let grant = max(0, min(wanted, self.limit - self.granted))
        self.granted += grant
        return grant
    }

    mutating func giveBack(_ amount: Int) {
        self.granted -= min(amount, self.granted)
    }
}

/// Per-stream flow control, both directions, as plain values so it can be tested alone.
///
/// Receive side, the hashicorp rule: `target` is the window we want the peer to have; of it,
/// `recvWindow` is credit the peer still holds and `buffered` is data received but not yet
/// handed to the stream's consumer. The rest was consumed and can be credited back: we do so
/// once that is at least half the target, so a slow reader gets no credit and slows only its
/// own sender.
struct StreamFlowController {
    /// Credit the peer still has for sending to us.
    private(set) var recvWindow: UInt32
    /// Bytes received but not yet delivered to the consumer.
    private(set) var buffered: UInt32 = 0
    /// The receive window we aim to offer; grows with auto-tuning.
    private(set) var target: UInt32
    /// Window the configured max gives; auto-tuning growth is `target - baseTarget`.
    let baseTarget: UInt32
    /// The peer's credit for us: how much we may still send.
    private(set) var sendWindow: UInt32
    /// When the current receive-window epoch began (last update sent), for auto-tuning.
    private var epochStart: NIODeadline?

    init(maxStreamWindow: UInt32) {
        self.recvWindow = YamuxConfiguration.initialStreamWindow
        self.target = maxStreamWindow
        self.baseTarget = maxStreamWindow
        self.sendWindow = YamuxConfiguration.initialStreamWindow
    }

    /// Bytes auto-tuning added to this stream (to give back to the budget when it ends).
    var autoTuneGrowth: Int { Int(self.target - self.baseTarget) }

    // MARK: receive side

    /// A data frame of `length` bytes arrived. False means the peer overran its window, a
    /// protocol error.
    mutating func receive(_ length: UInt32) -> Bool {
        guard length <= self.recvWindow else { return false }
        self.recvWindow -= length
        self.buffered += length
        return true
    }

    /// `length` buffered bytes reached the consumer.
    mutating func consumed(_ length: UInt32) {
        self.buffered -= min(length, self.buffered)
    }

    /// Forgets buffered bytes that will never be consumed (the stream is gone).
    mutating func dropBuffered() {
        self.buffered = 0
    }

    /// The window delta to send now, or nil when it can wait.
    ///
    /// - Parameters:
    ///   - force: send even a small (or zero) delta, because the frame carries SYN/ACK/FIN.
    ///   - now: the current time, for auto-tuning.
    ///   - rtt: the session's latest measured round-trip time, if any.
    ///   - budget: the session-wide auto-tuning allowance.
    ///   - maxAutoTuned: the per-stream cap for auto-tuning, or nil when it is off.
    mutating func windowUpdate(
        force: Bool,
        now: NIODeadline,
        rtt: TimeAmount?,
        budget: inout AutoTuneBudget,
        maxAutoTuned: UInt32?
    ) -> UInt32? {
        let outstanding = UInt64(self.recvWindow) + UInt64(self.buffered)
        var delta = UInt32(clamping: UInt64(self.target) - min(UInt64(self.target), outstanding))
        guard force || delta >= self.target / 2 else { return nil }

        // Auto-tuning (as go-yamux and rust-yamux do it): if the peer used up half the window
        // within a few round trips, the window, not the reader, limits throughput. Double it,
        // within the per-stream cap and the session budget.
        if !force, let rtt, let maxAutoTuned, let start = self.epochStart,
            now - start < rtt * 4, self.target < maxAutoTuned
        {
            let wanted = Int(min(UInt64(self.target) * 2, UInt64(maxAutoTuned))) - Int(self.target)
            let grant = budget.take(wanted)
            if grant > 0 {
                self.target += UInt32(grant)
                delta += UInt32(grant)
            }
        }
        self.epochStart = now
        self.recvWindow += delta
        return delta
    }

    // MARK: send side

    /// The peer granted `delta` more bytes.
    mutating func grantSend(_ delta: UInt32) {
        // Saturate rather than wrap: a peer granting past 4 GiB gains nothing by it.
        self.sendWindow = UInt32(clamping: UInt64(self.sendWindow) + UInt64(delta))
    }

    /// We sent `length` bytes of data.
    mutating func sent(_ length: UInt32) {
        precondition(length <= self.sendWindow, "yamux: attempted to overrun the peer's window")
        self.sendWindow -= length
    }
}
