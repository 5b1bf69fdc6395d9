public import NIOCore

/// Sits first in a MuxRPC connection's pipeline and tells its event loop's
/// ``BusyPoller`` about every read and flush, so that the loop can keep
/// polling while the connection has traffic. It takes a share of the poller
/// when added and gives it back when removed (the connection closed).
final class BusyPollingHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = IOData

    private let pollers: BusyPollers
    private var poller: BusyPoller?

    init(pollers: BusyPollers) {
        self.pollers = pollers
    }

    func handlerAdded(context: ChannelHandlerContext) {
        poller = pollers.acquire(on: context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if let poller { pollers.release(poller) }
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
    /// Puts busy polling first in a connection's pipeline, when `pollers`
    /// is given and its setting enabled: while the connection reads or
    /// flushes, its event loop polls as the setting says (see
    /// ``BusyPolling``). MuxRPC's server and connections do this themselves;
    /// this is for other channels, a yamux session of your own for
    /// instance. Call it on the channel's event loop.
    public func addBusyPolling(_ pollers: BusyPollers?) throws {
        guard let pollers, pollers.setting.isEnabled else { return }
        try addHandler(BusyPollingHandler(pollers: pollers), position: .first)
    }
}
