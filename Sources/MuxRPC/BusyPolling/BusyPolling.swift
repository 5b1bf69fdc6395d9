/// Whether, and for how long, an event loop serving MuxRPC connections keeps
/// polling for I/O instead of sleeping when its traffic pauses.
///
/// A thread asleep in `epoll_wait` has to be woken by the kernel when the
/// next bytes arrive. On virtual machines that wake-up is expensive: 36 µs on
/// the 2-core VMs MuxRPC is measured on, more than the CPU time of a whole
/// call (Docs/benchmarks.md, "Busy polling"). Go's runtime hides it by
/// spinning idle threads before it parks them; this does the same for NIO's
/// event loops. For ``window`` after a loop last read or flushed bytes on a
/// MuxRPC connection, it goes on checking for I/O without blocking, and each
/// time round it first yields its CPU to any other thread ready to run.
///
/// The cost is CPU time: at most ``window`` of one core after each burst of
/// traffic on a loop. A loop with steady traffic is busy anyway; an idle one
/// sleeps as before. Set ``disabled`` where every core's idle time matters
/// more than latency.
public struct BusyPolling: Sendable, Hashable {
    /// How long a loop keeps polling after its last traffic; zero turns busy
    /// polling off.
    public var window: Duration

    public init(window: Duration) {
        self.window = window
    }

    /// No busy polling: loops sleep as soon as they have nothing to do.
    public static let disabled = BusyPolling(window: .zero)

    /// 50 µs: longer than a call's round trip on loopback, so a loop that
    /// waits for a reply or for the next request on a busy connection
    /// catches it without sleeping; short enough to cost little when
    /// traffic stops.
    public static let `default` = BusyPolling(window: .microseconds(50))

    /// The longest window allowed: 10 ms. Beyond it a loop would burn a core
    /// for no gain, since a wake-up costs far less.
    public static let maximumWindow: Duration = .milliseconds(10)

    /// Whether loops poll at all.
    public var isEnabled: Bool { window > .zero }

    /// Throws ``BusyPollingConfigurationError`` for a window below zero or
    /// above ``maximumWindow``.
    public func validate() throws(BusyPollingConfigurationError) {
        let check = ConfigurationCheck { BusyPollingConfigurationError(message: $0) }
        try check.require(window >= .zero, "busy polling window must not be negative")
        try check.require(
            window <= Self.maximumWindow,
            "busy polling window \(window) exceeds the maximum of \(Self.maximumWindow)"
        )
    }
}

/// A ``BusyPolling`` that cannot work.
public struct BusyPollingConfigurationError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { "invalid busy polling configuration: \(message)" }
}
