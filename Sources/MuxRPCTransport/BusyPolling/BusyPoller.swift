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

/// Keeps one event loop polling for I/O, instead of sleeping, after the
/// traffic of the connections that share it, as its ``SpinPolicy`` decides
/// (see ``BusyPolling`` for why).
///
/// NIO's loop blocks in `epoll_wait` only when it has nothing ready, so the
/// poller keeps something ready: an eventfd in semaphore mode whose counter
/// never runs out, registered on the loop as a channel that reads only when
/// asked to. While the poller asks, every turn of the loop reads it (one
/// 8-byte `read`, which takes 1 from the counter) alongside whatever I/O is
/// ready, and the poller asks its policy whether to ask again (yielding the
/// CPU first when there was no traffic); once the policy says no, it stops
/// asking, NIO drops its interest in the eventfd, and the loop sleeps at its
/// next turn as before. An eventfd costs one system call per turn where a
/// socket pair cost two (a read, and a send to refill it), and its reads
/// never wake anyone.
///
/// While the loop does not spin, each read or flush costs one clock read,
/// which is what the policy needs to tell dense traffic from sparse; while
/// it spins, a counter bump, and each turn one clock read (two when it
/// yields, to tell the policy how long the yield took).
///
/// There is one poller per loop and ``BusyPollers`` object, shared by every
/// connection on that loop that was given the object: the first
/// ``BusyPollers/acquire(on:)`` creates it, the last ``release()`` closes it.
/// All but the closed flag is confined to the loop. Linux only: elsewhere no
/// poller opens, and loops sleep as NIO made them.
final class BusyPoller: @unchecked Sendable {
    /// Held strongly so that its identifier, the key in its ``BusyPollers``, cannot be reused while this lives.
    let eventLoop: any EventLoop
    /// Connections using this poller.
    private var users = 0

    /// The eventfd's channel, once registered; reads only when the poller asks.
    private var wakeChannel: (any Channel)?
    private var isClosing = false

    /// Bumped by every read and flush while spinning; compared at each turn to see whether there was traffic since.
    private var traffic: UInt64 = 0
    private var trafficSeen: UInt64 = 0
    private(set) var policy: SpinPolicy
    var isPolling: Bool { policy.isSpinning }
    /// Loop turns spent polling, for tests and curiosity.
    private(set) var turns = 0
    /// True once the eventfd is closed (or when it could not be opened); any thread may read it.
    var isClosed: Bool { closedFlag.withLockedValue { $0 } }
    private let closedFlag = NIOLockedValueBox(false)

    init(eventLoop: any EventLoop, parameters: SpinPolicy.Parameters) {
        self.eventLoop = eventLoop
        self.policy = SpinPolicy(parameters)
    }

    /// One more connection uses the poller; the first opens its eventfd.
    func retain() {
        eventLoop.preconditionInEventLoop()
        users += 1
        if users == 1 { openWakeChannel() }
    }

    /// One connection fewer; the last one closes the poller. Returns whether it did.
    func release() -> Bool {
        eventLoop.preconditionInEventLoop()
        users -= 1
        guard users == 0 else { return false }
        close()
        return true
    }

    /// A connection on the loop read or flushed: tell the policy, which may start a spin.
    func noteTraffic() {
        guard !policy.isSpinning else {
            traffic &+= 1
            return
        }
        // Before the eventfd is registered nothing could drive the spin's turns.
        guard let wakeChannel else { return }
        if policy.traffic(at: .now()) {
            trafficSeen = traffic
            wakeChannel.read()
        }
    }

    /// Called once per loop turn while polling, when the wake channel was
    /// read. Whether to read it at the next turn too.
    fileprivate func loopTurned() -> Bool {
        guard policy.isSpinning else { return false }
        turns += 1
        let sawTraffic = traffic != trafficSeen
        trafficSeen = traffic
        let now = NIODeadline.now()
        guard policy.turn(at: now, sawTraffic: sawTraffic) else { return false }
        if !sawTraffic {
            // Nothing happened this turn: let any other thread that is ready
            // use the CPU first, and tell the policy how long that took.
            sched_yield()
            policy.yielded(from: now, to: .now())
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
