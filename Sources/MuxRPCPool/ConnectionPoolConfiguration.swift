import Yamux
public import MuxRPCTransport

extension ConnectionPool {
    /// The pool's limits and timers. Every limit is per server address; the
    /// defaults follow Consul's pool where it has one (64 idle streams per
    /// session, two minutes before an idle session is closed).
    public struct Configuration: Sendable {
        /// What a caller over a limit does.
        public enum BusyPolicy: Sendable, Hashable {
            /// Wait for a stream until the call's deadline (or cancellation).
            case wait
            /// Fail at once with `MuxRPCError/Code/overloaded`.
            /// Callers still wait for a session being dialled: that is not
            /// being over a limit.
            case failFast
        }

        /// How each session is reached: preamble mode, TLS, yamux and RPC settings.
        public var connection: MuxRPCConnection.Configuration

        /// Sessions (TCP connections) per address. A second one opens only
        /// when every open one has ``maxStreamsPerSession`` streams.
        /// Default 2.
        public var maxSessionsPerAddress: Int
        /// Streams (busy plus idle) per session. Default 1024, well under
        /// yamux's own stream limit and hashicorp's accept backlog of 256
        /// un-acknowledged opens.
        public var maxStreamsPerSession: Int
        /// Idle streams kept per session for reuse; a stream returned beyond
        /// this is closed. Default 64 (Consul's `MaxStreams`).
        public var maxIdleStreamsPerSession: Int
        /// Calls in flight per address; beyond it callers wait or fail
        /// (``whenBusy``). Default 2048.
        public var maxConcurrentCallsPerAddress: Int
        /// Callers waiting for a stream per address; one more fails with
        /// `MuxRPCError/Code/tooManyWaiters`. Default 1024.
        public var maxWaitersPerAddress: Int
        /// What a caller over ``maxConcurrentCallsPerAddress`` or the stream
        /// limits does. Default ``BusyPolicy/wait``.
        public var whenBusy: BusyPolicy
        /// Whether a stream goes back to the free-list after the server
        /// answered with an error. Default false, as Consul does: any error
        /// closes the stream. True is safe too (an error reply leaves the
        /// stream in step) and spares a stream open per error reply.
        public var keepsStreamsAfterServerErrors: Bool

        /// A session no call has used for this long is closed. Default 2
        /// minutes (Consul's `MaxTime`).
        public var maxIdleTime: Duration
        /// How often idle sessions are looked for. Default 1 second.
        public var reapInterval: Duration
        /// How long ``ConnectionPool/shutdown()`` lets calls in flight finish
        /// before it closes their sessions. Default 10 seconds.
        public var shutdownGracePeriod: Duration

        /// How often every ready session is pinged (yamux ping), its
        /// round-trip time recorded; nil for never. Default 10 seconds.
        /// Yamux keepalive finds dead connections too, but only after its
        /// own interval (30 s) and without a timeout of ours: a session whose
        /// server stalls is found here.
        public var healthCheckInterval: Duration?
        /// A session whose ping gets no answer within this long is closed.
        /// Default 5 seconds.
        public var healthCheckTimeout: Duration
        /// When an address's last ready session fails, dial a new one at once
        /// in the background, at most once per this interval, so the next
        /// call finds it ready; nil to leave the dial to the next call.
        /// Default 1 second.
        public var sessionReplacementInterval: Duration?

        /// A configuration with every default but those given.
        public init(
            connection: MuxRPCConnection.Configuration = .init(),
            maxSessionsPerAddress: Int = 2,
            maxStreamsPerSession: Int = 1024,
            maxIdleStreamsPerSession: Int = 64,
            maxConcurrentCallsPerAddress: Int = 2048,
            maxWaitersPerAddress: Int = 1024,
            whenBusy: BusyPolicy = .wait,
            keepsStreamsAfterServerErrors: Bool = false,
            maxIdleTime: Duration = .seconds(120),
            reapInterval: Duration = .seconds(1),
            shutdownGracePeriod: Duration = .seconds(10),
            healthCheckInterval: Duration? = .seconds(10),
            healthCheckTimeout: Duration = .seconds(5),
            sessionReplacementInterval: Duration? = .seconds(1)
        ) {
            self.connection = connection
            self.maxSessionsPerAddress = maxSessionsPerAddress
            self.maxStreamsPerSession = maxStreamsPerSession
            self.maxIdleStreamsPerSession = maxIdleStreamsPerSession
            self.maxConcurrentCallsPerAddress = maxConcurrentCallsPerAddress
            self.maxWaitersPerAddress = maxWaitersPerAddress
            self.whenBusy = whenBusy
            self.keepsStreamsAfterServerErrors = keepsStreamsAfterServerErrors
            self.maxIdleTime = maxIdleTime
            self.reapInterval = reapInterval
            self.shutdownGracePeriod = shutdownGracePeriod
            self.healthCheckInterval = healthCheckInterval
            self.healthCheckTimeout = healthCheckTimeout
            self.sessionReplacementInterval = sessionReplacementInterval
        }

        /// Throws a `MuxRPCError` with code
        /// `MuxRPCError/Code/invalidConfiguration` for a limit that cannot
        /// work, or the error of the connection's yamux, busy polling or
        /// socket reads settings.
        public func validate() throws {
            let check = ConfigurationCheck { MuxRPCError.invalidConfiguration("connection pool", $0) }
            try check.require(maxSessionsPerAddress >= 1, "maxSessionsPerAddress must be at least 1")
            try check.require(maxStreamsPerSession >= 1, "maxStreamsPerSession must be at least 1")
            try check.require(
                connection.mode == .plain || maxStreamsPerSession <= connection.yamux.maxConcurrentStreams,
                "maxStreamsPerSession (\(maxStreamsPerSession)) exceeds yamux's maxConcurrentStreams (\(connection.yamux.maxConcurrentStreams))"
            )
            try check.require(maxIdleStreamsPerSession >= 0, "maxIdleStreamsPerSession must not be negative")
            try check.require(maxConcurrentCallsPerAddress >= 1, "maxConcurrentCallsPerAddress must be at least 1")
            try check.require(maxWaitersPerAddress >= 1, "maxWaitersPerAddress must be at least 1: a first call waits for its dial")
            try check.require(maxIdleTime > .zero, "maxIdleTime must be positive")
            try check.require(reapInterval > .zero, "reapInterval must be positive")
            try check.require(shutdownGracePeriod >= .zero, "shutdownGracePeriod must not be negative")
            try check.require(healthCheckInterval.map { $0 > .zero } ?? true, "healthCheckInterval must be positive")
            try check.require(healthCheckTimeout > .zero, "healthCheckTimeout must be positive")
            try check.require(sessionReplacementInterval.map { $0 >= .zero } ?? true, "sessionReplacementInterval must not be negative")
            try connection.yamux.validate()
            try connection.busyPolling?.validate()
            try connection.socketReads.validate()
        }
    }
}
