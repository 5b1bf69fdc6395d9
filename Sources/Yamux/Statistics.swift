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

    public init() {}
}
