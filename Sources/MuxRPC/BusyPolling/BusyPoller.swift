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
/// poller keeps something ready: one end of a socket pair, registered on the
/// loop as a channel, while the poller writes a byte into the other end. Each
/// time round the loop reads that byte alongside whatever I/O is ready, and
/// the poller decides whether to write the next one: while traffic goes on,
/// or the window since it stopped has not run out, it does (yielding the CPU
/// first when there was no traffic); otherwise it stops, and the loop sleeps
/// at its next turn as before.
///
/// There is one poller per loop, shared by every connection on it: the first
/// ``acquire(on:window:)`` creates it, the last ``release(window:)`` closes
/// it. All but the registry is confined to the loop.
final class BusyPoller: @unchecked Sendable {
    private static let pollers = NIOLockedValueBox<[ObjectIdentifier: BusyPoller]>([:])

    /// Held strongly so that its identifier, the registry's key, cannot be reused while this lives.
    private let eventLoop: any EventLoop
    /// Each user's window; the loop polls for the longest.
    private var windows: [TimeAmount: Int] = [:]
    private var window: TimeAmount = .zero

    /// The end of the socket pair this side writes; -1 once closed or when it could not be made.
    private var kickDescriptor: CInt = -1
    private var wakeChannel: (any Channel)?
    private var isClosing = false

    /// Bumped by every read and flush; compared at each turn to see whether there was traffic since.
    private var traffic: UInt64 = 0
    private var trafficSeen: UInt64 = 0
    private var quietSince = NIODeadline.distantPast
    private(set) var isPolling = false
    /// Loop turns spent polling, for tests and curiosity.
    private(set) var turns = 0
    /// True once both ends of the socket pair are closed (or when it could not be opened); any thread may read it.
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
        guard !isPolling, kickDescriptor >= 0 else { return }
        isPolling = true
        trafficSeen = traffic
        quietSince = .now()
        kick()
    }

    /// Called once per loop turn while polling, when the wake channel read the byte.
    fileprivate func loopTurned() {
        guard isPolling else { return }
        turns += 1
        let now = NIODeadline.now()
        if traffic != trafficSeen {
            trafficSeen = traffic
            quietSince = now
        } else if now - quietSince >= window {
            isPolling = false
            return
        } else {
            // Nothing happened this turn: let any other thread that is ready use the CPU first.
            sched_yield()
        }
        kick()
    }

    private func kick() {
        var byte: UInt8 = 0
        #if canImport(Darwin)
        let flags: CInt = MSG_DONTWAIT
        #else
        let flags = CInt(MSG_DONTWAIT) | CInt(MSG_NOSIGNAL)
        #endif
        // EAGAIN (a byte already waits) and any other failure leave the loop no worse than without polling.
        _ = send(kickDescriptor, &byte, 1, flags)
    }

    private func openWakeChannel() {
        var descriptors: [CInt] = [-1, -1]
        #if canImport(Glibc)
        let type = CInt(SOCK_STREAM.rawValue)
        #else
        let type = SOCK_STREAM
        #endif
        guard socketpair(AF_UNIX, type, 0, &descriptors) == 0 else {
            socketPairClosed()
            return
        }
        _ = fcntl(descriptors[1], F_SETFL, O_NONBLOCK)
        _ = fcntl(descriptors[1], F_SETFD, FD_CLOEXEC)
        _ = fcntl(descriptors[0], F_SETFD, FD_CLOEXEC)
        kickDescriptor = descriptors[1]
        let reader = WakeHandler(poller: self)
        NIOPipeBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(reader) }
            }
            .takingOwnershipOfDescriptor(input: descriptors[0])
            .hop(to: eventLoop)
            .whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    // The loop's end is gone (closed by us, or by the loop shutting down): so is ours.
                    channel.closeFuture.whenComplete { [self] _ in socketPairClosed() }
                    if isClosing { channel.close(promise: nil) } else { wakeChannel = channel }
                case .failure:
                    // The loop is shutting down: nothing reads the pair, so stop writing to it.
                    socketPairClosed()
                }
            }
    }

    private func close() {
        isClosing = true
        isPolling = false
        closeKickDescriptor()
        wakeChannel?.close(promise: nil)
        wakeChannel = nil
    }

    /// Nothing reads the loop's end any more (or there never was a pair): close ours too, and say so.
    private func socketPairClosed() {
        closeKickDescriptor()
        closedFlag.withLockedValue { $0 = true }
    }

    private func closeKickDescriptor() {
        guard kickDescriptor >= 0 else { return }
        closeDescriptor(kickDescriptor)
        kickDescriptor = -1
    }
}

/// `close(2)`, out of reach by that name inside ``BusyPoller``, which has a `close()` of its own.
private func closeDescriptor(_ descriptor: CInt) {
    _ = close(descriptor)
}

/// Reads the poller's bytes off the loop's end of the socket pair.
private final class WakeHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let poller: BusyPoller

    init(poller: BusyPoller) {
        self.poller = poller
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func channelReadComplete(context: ChannelHandlerContext) {
        poller.loopTurned()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
