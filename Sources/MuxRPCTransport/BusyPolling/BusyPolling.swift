import NIOCore
import Synchronization

/// Whether, and how, an event loop serving MuxRPC connections keeps polling
/// for I/O instead of sleeping when its traffic pauses.
///
/// A thread asleep in `epoll_wait` has to be woken by the kernel when the
/// next bytes arrive. On virtual machines that wake-up can take longer than
/// the CPU time of a whole small call. Go's runtime hides it by spinning idle
/// threads before it parks them; busy polling does the same for NIO's event
/// loops: after a loop reads or flushes bytes on a MuxRPC connection it goes
/// on checking for I/O without blocking, for up to ``window``, and each time
/// round it first yields its CPU to any other thread ready to run.
///
/// Spinning costs CPU time. ``isAdaptive`` (the default of
/// ``init(window:isAdaptive:)``, and ``adaptive``) spins only while the
/// loop's traffic is dense enough for spins to catch the next bytes, as
/// Linux's adaptive busy polling and Go's scheduler do: an idle loop, or one
/// with sparse traffic, sleeps at once. A fixed window spins after every
/// traffic, dense or not. Docs/tuning.md has what each costs and gains,
/// measured.
///
/// A setting does nothing by itself: give it to a ``BusyPollers`` object,
/// and that object to the servers and connections that should poll. By
/// default each server's and each connection configuration's loops poll
/// adaptively, with an object of their own.
public struct BusyPolling: Sendable, Hashable {
    /// How long a loop spins after its last traffic before it sleeps; zero
    /// turns busy polling off.
    public var window: Duration
    /// Whether the loop spins only while spins catch its traffic (true),
    /// or after every traffic (false).
    public var isAdaptive: Bool

    /// Polling for up to `window` after traffic: adaptively (only while
    /// spins catch the traffic) unless `isAdaptive` is false.
    public init(window: Duration, isAdaptive: Bool = true) {
        self.window = window
        self.isAdaptive = isAdaptive
    }

    /// No busy polling: loops sleep as soon as they have nothing to do.
    public static let disabled = BusyPolling(window: .zero)

    /// Adaptive, with a 100 µs window: longer than a small call's round trip
    /// on loopback even when the peer's loop sleeps and has to be woken, so
    /// that each end's spins pay back whether or not the other end spins
    /// too. With a window that only a spinning peer's replies fit in, the two
    /// ends' policies depend on each other: one that engages alone misses,
    /// backs off, and may keep missing the other's engagements
    /// (Docs/tuning.md, "Busy polling").
    public static let adaptive = BusyPolling(window: .microseconds(100), isAdaptive: true)

    /// A fixed window: the loop spins after every traffic, for `window`.
    public static func fixedWindow(_ window: Duration) -> BusyPolling {
        BusyPolling(window: window, isAdaptive: false)
    }

    /// The longest window allowed: 10 ms. Beyond it a loop would burn a core
    /// for no gain, since a wake-up costs far less.
    public static let maximumWindow: Duration = .milliseconds(10)

    /// Whether loops poll at all.
    public var isEnabled: Bool { window > .zero }

    /// Throws ``MuxRPCError`` with code ``MuxRPCError/Code/invalidConfiguration``
    /// for a window below zero or above ``maximumWindow``.
    public func validate() throws(MuxRPCError) {
        let check = ConfigurationCheck { MuxRPCError.invalidConfiguration("busy polling", $0) }
        try check.require(window >= .zero, "busy polling window must not be negative")
        try check.require(
            window <= Self.maximumWindow,
            "busy polling window \(window) exceeds the maximum of \(Self.maximumWindow)"
        )
    }

    var spinParameters: SpinPolicy.Parameters {
        SpinPolicy.Parameters(window: TimeAmount(window), isAdaptive: isAdaptive)
    }
}

/// The busy pollers of one event loop group: one per loop that has a
/// connection configured with this object, shared by all such connections
/// on that loop, closed when the last of them closes.
///
/// Every server configuration and connection configuration has one of its
/// own by default, adaptive. Where servers and clients share an event loop
/// group, create one for the group and give it to all of them
/// (``MuxRPCServer/Configuration/busyPolling``,
/// ``MuxRPCConnection/Configuration/busyPolling``, and through the latter
/// the pool's and `MuxRPCClient`'s connections), so that each loop has one
/// poller deciding from all of its traffic:
///
///     let polling = BusyPollers(.adaptive)
///     var server = MuxRPCServer.Configuration()
///     server.busyPolling = polling
///     var client = MuxRPCClient.Configuration()
///     client.pool.connection.busyPolling = polling
///
/// Nothing is shared beyond the object: two objects used on one loop give it
/// two pollers, each deciding on its own connections' traffic (and each
/// reading its own eventfd at every turn while it spins).
public final class BusyPollers: Sendable {
    /// How the loops poll.
    public let setting: BusyPolling
    /// What each loop's policy is made with: the setting's, unless a test chose.
    let spinParameters: SpinPolicy.Parameters
    /// Each loop's poller while a connection on it uses one, by the loop's identity.
    private let pollers = Mutex<[ObjectIdentifier: BusyPoller]>([:])

    /// Pollers that poll as `setting` says, one per loop that a server or
    /// connection given this object runs on.
    public init(_ setting: BusyPolling) {
        self.setting = setting
        self.spinParameters = setting.spinParameters
    }

    /// With the policy's parameters chosen, for tests that must not depend
    /// on how fast the machine runs.
    init(_ setting: BusyPolling, spinParameters: SpinPolicy.Parameters) {
        self.setting = setting
        self.spinParameters = spinParameters
    }

    /// Throws ``MuxRPCError`` with code ``MuxRPCError/Code/invalidConfiguration``
    /// when ``setting`` cannot work.
    public func validate() throws(MuxRPCError) {
        try setting.validate()
    }

    /// The loop's poller, created if it has none, with one more user.
    func acquire(on eventLoop: any EventLoop) -> BusyPoller {
        eventLoop.preconditionInEventLoop()
        let key = ObjectIdentifier(eventLoop)
        let poller = pollers.withLock { pollers in
            if let poller = pollers[key] { return poller }
            let poller = BusyPoller(eventLoop: eventLoop, parameters: spinParameters)
            pollers[key] = poller
            return poller
        }
        poller.retain()
        return poller
    }

    /// Gives back one user's share of `poller`; the last one closes it.
    func release(_ poller: BusyPoller) {
        guard poller.release() else { return }
        let key = ObjectIdentifier(poller.eventLoop)
        pollers.withLock { pollers in
            if pollers[key] === poller { pollers[key] = nil }
        }
    }

    /// The loop's poller, if one is open; for tests.
    func existing(on eventLoop: any EventLoop) -> BusyPoller? {
        pollers.withLock { $0[ObjectIdentifier(eventLoop)] }
    }
}
