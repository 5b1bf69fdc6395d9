import MuxRPCTransport

/// What a ``ConnectionPool`` holds now (gauges) and has done since it was
/// created (counters), over every address.
public struct ConnectionPoolStatistics: Sendable, Hashable {
    // Gauges.

    /// Sessions being dialled.
    public var connectingSessions = 0
    /// Sessions calls can use.
    public var readySessions = 0
    /// Sessions whose peer sent GoAway, waiting for their last calls.
    public var drainingSessions = 0
    /// Streams carrying a call (or being opened for one).
    public var busyStreams = 0
    /// Streams in the free-lists, ready for the next call.
    public var idleStreams = 0
    /// Calls holding a stream.
    public var callsInFlight = 0
    /// Callers waiting for a stream.
    public var waiters = 0
    /// Connections the pool dialled that are not closed yet, including ones
    /// already out of the pool and closing (multiplexed modes).
    public var connections = 0

    // Counters.

    /// Connections dialled (attempts).
    public var dials = 0
    /// Dials that failed.
    public var connectFailures = 0
    /// Sessions that became ready.
    public var sessionsOpened = 0
    /// Sessions closed: failed, reaped, drained or shut down.
    public var sessionsClosed = 0
    /// Sessions closed because no call used them for `maxIdleTime`.
    public var sessionsReaped = 0
    /// Streams opened for a call (attempts).
    public var streamsOpened = 0
    /// Calls that reused an idle stream.
    public var streamsReused = 0
    /// Streams closed: after an error, beyond the idle cap, or with their session.
    public var streamsClosed = 0

    /// All zero, as a pool starts.
    package init() {}

    /// Streams the pool has open now.
    public var openStreams: Int { busyStreams + idleStreams }
    /// Sessions the pool has open or opening now.
    public var sessions: Int { connectingSessions + readySessions + drainingSessions }
}
