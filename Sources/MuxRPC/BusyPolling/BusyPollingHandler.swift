public import NIOCore

/// Sits first in a MuxRPC connection's pipeline and tells its event loop's
/// ``BusyPoller`` about every read and flush, so that the loop keeps polling
/// while the connection has traffic. It takes a share of the poller when
/// added and gives it back when removed (the connection closed).
final class BusyPollingHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = IOData

    private let window: TimeAmount
    private var poller: BusyPoller?

    init(window: TimeAmount) {
        self.window = window
    }

    func handlerAdded(context: ChannelHandlerContext) {
        poller = BusyPoller.acquire(on: context.eventLoop, window: window)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        poller?.release(window: window)
        poller = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        poller?.noteTraffic()
        context.fireChannelRead(data)
    }

    func flush(context: ChannelHandlerContext) {
        poller?.noteTraffic()
        context.flush()
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// Puts busy polling first in a connection's pipeline, when `busyPolling`
    /// is enabled: while the connection reads or flushes, its event loop
    /// keeps polling (see ``BusyPolling``). MuxRPC's server and connections
    /// do this themselves; this is for other channels, a yamux session of
    /// your own for instance. Call it on the channel's event loop.
    public func addBusyPolling(_ busyPolling: BusyPolling) throws {
        guard busyPolling.isEnabled else { return }
        try addHandler(BusyPollingHandler(window: TimeAmount(busyPolling.window)), position: .first)
    }
}
