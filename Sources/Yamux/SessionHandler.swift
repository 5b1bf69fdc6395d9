import NIOCore

// Timers and callbacks here capture the handler and its streams strongly,
// never weakly: a weak reference gives its object a side table, after which
// every retain and release of it (several per frame) takes the runtime's slow
// path. Each capture ends when its task runs or is cancelled, and
// `closeSession` and `streamRemoved` cancel them all.

/// The yamux session: one `ChannelHandler` at the end of the TCP channel's pipeline, in the
/// way of swift-nio-http2's connection handler. It parses frames, feeds them to the session's
/// state machine (``YamuxSessionStateMachine``, which holds the protocol state of the session
/// and of every stream), and carries out what comes back: frames go out through the
/// ``YamuxFrameWriter``, data and end of input to the streams' child channels
/// (`YamuxStreamChannel`), which carry data and ask the session for everything else.
///
/// Everything runs on the connection's event loop: no locks, no per-frame tasks. Frames written
/// while handling a read batch are flushed once, in `channelReadComplete`; frames written from
/// a stream's flush are flushed once per flush.
///
/// The API entry points (open, accept, GoAway) are in `SessionHandler+API.swift`, the calls
/// the streams make in `SessionHandler+Streams.swift`, pings and keepalive in
/// `SessionHandler+Ping.swift`, and the session's timers in `SessionHandler+Timers.swift`.
final class YamuxSessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Outcome handed to whoever waits for a stream (open or accept); runs on the loop before
    /// the stream channel is activated, so the receiver can install its handlers first.
    typealias StreamCallback = (Result<YamuxStreamChannel, any Error>) -> Void
    typealias AcceptCallback = (Result<YamuxStreamChannel?, any Error>) -> Void

    let role: YamuxRole
    let configuration: YamuxConfiguration
    /// Counts this session and its streams while their memory is held, when someone asks.
    let liveObjects: YamuxLiveObjects?
    var context: ChannelHandlerContext?
    private var parser: YamuxFrameParser
    /// The protocol state of the session and its streams; the streams are its entries' values.
    var machine: YamuxSessionStateMachine<YamuxStreamChannel>
    let writer: YamuxFrameWriter

    /// Accepts waiting for an inbound stream, and accepts cancelled before they arrived.
    var acceptWaiters: [(id: Int, callback: AcceptCallback)] = []
    var cancelledAcceptTokens = Set<Int>()
    /// The callers of opens waiting for an in-flight SYN slot (the machine counts them too).
    var pendingOpens = CircularBuffer<StreamCallback>()
    /// API calls made before the connection became active; run once it is (or fails).
    private var deferredUntilActive: [() -> Void] = []

    var pings = YamuxPingTracker()
    var timers = YamuxSessionTimers()

    var streamsNeedingReadComplete: [YamuxStreamChannel] = []
    /// Swapped with `streamsNeedingReadComplete` at the end of each batch, so neither array
    /// is reallocated (copying one and emptying the other would allocate once per batch).
    private var spareStreamList: [YamuxStreamChannel] = []
    /// Filled with the streams to tell of a writability change, so the stream map is not
    /// iterated while the streams' handlers act (and change it).
    private var writabilityList: [YamuxStreamChannel] = []

    /// Streams with data that wait for the connection to become writable, in order, and
    /// their ids so that each is listed once.
    var streamsWaitingForConnection: [YamuxStreamChannel] = []
    var idsWaitingForConnection = Set<UInt32>()
    var resumeScheduled = false

    /// Bytes the session's streams hold: received and not yet taken by their application, or
    /// written and not yet sent.
    var bufferedBytes = 0

    /// Counters for tests and metrics.
    var _statistics = YamuxSessionStatistics()

    /// Fires once when the session ends, with the reason.
    var closeCallbacks: [(YamuxError) -> Void] = []
    /// Called once when the peer sends GoAway(0) (see ``onRemoteGoAway(_:)``).
    var remoteGoAwayCallbacks: [() -> Void] = []

    init(role: YamuxRole, configuration: YamuxConfiguration, liveObjects: YamuxLiveObjects? = nil) {
        self.role = role
        self.configuration = configuration
        self.liveObjects = liveObjects
        liveObjects?.sessionCreated()
        let maxWindow = configuration.enableWindowAutoTuning
            ? max(configuration.maxStreamWindowSize, configuration.maxAutoTunedStreamWindow)
            : configuration.maxStreamWindowSize
        self.parser = YamuxFrameParser(maxDataLength: maxWindow)
        self.machine = YamuxSessionStateMachine(role: role, configuration: configuration)
        self.writer = YamuxFrameWriter(configuration: configuration)
    }

    deinit {
        self.liveObjects?.sessionFreed()
    }

    /// Inside a read batch: streams fire their read-complete once, at its end.
    var isInReadLoop: Bool { self.writer.isInReadBatch }

    // MARK: ChannelHandler lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.writer.context = context
        self.writer.connectionWritabilityChanged(context.channel.isWritable)
        if context.channel.isActive { self.start(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.closeSession(error: .sessionClosed, goAway: nil)
        self.context = nil
        self.writer.context = nil
        // Whatever was gathered and never flushed will not be now.
        self.writer.failPendingFrames(ChannelError.ioOnClosedChannel)
    }

    func channelActive(context: ChannelHandlerContext) {
        self.start(context: context)
        context.fireChannelActive()
    }

    private func runDeferred() {
        let deferred = self.deferredUntilActive
        self.deferredUntilActive.removeAll()
        for call in deferred { call() }
    }

    /// True (and `call` is kept for later) if the session is not active yet.
    func deferIfIdle(_ call: @escaping () -> Void) -> Bool {
        guard self.machine.isIdle else { return false }
        self.deferredUntilActive.append(call)
        return true
    }

    private func start(context: ChannelHandlerContext) {
        guard self.machine.start() else { return }
        defer { self.runDeferred() }
        if self.configuration.enableKeepAlive {
            self.scheduleKeepAlive()
        }
        if self.configuration.enableWindowAutoTuning {
            // One early ping gives auto-tuning a round-trip time to work with.
            self.sendPing(callback: nil)
            self.writer.flushIfNeeded()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.closeSession(error: .connectionClosed, goAway: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.closeSession(
            error: YamuxError(code: .connectionClosed, message: "connection failed (\(error)): session closed"),
            goAway: nil
        )
        context.fireErrorCaught(error)
    }

    /// Graceful shutdown, as NIO servers ask for it (`ChannelShouldQuiesceEvent`):
    /// GoAway(0) so the peer opens no more streams, the event passed on to every
    /// stream so each can finish what it is doing, and the session closed once
    /// every stream's application side is done.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        self.quiesce()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        self.writer.connectionWritabilityChanged(writable)
        if writable {
            self.timers.connectionBecameWritable()
            self.resumeStreamsWaitingForConnection(context: context)
            self.writer.flushIfNeeded()
        } else if self.machine.isRunning {
            self.startWriteTimeout(context: context)
        }
        self.writabilityList.append(contentsOf: self.machine.streams.values.lazy.map(\.stream))
        for stream in self.writabilityList { stream.parentWritabilityChanged(writable) }
        self.writabilityList.removeAll(keepingCapacity: true)
        context.fireChannelWritabilityChanged()
    }

    // MARK: reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard self.machine.isRunning else { return }
        var buffer = Self.unwrapInboundIn(data)
        self.writer.readBatchStarted()
        do {
            while self.machine.isRunning, let event = try self.parser.next(from: &buffer) {
                switch event {
                case .header(let header):
                    self.timers.frameProgress &+= 1
                    try self.handleHeader(header)
                case .payload(let piece, let last):
                    if last { self.timers.frameProgress &+= 1 }
                    try self.handlePayload(piece, last: last)
                }
            }
            self.watchPartialFrame(context: context, insideFrame: self.parser.isInsideFrame)
        } catch let error as YamuxError {
            self.closeSession(error: error, goAway: error.isPeerProtocolError ? .protocolError : nil)
        } catch {
            self.closeSession(
                error: YamuxError(code: .unknownFrameType, message: "undecodable frame from peer (\(error)) (protocol error): session closed"),
                goAway: .protocolError
            )
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.writer.readBatchEnded()
        if !self.streamsNeedingReadComplete.isEmpty {
            swap(&self.streamsNeedingReadComplete, &self.spareStreamList)
            for stream in self.spareStreamList { stream.sessionReadComplete() }
            self.spareStreamList.removeAll(keepingCapacity: true)
        }
        self.writer.flushIfNeeded()
        context.fireChannelReadComplete()
    }

    private func handleHeader(_ header: YamuxFrameHeader) throws {
        switch header.type {
        case .data, .windowUpdate:
            try self.handleStreamHeader(header)
        case .ping:
            self.handlePing(header)
        case .goAway:
            self.handleGoAway(header)
        }
    }

    /// A window update, or the header of a data frame (its payload follows in pieces, see
    /// `handlePayload`; a FIN on it applies once the whole payload is in).
    private func handleStreamHeader(_ header: YamuxFrameHeader) throws {
        let action = self.machine.receivedStreamHeader(header, flushEpoch: self.writer.flushEpoch) { id in
            self.makeStream(id: id, outbound: false)
        }
        switch action {
        case .refuse(let rst):
            self._statistics.streamsRefused += 1
            self.queueControlFrame(rst)
        case .discard:
            self._statistics.framesDiscarded += 1
        case .protocolError(let error):
            throw error
        case .peerReset(let stream):
            self.streamRemoved(stream.streamID)
            stream.reset()
        case .update(let stream, let effects):
            if effects.acknowledged {
                self.timers.cancelOpenTimeout(of: stream.streamID)
                self.startWaitingOpens()
            }
            if effects.payloadFollows {
                if stream.channelClosed {
                    // The application closed this stream; nobody will read this. Abort it.
                    self.sendReset(stream)
                    return
                }
                if effects.firstDataInFlushEpoch { self.writer.countActiveStream() }
            } else {
                if effects.sendWindowGrew, stream.hasFlushedWrites, stream.drainWrites() { self.writer.noteNeedsFlush() }
                self.deliverFIN(effects.fin, to: stream)
            }
            if effects.openedInbound { self.serviceAcceptWaiters() }
        }
    }

    /// A piece of the current data frame's payload.
    private func handlePayload(_ piece: ByteBuffer, last: Bool) throws {
        guard let (_, stream, flags) = self.machine.receivedPayload(last: last) else { return }
        if stream.channelClosed {
            // Closed by the application between two pieces: as for a frame that arrives after
            // the close, nobody will read this. Abort it.
            self.sendReset(stream)
            return
        }
        stream.receive(piece)
        if self.machine.unreadLimitExceeded {
            self.closeSession(error: .unreadLimitExceeded, goAway: .internalError)
        }
        guard last, flags.contains(.fin), self.machine.isRunning else { return }
        switch self.machine.receivedFIN(on: stream) {
        case .ignored: break
        case .protocolError(let error): throw error
        case .halfClosed: self.deliverFIN(.halfClosed, to: stream)
        case .fullyClosed: self.deliverFIN(.fullyClosed, to: stream)
        }
    }

    private func deliverFIN(_ effect: YamuxSessionStateMachine<YamuxStreamChannel>.FINEffect, to stream: YamuxStreamChannel) {
        switch effect {
        case .none:
            return
        case .halfClosed:
            stream.receivedFIN()
        case .fullyClosed:
            self.streamRemoved(stream.streamID)
            stream.receivedFIN()
        }
    }

    private func handleGoAway(_ header: YamuxFrameHeader) {
        switch self.machine.receivedGoAway(code: header.length) {
        case .none:
            return
        case .refuseOpens:
            while let open = self.pendingOpens.popFirst() { open(.failure(YamuxError.remoteGoAway)) }
            let callbacks = self.remoteGoAwayCallbacks
            self.remoteGoAwayCallbacks = []
            for callback in callbacks { callback() }
        case .close(let error):
            self.closeSession(error: error, goAway: nil)
        }
    }

    /// Frames the peer provokes without bound (ping replies, refusal RSTs); a peer that
    /// provokes more than `maxBufferedControlFrames` while not reading ends the session.
    func queueControlFrame(_ header: YamuxFrameHeader) {
        if !self.writer.queueControlFrame(header) {
            self.closeSession(error: .controlFrameFlood, goAway: nil)
        }
    }

    // MARK: streams ending

    /// We reset `stream`: RST to the peer, the channel fails.
    func sendReset(_ stream: YamuxStreamChannel) {
        guard let rst = self.machine.resetStream(stream) else { return }
        self.streamRemoved(stream.streamID)
        self.writer.writeFrame(rst)
        stream.reset()
    }

    /// The machine forgot stream `id`: its timers go, and a SYN slot or the session's last
    /// stream may have gone with it.
    func streamRemoved(_ id: UInt32) {
        self.timers.cancelStreamTimers(of: id)
        self.startWaitingOpens()
        self.closeIfQuiescedAndIdle()
    }

    func makeStream(id: UInt32, outbound: Bool) -> YamuxStreamChannel {
        YamuxStreamChannel(
            streamID: id,
            outbound: outbound,
            session: self,
            parent: self.context!.channel,
            configuration: self.configuration
        )
    }

    var closedError: YamuxError { self.machine.closedError ?? .sessionClosed }

    /// Ends the session: GoAway (if given) is written and flushed before the connection closes;
    /// every stream, waiter and ping fails with `error`.
    func closeSession(error: YamuxError, goAway: YamuxGoAwayCode?) {
        guard let closure = self.machine.close(error: error) else { return }
        self.writer.sessionEnded(error)
        self.timers.cancelAll()
        self.streamsWaitingForConnection.removeAll()
        self.idsWaitingForConnection.removeAll()

        for stream in closure.streams { stream.sessionEnded(error: error) }
        while let open = self.pendingOpens.popFirst() { open(.failure(error)) }
        for ping in self.pings.removeAll() {
            ping.timeout?.cancel()
            ping.callback?(.failure(error))
        }
        self.serviceAcceptWaiters()
        self.runDeferred()
        self.remoteGoAwayCallbacks.removeAll()
        let callbacks = self.closeCallbacks
        self.closeCallbacks.removeAll()
        for callback in callbacks { callback(error) }

        guard let context = self.context else {
            self.writer.failPendingFrames(error)
            return
        }
        if let goAway {
            // The GoAway must reach the peer before the connection closes; if the peer does not
            // take it within the write timeout, close anyway.
            let channel = context.channel
            let written = context.eventLoop.makePromise(of: Void.self)
            self.writer.writeFrame(YamuxFrameHeader(type: .goAway, streamID: 0, length: goAway.rawValue), promise: written)
            self.writer.flushNow()
            let deadline = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(self.configuration.connectionWriteTimeout)) {
                channel.close(promise: nil)
            }
            written.futureResult.whenComplete { _ in
                deadline.cancel()
                channel.close(promise: nil)
            }
        } else {
            if self.writer.needsFlush {
                self.writer.flushNow()
            }
            context.close(promise: nil)
        }
    }
}
