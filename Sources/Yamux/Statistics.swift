import Synchronization

/// Counters of a session's activity, for tests and metrics.
public struct YamuxSessionStatistics: Sendable, Hashable {
    /// Pings from the peer we answered.
    public var pingsAnswered = 0
    /// Answers to our pings.
    public var pongsReceived = 0
    /// Keepalive pings sent.
    public var keepAlivesSent = 0
    /// Window updates sent after the consumer read data.
    public var windowUpdatesSent = 0
    /// Inbound streams refused with RST (backlog, limits, GoAway).
    public var streamsRefused = 0
    /// Frames for unknown streams, discarded.
    public var framesDiscarded = 0
    /// Most control frames ever held while the connection was not writable.
    public var maxBufferedControlFrames = 0
    /// Bytes of receive window auto-tuning has currently added across streams.
    public var autoTunedWindow = 0
    /// Bytes the session's streams hold now: received and not yet read by
    /// the application, or written and not yet sent (waiting for the peer's
    /// window or for the connection to become writable).
    public var bufferedBytes = 0
    /// Of ``bufferedBytes``, those received and not yet read; bounded by
    /// ``YamuxConfiguration/maxSessionUnreadBytes``.
    public var unreadBytes = 0
    /// The most ``bufferedBytes`` has been.
    public var maxBufferedBytes = 0

    /// All zero; only a session counts.
    package init() {}
}

/// Counts the yamux sessions and streams whose memory is still held, across
/// every session given it: a server hands one to all its sessions, so that a
/// leak (a stream that ended but was never freed) shows as a count that does
/// not come back down. Each object counts itself from its initialiser to its
/// `deinit`, so the counts are what is alive, not what is open.
package final class YamuxLiveObjects: Sendable {
    private let sessions = Atomic<Int>(0)
    private let streams = Atomic<Int>(0)
    private let maxBuffered = Atomic<Int>(0)

    package init() {}

    /// Session handlers alive.
    package var sessionCount: Int { self.sessions.load(ordering: .relaxed) }
    /// Stream channels alive.
    package var streamCount: Int { self.streams.load(ordering: .relaxed) }
    /// The most bytes any one session has buffered (``YamuxSessionStatistics/maxBufferedBytes``).
    package var maxSessionBufferedBytes: Int { self.maxBuffered.load(ordering: .relaxed) }

    func sessionCreated() { self.sessions.add(1, ordering: .relaxed) }
    func sessionFreed() { self.sessions.subtract(1, ordering: .relaxed) }
    func streamCreated() { self.streams.add(1, ordering: .relaxed) }
    func streamFreed() { self.streams.subtract(1, ordering: .relaxed) }

    func sessionBufferedBytesReached(_ bytes: Int) {
        var current = self.maxBuffered.load(ordering: .relaxed)
        while bytes > current {
            let (exchanged, original) = self.maxBuffered.compareExchange(expected: current, desired: bytes, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}
