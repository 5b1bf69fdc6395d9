#if os(Linux)
import CEventFD
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps one event loop polling for I/O, instead of sleeping, for a window
/// after the last traffic of the connections that share it (see
/// ``BusyPolling`` for why).
///
/// NIO's loop blocks in `epoll_wait` only when it has nothing ready, so the
/// poller keeps something ready: an eventfd in semaphore mode whose counter
/// never runs out, registered on the loop as a channel that reads only when
/// asked to. While the poller asks, every turn of the loop reads it (one
/// 8-byte `read`, which takes 1 from the counter) alongside whatever I/O is
/// ready, and the poller decides whether to ask again: while traffic goes
/// on, or the window since it stopped has not run out, it does (yielding the
/// CPU first when there was no traffic); otherwise it stops asking, NIO
/// drops its interest in the eventfd, and the loop sleeps at its next turn
/// as before. An eventfd costs one system call per turn where a socket pair
/// cost two (a read, and a send to refill it), and its reads never wake
/// anyone.
///
/// There is one poller per loop, shared by every connection on it: the first
/// ``acquire(on:window:)`` creates it, the last ``release(window:)`` closes
/// it. All but the registry is confined to the loop. Linux only: elsewhere
/// no poller opens, and loops sleep as NIO made them.
final class BusyPoller: @unchecked Sendable {
    private static let pollers = NIOLockedValueBox<[ObjectIdentifier: BusyPoller]>([:])

    /// Held strongly so that its identifier, the registry's key, cannot be reused while this lives.
    private let eventLoop: any EventLoop
    /// Each user's window; the loop polls for the longest.
    private var windows: [TimeAmount: Int] = [:]
    private var window: TimeAmount = .zero

    /// The eventfd's channel, once registered; reads only when the poller asks.
    private var wakeChannel: (any Channel)?
    private var isClosing = false

    /// Bumped by every read and flush; compared at each turn to see whether there was traffic since.
    private var traffic: UInt64 = 0
    private var trafficSeen: UInt64 = 0
    private var quietSince = NIODeadline.distantPast
    private(set) var isPolling = false
    /// Loop turns spent polling, for tests and curiosity.
    private(set) var turns = 0
    /// True once the eventfd is closed (or when it could not be opened); any thread may read it.
    var isClosed: Bool { closedFlag.withLockedValue { $0 } }
    private let closedFlag = NIOLockedValueBox(false)

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// The loop's poller, created if it has none, with `window` counted as one more user's.
    static func acquire(on eventLoop: any EventLoop, window: TimeAmount) -> BusyPoller {
        eventLoop.preconditionInEventLoop()
        let key = ObjectIdentifier(eventLoop)
        let (poller, created) = pollers.withLockedValue { pollers in
            if let poller = pollers[key] { return (poller, false) }
            let poller = BusyPoller(eventLoop: eventLoop)
            pollers[key] = poller
            return (poller, true)
        }
        if created { poller.openWakeChannel() }
        poller.windows[window, default: 0] += 1
        poller.window = max(poller.window, window)
        return poller
    }

    /// The loop's poller, if one is open; for tests.
    static func existing(on eventLoop: any EventLoop) -> BusyPoller? {
        pollers.withLockedValue { $0[ObjectIdentifier(eventLoop)] }
    }

    /// Gives back one user's share; the last one closes the poller.
    func release(window: TimeAmount) {
        eventLoop.preconditionInEventLoop()
        guard let users = windows[window] else { return }
        windows[window] = users > 1 ? users - 1 : nil
        self.window = windows.keys.max() ?? .zero
        guard windows.isEmpty else { return }
        let key = ObjectIdentifier(eventLoop)
        Self.pollers.withLockedValue { pollers in
            if pollers[key] === self { pollers[key] = nil }
        }
        close()
    }

    /// A connection on the loop read or flushed: poll, if not already.
    func noteTraffic() {
        traffic &+= 1
        guard !isPolling, let wakeChannel else { return }
        isPolling = true
        trafficSeen = traffic
        quietSince = .now()
        wakeChannel.read()
    }

    /// Called once per loop turn while polling, when the wake channel was
    /// read. Whether to read it at the next turn too.
    fileprivate func loopTurned() -> Bool {
        guard isPolling else { return false }
        turns += 1
        let now = NIODeadline.now()
        if traffic != trafficSeen {
            trafficSeen = traffic
            quietSince = now
        } else if now - quietSince >= window {
            isPolling = false
            return false
        } else {
            // Nothing happened this turn: let any other thread that is ready use the CPU first.
            sched_yield()
        }
        return true
    }

    private func openWakeChannel() {
        #if os(Linux)
        let descriptor = eventfd(0, CInt(EFD_SEMAPHORE) | CInt(EFD_NONBLOCK) | CInt(EFD_CLOEXEC))
        guard descriptor >= 0 else {
            wakeChannelClosed()
            return
        }
        // A counter that no loop can read down: each read takes 1 from it.
        var counter = UInt64(1) << 62
        guard write(descriptor, &counter, MemoryLayout<UInt64>.size) == MemoryLayout<UInt64>.size else {
            _ = closeDescriptor(descriptor)
            wakeChannelClosed()
            return
        }
        let reader = WakeHandler(poller: self)
        NIOPipeBootstrap(group: eventLoop)
            .channelOption(.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(reader) }
            }
            .takingOwnershipOfDescriptor(input: descriptor)
            .hop(to: eventLoop)
            .whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    // Closed by us, or by the loop shutting down.
                    channel.closeFuture.whenComplete { [self] _ in wakeChannelClosed() }
                    // Until now `noteTraffic` could not start polling: the next traffic will.
                    if isClosing { channel.close(promise: nil) } else { wakeChannel = channel }
                case .failure:
                    // The loop is shutting down.
                    wakeChannelClosed()
                }
            }
        #else
        wakeChannelClosed()
        #endif
    }

    private func close() {
        isClosing = true
        isPolling = false
        wakeChannel?.close(promise: nil)
        wakeChannel = nil
    }

    private func wakeChannelClosed() {
        wakeChannel = nil
        closedFlag.withLockedValue { $0 = true }
    }
}

/// `close(2)`, out of reach by that name inside ``BusyPoller``, which has a `close()` of its own.
private func closeDescriptor(_ descriptor: CInt) -> CInt {
    close(descriptor)
}

/// Reads the eventfd once per loop turn while the poller asks for it.
private final class WakeHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let poller: BusyPoller

    init(poller: BusyPoller) {
        self.poller = poller
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func channelReadComplete(context: ChannelHandlerContext) {
        // Asking from here, before NIO looks, keeps its interest in the
        // eventfd registered: no epoll_ctl per turn.
        if poller.loopTurned() { context.read() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
