public import CoreMetrics
import Metrics
public import ServiceLifecycle
import Synchronization
import MuxRPCClientStack
public import MuxRPCPool
import MuxRPCTransport

/// Records a `ConnectionPool`'s `ConnectionPoolStatistics` as metrics:
/// its gauges as gauges, its counters as counters (by the increase since the
/// last report).
///
/// Either call ``report()`` whenever you like (before a scrape, say), or run
/// the reporter as a swift-service-lifecycle `Service`, which reports every
/// ``interval`` until cancelled or shut down gracefully:
///
///     let reporter = ConnectionPoolMetricsReporter(pool: pool)
///     let group = ServiceGroup(services: [pool, reporter], logger: logger)
///
/// | metric | kind | what |
/// | --- | --- | --- |
/// | `muxrpc_pool_sessions` | gauge | sessions connecting, ready or draining |
/// | `muxrpc_pool_connections` | gauge | TCP connections not yet closed |
/// | `muxrpc_pool_open_streams` | gauge | streams open (busy + idle) |
/// | `muxrpc_pool_busy_streams` | gauge | streams carrying a call |
/// | `muxrpc_pool_idle_streams` | gauge | streams in the free-lists |
/// | `muxrpc_pool_waiters` | gauge | callers waiting for a stream |
/// | `muxrpc_pool_calls_in_flight` | gauge | calls holding a stream |
/// | `muxrpc_pool_dials_total` | counter | connections dialled |
/// | `muxrpc_pool_connect_failures_total` | counter | dials that failed |
/// | `muxrpc_pool_sessions_opened_total` | counter | sessions that became ready |
/// | `muxrpc_pool_sessions_closed_total` | counter | sessions closed |
/// | `muxrpc_pool_streams_opened_total` | counter | streams opened |
/// | `muxrpc_pool_streams_reused_total` | counter | calls that reused an idle stream |
/// | `muxrpc_pool_streams_closed_total` | counter | streams closed |
///
/// Every metric carries ``dimensions`` (none by default; give a `pool`
/// label when a process has several pools).
public final class ConnectionPoolMetricsReporter: Service, Sendable {
    /// The pool reported on.
    public let pool: ConnectionPool
    /// How often ``run()`` reports.
    public let interval: Duration
    /// Labels on every metric.
    public let dimensions: [(String, String)]

    private struct Gauges: Sendable {
        var sessions, connections, openStreams, busyStreams, idleStreams, waiters, callsInFlight: Gauge
    }

    private let gauges: Gauges
    private let counters: [(any KeyPath<ConnectionPoolStatistics, Int> & Sendable, Counter)]
    /// The statistics of the last report, for the counters' increases.
    private let last = Mutex(ConnectionPoolStatistics())

    /// - Parameters:
    ///   - pool: the pool to report on.
    ///   - interval: how often ``run()`` reports; default 10 seconds, a
    ///     typical scrape interval.
    ///   - dimensions: labels on every metric.
    ///   - factory: where the metrics go. Default: the global factory as it
    ///     is now (bootstrap `MetricsSystem` first).
    public init(
        pool: ConnectionPool,
        interval: Duration = .seconds(10),
        dimensions: [(String, String)] = [],
        factory: (any MetricsFactory)? = nil
    ) {
        precondition(interval > .zero, "ConnectionPoolMetricsReporter: interval must be positive")
        let factory = factory ?? MetricsSystem.factory
        func gauge(_ name: String) -> Gauge { Gauge(label: "muxrpc_pool_\(name)", dimensions: dimensions, factory: factory) }
        func counter(_ name: String) -> Counter { Counter(label: "muxrpc_pool_\(name)_total", dimensions: dimensions, factory: factory) }
        self.pool = pool
        self.interval = interval
        self.dimensions = dimensions
        self.gauges = Gauges(
            sessions: gauge("sessions"), connections: gauge("connections"), openStreams: gauge("open_streams"),
            busyStreams: gauge("busy_streams"), idleStreams: gauge("idle_streams"), waiters: gauge("waiters"),
            callsInFlight: gauge("calls_in_flight")
        )
        self.counters = [
            (\.dials, counter("dials")),
            (\.connectFailures, counter("connect_failures")),
            (\.sessionsOpened, counter("sessions_opened")),
            (\.sessionsClosed, counter("sessions_closed")),
            (\.streamsOpened, counter("streams_opened")),
            (\.streamsReused, counter("streams_reused")),
            (\.streamsClosed, counter("streams_closed")),
        ]
    }

    /// Records the pool's statistics now.
    public func report() {
        let statistics = pool.statistics
        gauges.sessions.record(statistics.sessions)
        gauges.connections.record(statistics.connections)
        gauges.openStreams.record(statistics.openStreams)
        gauges.busyStreams.record(statistics.busyStreams)
        gauges.idleStreams.record(statistics.idleStreams)
        gauges.waiters.record(statistics.waiters)
        gauges.callsInFlight.record(statistics.callsInFlight)
        // Swapped under the lock so that two reports at once never count an
        // increase twice.
        let previous = last.withLock { last in
            defer { last = statistics }
            return last
        }
        for (path, counter) in counters {
            let increase = statistics[keyPath: path] - previous[keyPath: path]
            if increase > 0 { counter.increment(by: increase) }
        }
    }

    /// Reports every ``interval`` until the task is cancelled or a graceful
    /// shutdown begins; reports once more on the way out.
    public func run() async throws {
        defer { report() }
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    self.report()
                    try await Task.sleep(for: self.interval)
                }
            }
        } catch is CancellationError {
            // Stopping is what cancellation and shutdown ask for.
        }
    }
}
