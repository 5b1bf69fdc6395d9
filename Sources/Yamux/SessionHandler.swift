import NIOCore

// Timers and callbacks here capture the handler and its streams strongly,
// never weakly: a weak reference gives its object a side table, after which
// every retain and release of it (several per frame) takes the runtime's slow
// path. Each capture ends when its task runs or is cancelled, and
// `closeSession` and `removeStream` cancel them all.

/// The yamux session: one `ChannelHandler` at the end of the TCP channel's pipeline that owns
/// the stream map, parses frames, runs flow control, pings, keepalive and GoAway, and turns
/// every stream into a child `YamuxStreamChannel`.
///
/// Everything runs on the connection's event loop: no locks, no per-frame tasks. Frames written
/// while handling a read batch are flushed once, in `channelReadComplete`; frames written from
/// a stream's flush are flushed once per flush.
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
    private var context: ChannelHandlerContext?
    private var parser: YamuxFrameParser
    /// The stream the data frame being received belongs to; nil while no payload is expected
    /// or when the rest of the payload is to be discarded (unknown, reset or closed stream).
    private var payloadStream: YamuxStreamChannel?
    /// The header of the data frame whose payload is arriving (its FIN applies after it).
    private var payloadHeader = YamuxFrameHeader(type: .data, streamID: 0, length: 0)

    private enum State {
        case idle
        case active
        case closed(YamuxError)
    }
    private var state: State = .idle

    private var streams: [UInt32: YamuxStreamChannel] = [:]
    private var nextStreamID: UInt32
    private var localGoAway = false
    private var remoteGoAway = false
    /// Set by `ChannelShouldQuiesceEvent`: close once every stream is done.
    private(set) var quiescing = false

    /// Inbound streams waiting for the application (the accept backlog).
    private var backlog = CircularBuffer<YamuxStreamChannel>()
    private var acceptWaiters: [(id: Int, callback: AcceptCallback)] = []
    private var cancelledAcceptTokens = Set<Int>()
    /// Opens waiting for an in-flight SYN slot (at most `acceptBacklog` un-ACKed opens).
    private var pendingOpens = CircularBuffer<StreamCallback>()
    private var inflightSYNs = 0

    private struct PendingPing {
        var start: NIODeadline
        var callback: ((Result<Duration, YamuxError>) -> Void)?
        var timeout: Scheduled<Void>?
    }
    private var pings: [UInt32: PendingPing] = [:]
    private var nextPingID: UInt32 = 0
    private var keepAliveTask: Scheduled<Void>?
    private var keepAlivePingOutstanding = false
    /// The latest measured round-trip time, for auto-tuning and callers.
    private(set) var rtt: TimeAmount?

    private var autoTuneBudget: AutoTuneBudget

    /// Frames provoked by the peer (ping replies, refusals) held while the connection is not
    /// writable; bounded by `maxBufferedControlFrames`.
    private var controlQueue = CircularBuffer<YamuxFrameHeader>()
    private var parentWritable = true
    private var writeTimeout: Scheduled<Void>?

    private(set) var isInReadLoop = false
    private var needsFlush = false
    /// How many gathered frames make an early flush (see ``EarlyFlushPolicy``).
    private var earlyFlush = EarlyFlushPolicy()
    private var streamsNeedingReadComplete: [YamuxStreamChannel] = []
    /// Swapped with `streamsNeedingReadComplete` at the end of each batch, so neither array
    /// is reallocated (copying one and emptying the other would allocate once per batch).
    private var spareStreamList: [YamuxStreamChannel] = []

    /// Counters for tests and metrics.
    private var _statistics = YamuxSessionStatistics()
    var statistics: YamuxSessionStatistics {
        var statistics = self._statistics
        statistics.autoTunedWindow = self.autoTuneBudget.granted
        statistics.bufferedBytes = self.bufferedBytes
        statistics.unreadBytes = self.unreadBytes
        return statistics
    }

    /// Fires once when the session ends, with the reason.
    private var closeCallbacks: [(YamuxError) -> Void] = []
    /// Called once when the peer sends GoAway(0) (see ``onRemoteGoAway(_:)``).
    private var remoteGoAwayCallbacks: [() -> Void] = []

    init(role: YamuxRole, configuration: YamuxConfiguration, liveObjects: YamuxLiveObjects? = nil) {
        self.role = role
        self.configuration = configuration
        self.liveObjects = liveObjects
        liveObjects?.sessionCreated()
        self.nextStreamID = role.firstStreamID
        let maxWindow = configuration.enableWindowAutoTuning
            ? max(configuration.maxStreamWindowSize, configuration.maxAutoTunedStreamWindow)
            : configuration.maxStreamWindowSize
        self.parser = YamuxFrameParser(maxDataLength: maxWindow)
        self.autoTuneBudget = AutoTuneBudget(limit: configuration.maxAutoTunedSessionWindow)
    }

    deinit {
        self.liveObjects?.sessionFreed()
    }

    // MARK: ChannelHandler lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.parentWritable = context.channel.isWritable
        if context.channel.isActive { self.start(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.closeSession(error: .sessionClosed, goAway: nil)
        self.context = nil
        // Whatever was gathered and never flushed will not be now.
        let frames = self.pendingFrames
        self.pendingFrames.removeAll()
        for frame in frames { frame.promise?.fail(ChannelError.ioOnClosedChannel) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.start(context: context)
        context.fireChannelActive()
    }

    /// API calls made before the connection became active; run once it is (or fails).
    private var deferredUntilActive: [() -> Void] = []

    private func runDeferred() {
        let deferred = self.deferredUntilActive
        self.deferredUntilActive.removeAll()
        for call in deferred { call() }
    }

    /// True (and `call` is kept for later) if the session is not active yet.
    private func deferIfIdle(_ call: @escaping () -> Void) -> Bool {
        guard case .idle = self.state else { return false }
        self.deferredUntilActive.append(call)
        return true
    }

    private func start(context: ChannelHandlerContext) {
        guard case .idle = self.state else { return }
        self.state = .active
        defer { self.runDeferred() }
        if self.configuration.enableKeepAlive {
            self.scheduleKeepAlive()
        }
        if self.configuration.enableWindowAutoTuning {
            // One early ping gives auto-tuning a round-trip time to work with.
            self.sendPing(callback: nil)
            self.flushIfNeeded()
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
        self.quiescing = true
        self.goAway()
        for stream in Array(self.streams.values) {
            stream.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        self.closeIfQuiescedAndIdle()
    }

    /// While quiescing: ends the session once no stream's application still
    /// uses it (closed streams may linger for the peer's FIN; they need not).
    private func closeIfQuiescedAndIdle() {
        guard self.quiescing, case .active = self.state else { return }
        if self.backlog.isEmpty && self.streams.values.allSatisfy(\.channelClosed) {
            self.closeSession(error: .sessionClosed, goAway: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        self.parentWritable = writable
        if writable {
            self.writeTimeout?.cancel()
            self.writeTimeout = nil
            while let header = self.controlQueue.popFirst() { self.writeControlFrame(header) }
            self.resumeStreamsWaitingForConnection(context: context)
            self.flushIfNeeded()
        } else if self.writeTimeout == nil, case .active = self.state {
            // hashicorp's connection write timeout: if the peer does not take our bytes for this
            // long, the connection is considered dead.
            self.writeTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(self.configuration.connectionWriteTimeout)) {
                guard !self.parentWritable else { return }
                self.closeSession(error: .connectionWriteTimeout, goAway: nil)
            }
        }
        for stream in self.streams.values { stream.parentWritabilityChanged(writable) }
        context.fireChannelWritabilityChanged()
    }

    // MARK: reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .active = self.state else { return }
        var buffer = Self.unwrapInboundIn(data)
        self.isInReadLoop = true
        do {
            while case .active = self.state, let event = try self.parser.next(from: &buffer) {
                switch event {
                case .header(let header):
                    self.frameProgress &+= 1
                    try self.handleHeader(header)
                case .payload(let piece, let last):
                    if last { self.frameProgress &+= 1 }
                    try self.handlePayload(piece, last: last)
                }
            }
            self.watchPartialFrame(context: context)
        } catch let error as YamuxError {
            self.closeSession(error: error, goAway: error.isPeerProtocolError ? .protocolError : nil)
        } catch {
            self.closeSession(
                error: YamuxError(code: .unknownFrameType, message: "undecodable frame from peer (\(error)) (protocol error): session closed"),
                goAway: .protocolError
            )
        }
    }

    // MARK: the frame read timeout

    /// Counts frame boundaries (headers and payload ends), so a partial frame
    /// can be told from the one seen at the last read.
    private var frameProgress: UInt64 = 0
    /// The partial frame the connection's bytes end in, and since when.
    private var partialFrame: (progress: UInt64, since: NIODeadline)?
    private var frameReadTimer: Scheduled<Void>?

    /// After each read: if the bytes end inside a frame, its rest must come within
    /// `frameReadTimeout`. One clock read per read that ends mid-frame, and one
    /// timer that re-arms itself only while frames stay partial: nothing runs
    /// while the connection is idle between frames.
    private func watchPartialFrame(context: ChannelHandlerContext) {
        guard self.parser.isInsideFrame else {
            self.partialFrame = nil
            return
        }
        if self.partialFrame?.progress != self.frameProgress {
            self.partialFrame = (self.frameProgress, context.eventLoop.now)
        }
        if self.frameReadTimer == nil { self.armFrameReadTimer(context: context) }
    }

    private func armFrameReadTimer(context: ChannelHandlerContext) {
        guard let partial = self.partialFrame else { return }
        let deadline = partial.since + TimeAmount(self.configuration.frameReadTimeout)
        self.frameReadTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.frameReadTimer = nil
            guard case .active = self.state, let partial = self.partialFrame, let context = self.context else { return }
            if context.eventLoop.now >= partial.since + TimeAmount(self.configuration.frameReadTimeout) {
                self.closeSession(error: .frameReadTimeout, goAway: .protocolError)
            } else {
                // Another frame began since: wait for that one.
                self.armFrameReadTimer(context: context)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.endReadLoop()
        context.fireChannelReadComplete()
    }

    private func endReadLoop() {
        self.isInReadLoop = false
        self.earlyFlush.turnEnded()
        if !self.streamsNeedingReadComplete.isEmpty {
            swap(&self.streamsNeedingReadComplete, &self.spareStreamList)
            for stream in self.spareStreamList { stream.sessionReadComplete() }
            self.spareStreamList.removeAll(keepingCapacity: true)
        }
        self.flushIfNeeded()
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
        let id = header.streamID
        let flags = header.flags
        let hasPayload = header.type == .data && header.length > 0
        self.payloadStream = nil
        self.payloadHeader = header

        if flags.contains(.syn) {
            if self.streams[id] != nil { throw YamuxError.duplicateStream(id) }
            let peersParity = self.role == .client ? 0 : 1
            if self.localGoAway || id == 0 || Int(id % 2) != peersParity
                || self.streams.count >= self.configuration.maxConcurrentStreams
                || self.backlog.count >= self.configuration.acceptBacklog
            {
                // Refused (going away, a limit, or a nonsense id): RST, and later frames for
                // the id are discarded as unknown, as hashicorp does.
                self._statistics.streamsRefused += 1
                self.queueControlFrame(YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: id, length: 0))
                return
            }
            let stream = self.makeStream(id: id, outbound: false)
            self.streams[id] = stream
            self.backlog.append(stream)
        }

        guard let stream = self.streams[id] else {
            // Unknown stream (likely one we reset): discard, no error.
            self._statistics.framesDiscarded += 1
            return
        }

        if flags.contains(.rst) {
            // The length of an RST is ignored (libp2p's go-yamux puts an error code there).
            stream.stateMachine.resetStream()
            self.removeStream(stream)
            stream.terminate(error: .streamReset)
            return
        }

        if flags.contains(.ack) { self.streamAcknowledged(stream) }

        if hasPayload {
            guard stream.stateMachine.canReceiveData else { throw YamuxError.unexpectedData(id) }
            guard stream.flow.receive(header.length) else { throw YamuxError.windowExceeded(streamID: id) }
            if stream.channelClosed {
                // The application closed this stream; nobody will read this. Abort it.
                self.sendReset(stream)
                return
            }
            self.payloadStream = stream
            self.earlyFlush.streamCarriedData(stamp: &stream.earlyFlushStamp)
        } else {
            if header.type == .windowUpdate, header.length > 0 {
                stream.flow.grantSend(header.length)
                if stream.hasFlushedWrites, stream.drainWrites() { self.needsFlush = true }
            }
            try self.handleFIN(flags, stream: stream)
        }

        if flags.contains(.syn) { self.serviceAcceptWaiters() }
    }

    /// A piece of the current data frame's payload.
    private func handlePayload(_ piece: ByteBuffer, last: Bool) throws {
        guard let stream = self.payloadStream else { return }
        if last { self.payloadStream = nil }
        // The stream may have been reset since the header: drop the rest.
        guard stream.inSessionMap else {
            self.payloadStream = nil
            return
        }
        if stream.channelClosed {
            // Closed by the application between two pieces: as for a frame that arrives after
            // the close, nobody will read this. Abort it.
            self.payloadStream = nil
            self.sendReset(stream)
            return
        }
        stream.receive(piece)
        self.endSessionIfOverUnreadLimit()
        if last, case .active = self.state { try self.handleFIN(self.payloadHeader.flags, stream: stream) }
    }

    private func handleFIN(_ flags: YamuxFrameFlags, stream: YamuxStreamChannel) throws {
        guard flags.contains(.fin) else { return }
        switch stream.stateMachine.receivedFIN() {
        case .protocolError:
            throw YamuxError.unexpectedFIN(stream.streamID)
        case .halfClosed:
            stream.receivedFIN()
        case .fullyClosed:
            self.removeStream(stream)
            stream.receivedFIN()
        }
    }

    private func streamAcknowledged(_ stream: YamuxStreamChannel) {
        let wasPending = stream.stateMachine.state == .synSent
        stream.stateMachine.receivedACK()
        if wasPending {
            stream.openTimeout?.cancel()
            stream.openTimeout = nil
        }
        self.releaseSYNSlot(stream)
    }

    private func releaseSYNSlot(_ stream: YamuxStreamChannel) {
        guard stream.holdsSYNSlot else { return }
        stream.holdsSYNSlot = false
        self.inflightSYNs -= 1
        self.startPendingOpens()
    }

    private func handlePing(_ header: YamuxFrameHeader) {
        if header.flags.contains(.syn) {
            self._statistics.pingsAnswered += 1
            self.queueControlFrame(YamuxFrameHeader(type: .ping, flags: .ack, streamID: 0, length: header.length))
        } else if header.flags.contains(.ack), let ping = self.pings.removeValue(forKey: header.length) {
            ping.timeout?.cancel()
            self._statistics.pongsReceived += 1
            let elapsed = NIODeadline.now() - ping.start
            self.rtt = elapsed
            ping.callback?(.success(Duration.nanoseconds(elapsed.nanoseconds)))
        }
    }

    private func handleGoAway(_ header: YamuxFrameHeader) {
        switch header.length {
        case YamuxGoAwayCode.normal.rawValue:
            guard !self.remoteGoAway else { return }
            self.remoteGoAway = true
            while let open = self.pendingOpens.popFirst() { open(.failure(YamuxError.remoteGoAway)) }
            let callbacks = self.remoteGoAwayCallbacks
            self.remoteGoAwayCallbacks = []
            for callback in callbacks { callback() }
        case YamuxGoAwayCode.protocolError.rawValue:
            self.closeSession(error: .remoteProtocolError, goAway: nil)
        case YamuxGoAwayCode.internalError.rawValue:
            self.closeSession(error: .remoteInternalError, goAway: nil)
        default:
            self.closeSession(error: .remoteUnknownGoAway(header.length), goAway: nil)
        }
    }

    // MARK: writing

    /// A frame written but not yet handed to the connection: frames are gathered until the
    /// flush, then written as few buffers as possible (see `writePendingFrames`).
    private struct PendingFrame {
        var header: YamuxFrameHeader
        /// A data payload (empty for header-only frames).
        var payload: ByteBuffer?
        var promise: EventLoopPromise<Void>?
    }
    private var pendingFrames: [PendingFrame] = []
    /// Swapped with `pendingFrames` while they are written, so frames written meanwhile (a
    /// promise or a writability change can call back into the session) are neither lost nor
    /// reordered, and neither array is reallocated.
    private var framesBeingWritten: [PendingFrame] = []
    private var writingFrames = false
    /// Where headers and small payloads are gathered at a flush; reused while the connection
    /// holds none of its bytes any more.
    private var gatherBuffer = ByteBuffer()
    /// Payloads up to this size are copied behind their header: a copy this small costs less
    /// than a buffer of its own, a promise and an iovec.
    static let copyPayloadLimit = 1024
    /// A flush has been scheduled for the end of this turn of the event loop.
    private var flushScheduled = false

    /// Writes a header-only frame (not flushed).
    func writeFrame(_ header: YamuxFrameHeader, promise: EventLoopPromise<Void>? = nil) {
        guard self.context != nil else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        if case .closed(let error) = self.state, header.type != .goAway {
            // The connection is closing: a frame gathered now would never be flushed (and its
            // promise never completed). Only the closing GoAway still goes out.
            promise?.fail(error)
            return
        }
        self.pendingFrames.append(PendingFrame(header: header, payload: nil, promise: promise))
        self.needsFlush = true
    }

    /// Writes a data frame (not flushed). The payload is not copied unless it is small.
    func writeData(streamID: UInt32, payload: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard case .active = self.state, self.context != nil else {
            promise?.fail(YamuxError.sessionClosed)
            return
        }
        let header = YamuxFrameHeader(type: .data, streamID: streamID, length: UInt32(payload.readableBytes))
        self.pendingFrames.append(PendingFrame(header: header, payload: payload, promise: promise))
        self.needsFlush = true
        self.gatheredDataBytes += payload.readableBytes
        if self.gatheredDataBytes >= Self.maxGatheredDataBytes, let context = self.context {
            self.flushNow(context: context)
        }
    }

    /// Hands the pending frames to the connection: every header and every small payload is
    /// copied, in order, into one buffer, and the connection gets slices of it with the large
    /// payloads in between (one gathering write, no allocation per frame: before this, each
    /// frame cost a 12-byte buffer of its own). A slice ends after each frame that carries a
    /// promise, so every promise completes when its own frame is written.
    private func writePendingFrames(context: ChannelHandlerContext) {
        guard !self.pendingFrames.isEmpty else { return }
        var size = 0
        for frame in self.pendingFrames {
            size += YamuxFrameHeader.size
            if let payload = frame.payload, payload.readableBytes <= Self.copyPayloadLimit { size += payload.readableBytes }
        }
        // Reused when the connection has written (and dropped) every slice of the last batch;
        // `clear()` allocates afresh otherwise. Very large batches are not kept around.
        if self.gatherBuffer.capacity > 64 * 1024 { self.gatherBuffer = context.channel.allocator.buffer(capacity: size) }
        self.gatherBuffer.clear()
        self.gatherBuffer.reserveCapacity(size)
        swap(&self.pendingFrames, &self.framesBeingWritten)
        // First every byte into the buffer (writing into it after slicing would copy it).
        for frame in self.framesBeingWritten {
            frame.header.write(to: &self.gatherBuffer)
            if let payload = frame.payload, payload.readableBytes <= Self.copyPayloadLimit {
                self.gatherBuffer.writeImmutableBuffer(payload)
            }
        }
        // Then the slices, large payloads in between. Sliced from a local copy: a nested
        // flush may reuse `gatherBuffer` meanwhile.
        let gathered = self.gatherBuffer
        var sliceStart = 0
        var end = 0
        for frame in self.framesBeingWritten {
            end += YamuxFrameHeader.size
            let large = frame.payload.map { $0.readableBytes > Self.copyPayloadLimit } ?? false
            if let payload = frame.payload, !large { end += payload.readableBytes }
            if large || frame.promise != nil {
                let slice = gathered.getSlice(at: sliceStart, length: end - sliceStart)!
                sliceStart = end
                if large {
                    context.write(Self.wrapOutboundOut(slice), promise: nil)
                    context.write(Self.wrapOutboundOut(frame.payload!), promise: frame.promise)
                } else {
                    context.write(Self.wrapOutboundOut(slice), promise: frame.promise)
                }
            }
        }
        if end > sliceStart {
            context.write(Self.wrapOutboundOut(gathered.getSlice(at: sliceStart, length: end - sliceStart)!), promise: nil)
        }
        self.framesBeingWritten.removeAll(keepingCapacity: true)
    }

    /// Writes a control frame to the connection at once, not gathered for the flush: so it
    /// counts against the connection's writability straight away, and a peer flooding pings
    /// within one read batch makes the connection unwritable (and its replies queue, up to
    /// the limit) in that batch. Gathered, a whole batch of replies would pass as writable.
    /// Ping replies and refusals need no order with respect to other frames.
    private func writeControlFrame(_ header: YamuxFrameHeader) {
        guard let context = self.context else { return }
        var buffer = context.channel.allocator.buffer(capacity: YamuxFrameHeader.size)
        header.write(to: &buffer)
        context.write(Self.wrapOutboundOut(buffer), promise: nil)
        self.needsFlush = true
    }

    /// Frames the peer provokes without bound (ping replies, refusal RSTs): written at once
    /// while the connection is writable, held (up to the limit) while it is not.
    private func queueControlFrame(_ header: YamuxFrameHeader) {
        if self.parentWritable && self.controlQueue.isEmpty {
            self.writeControlFrame(header)
            return
        }
        self.controlQueue.append(header)
        self._statistics.maxBufferedControlFrames = max(self._statistics.maxBufferedControlFrames, self.controlQueue.count)
        if self.controlQueue.count > self.configuration.maxBufferedControlFrames {
            self.closeSession(error: .controlFrameFlood, goAway: nil)
        }
    }

    /// Flushes now, unless inside a read batch (`channelReadComplete` flushes once for it).
    func flushIfNeeded() {
        guard !self.isInReadLoop, self.needsFlush, let context = self.context else { return }
        self.flushNow(context: context)
    }

    private func flushNow(context: ChannelHandlerContext) {
        // Writing to the connection can call back into the session (a failed write's promise,
        // a writability change); frames written then are written by the loop below.
        guard !self.writingFrames else { return }
        self.writingFrames = true
        self.gatheredDataBytes = 0
        repeat {
            self.needsFlush = false
            self.writePendingFrames(context: context)
        } while !self.pendingFrames.isEmpty
        self.writingFrames = false
        context.flush()
    }

    /// Flushes at the end of this turn of the event loop rather than now, so that every stream
    /// that writes in this turn (many RPC replies, many bulk streams) shares one flush and one
    /// `writev`, instead of one each. Inside a read batch, `channelReadComplete` flushes. But
    /// once the early-flush threshold is reached (half the busy streams, at most
    /// `maxFramesPerFlush`; ``EarlyFlushPolicy``) it flushes now, unless `flushesEarly` is off:
    /// the peer can start on those frames while the streams still to be served this turn write
    /// theirs.
    func flushSoon() {
        guard self.needsFlush, let context = self.context else { return }
        if self.configuration.flushesEarly,
            self.pendingFrames.count >= self.earlyFlush.threshold(limit: self.configuration.maxFramesPerFlush)
        {
            self.flushNow(context: context)
            return
        }
        guard !self.isInReadLoop, !self.flushScheduled else { return }
        self.flushScheduled = true
        // A strong capture: the closure's context is then `self` itself, no allocation (a
        // weak one needs a box). The handler lives until the task has run.
        context.eventLoop.assumeIsolated().execute { [self] in
            self.flushScheduled = false
            self.earlyFlush.turnEnded()
            self.flushIfNeeded()
        }
    }

    // MARK: the connection's share

    /// Streams with data that waited for the connection to become writable.
    private var streamsWaitingForConnection: [YamuxStreamChannel] = []
    /// Data bytes gathered for the next flush.
    private var gatheredDataBytes = 0
    /// Gathered data past this is flushed at once, so the connection's writability
    /// (and so every stream's) reflects it while a long batch of writes goes on.
    static let maxGatheredDataBytes = 1024 * 1024

    /// Whether streams may hand data frames to the connection now. While the
    /// connection is not writable (the peer does not read it fast enough), data stays
    /// in its streams, where it counts against their writability and the session's
    /// buffer limit: what the connection holds stays within its write buffer's
    /// watermark plus one gathered batch, however many streams have window to spend.
    var connectionTakesData: Bool { self.parentWritable }

    func streamWaitsForConnection(_ stream: YamuxStreamChannel) {
        guard !stream.waitsForConnection else { return }
        stream.waitsForConnection = true
        self.streamsWaitingForConnection.append(stream)
    }

    /// The connection is writable again: the waiting streams send what they can. On the
    /// next turn of the loop, as this may run inside a flush that a stream's own
    /// writes started.
    private func resumeStreamsWaitingForConnection(context: ChannelHandlerContext) {
        guard !self.streamsWaitingForConnection.isEmpty, !self.resumeScheduled else { return }
        self.resumeScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.resumeScheduled = false
            let waiting = self.streamsWaitingForConnection
            self.streamsWaitingForConnection.removeAll(keepingCapacity: true)
            for stream in waiting {
                stream.waitsForConnection = false
                guard case .active = self.state, stream.inSessionMap, stream.hasFlushedWrites else { continue }
                if stream.drainWrites() { self.needsFlush = true }
            }
            self.flushIfNeeded()
        }
    }
    private var resumeScheduled = false

    // MARK: buffered bytes

    /// Bytes the session's streams hold: received and not yet taken by their
    /// application, or written and not yet sent.
    private var bufferedBytes = 0
    /// Of those, the bytes received and not yet taken by the application.
    private var unreadBytes = 0

    /// A stream's written-and-not-yet-sent bytes changed by `delta`. Counted, never
    /// refused: what an application writes is memory it allocated itself, and
    /// `NIOAsyncChannel`'s writer legitimately runs ahead of writability while the loop
    /// is busy (its writes queue on the loop before the writability change reaches it).
    /// Writers that respect writability keep it to a watermark per stream.
    func streamBufferedBytesChanged(by delta: Int) {
        self.bufferedBytes += delta
        guard delta > 0, self.bufferedBytes > self._statistics.maxBufferedBytes else { return }
        self._statistics.maxBufferedBytes = self.bufferedBytes
        self.liveObjects?.sessionBufferedBytesReached(self.bufferedBytes)
    }

    /// A stream's received-and-unread bytes changed by `delta`.
    func streamUnreadBytesChanged(by delta: Int) {
        self.unreadBytes += delta
        self.streamBufferedBytesChanged(by: delta)
    }

    /// Data the peer sent within its windows took the session past
    /// `maxSessionUnreadBytes`: the application reads too few of the streams the peer
    /// fills. The session ends, so memory does not grow with the number of streams.
    private func endSessionIfOverUnreadLimit() {
        guard self.unreadBytes > self.configuration.maxSessionUnreadBytes, case .active = self.state else { return }
        self.closeSession(error: .unreadLimitExceeded, goAway: .internalError)
    }

    // MARK: stream callbacks

    func streamHasWritesToSend(_ stream: YamuxStreamChannel) {
        guard case .active = self.state else {
            stream.terminate(error: self.closedError)
            return
        }
        guard stream.inSessionMap else { return }
        self.earlyFlush.streamCarriedData(stamp: &stream.earlyFlushStamp)
        if stream.drainWrites() { self.flushSoon() }
    }

    func streamNeedsReadComplete(_ stream: YamuxStreamChannel) {
        self.streamsNeedingReadComplete.append(stream)
    }

    /// Data reached the stream's consumer: credit the peer if half the window is free.
    func streamConsumedData(_ stream: YamuxStreamChannel) {
        guard case .active = self.state, stream.inSessionMap, !stream.stateMachine.remoteHasClosed,
            stream.stateMachine.state != .synReceived
        else { return }
        let autoTune = self.configuration.enableWindowAutoTuning ? self.configuration.maxAutoTunedStreamWindow : nil
        if let delta = stream.flow.windowUpdate(
            force: false,
            now: .now(),
            rtt: self.rtt,
            budget: &self.autoTuneBudget,
            maxAutoTuned: autoTune
        ) {
            self._statistics.windowUpdatesSent += 1
            self.writeFrame(YamuxFrameHeader(type: .windowUpdate, streamID: stream.streamID, length: delta))
            self.flushIfNeeded()
        }
    }

    /// Writes the FIN (as a window update, as hashicorp does) after the stream's queued data.
    func sendFIN(_ stream: YamuxStreamChannel, promise: EventLoopPromise<Void>?) {
        guard let fullyClosed = stream.stateMachine.sentFIN() else {
            promise?.succeed(())
            return
        }
        self.writeFrame(YamuxFrameHeader(type: .windowUpdate, flags: .fin, streamID: stream.streamID, length: 0), promise: promise)
        if fullyClosed {
            self.removeStream(stream)
        }
    }

    /// The application closed the channel; the stream lingers until the peer closes its side,
    /// for at most `streamCloseTimeout`.
    func streamClosedByApplication(_ stream: YamuxStreamChannel) {
        if self.quiescing, let context = self.context {
            // The stream counts as closed once its close completes, after this
            // call returns: look again on the next turn of the loop.
            context.eventLoop.assumeIsolated().execute { self.closeIfQuiescedAndIdle() }
        }
        guard stream.inSessionMap, let context = self.context else { return }
        stream.closeTimeout?.cancel()
        stream.closeTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(self.configuration.streamCloseTimeout)) {
            guard stream.inSessionMap else { return }
            self.sendReset(stream)
            self.flushIfNeeded()
        }
    }

    /// Aborts the stream: RST to the peer, the channel fails.
    func resetStream(_ stream: YamuxStreamChannel) {
        guard stream.inSessionMap else {
            stream.terminate(error: .streamReset)
            return
        }
        self.sendReset(stream)
        self.flushIfNeeded()
    }

    private func sendReset(_ stream: YamuxStreamChannel) {
        stream.stateMachine.resetStream()
        self.removeStream(stream)
        self.writeFrame(YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: stream.streamID, length: 0))
        stream.terminate(error: .streamReset)
    }

    private func removeStream(_ stream: YamuxStreamChannel) {
        guard stream.inSessionMap else { return }
        stream.inSessionMap = false
        self.streams.removeValue(forKey: stream.streamID)
        self.autoTuneBudget.giveBack(stream.flow.autoTuneGrowth)
        stream.cancelTimers()
        if let index = self.backlog.firstIndex(where: { $0 === stream }) {
            self.backlog.remove(at: index)
        }
        self.releaseSYNSlot(stream)
        self.closeIfQuiescedAndIdle()
    }

    private func makeStream(id: UInt32, outbound: Bool) -> YamuxStreamChannel {
        YamuxStreamChannel(
            streamID: id,
            outbound: outbound,
            session: self,
            parent: self.context!.channel,
            configuration: self.configuration
        )
    }

    private var closedError: YamuxError {
        if case .closed(let error) = self.state { return error }
        return .sessionClosed
    }

    // MARK: API entry points (all on the event loop)

    /// Opens a stream: SYN goes out now (or once an in-flight SYN slot frees up).
    func openStream(_ callback: @escaping StreamCallback) {
        if self.deferIfIdle({ self.openStream(callback) }) { return }
        guard case .active = self.state else {
            callback(.failure(self.closedError))
            return
        }
        if self.remoteGoAway { return callback(.failure(YamuxError.remoteGoAway)) }
        if self.localGoAway { return callback(.failure(YamuxError.localGoAway)) }
        if self.inflightSYNs >= self.configuration.acceptBacklog {
            self.pendingOpens.append(callback)
            return
        }
        self.performOpen(callback)
    }

    private func startPendingOpens() {
        while self.inflightSYNs < self.configuration.acceptBacklog, let open = self.pendingOpens.popFirst() {
            self.performOpen(open)
        }
    }

    private func performOpen(_ callback: StreamCallback) {
        guard case .active = self.state, let context = self.context else {
            return callback(.failure(self.closedError))
        }
        if self.remoteGoAway { return callback(.failure(YamuxError.remoteGoAway)) }
        guard self.streams.count < self.configuration.maxConcurrentStreams else {
            return callback(.failure(YamuxError.tooManyStreams))
        }
        guard self.nextStreamID < UInt32.max - 1 else { return callback(.failure(YamuxError.streamsExhausted)) }
        let id = self.nextStreamID
        self.nextStreamID += 2
        let stream = self.makeStream(id: id, outbound: true)
        self.streams[id] = stream
        self.inflightSYNs += 1
        stream.openTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(self.configuration.streamOpenTimeout)) {
            guard stream.stateMachine.state == .synSent, stream.inSessionMap else { return }
            // hashicorp closes the whole session when a stream is not acknowledged in time.
            self.closeSession(error: .streamOpenTimeout, goAway: nil)
        }
        let delta = self.openingWindowDelta(for: stream)
        self.writeFrame(YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: id, length: delta))
        callback(.success(stream))
        stream.activate()
        self.flushIfNeeded()
    }

    /// Hands the next inbound stream to the application (and ACKs it), or waits for one.
    /// Returns a token for `cancelAccept`.
    func accept(token id: Int, _ callback: @escaping AcceptCallback) {
        if self.cancelledAcceptTokens.remove(id) != nil {
            callback(.failure(CancellationError()))
            return
        }
        self.acceptWaiters.append((id, callback))
        self.serviceAcceptWaiters()
    }

    func cancelAccept(_ token: Int) {
        guard let index = self.acceptWaiters.firstIndex(where: { $0.id == token }) else {
            // The cancellation overtook the accept itself.
            self.cancelledAcceptTokens.insert(token)
            return
        }
        let waiter = self.acceptWaiters.remove(at: index)
        waiter.callback(.failure(CancellationError()))
    }

    /// The window delta a SYN or ACK carries: what the stream's receive
    /// window holds beyond the initial 256 KiB.
    private func openingWindowDelta(for stream: YamuxStreamChannel) -> UInt32 {
        stream.flow.windowUpdate(force: true, now: .now(), rtt: nil, budget: &self.autoTuneBudget, maxAutoTuned: nil)!
    }

    private func serviceAcceptWaiters() {
        while !self.acceptWaiters.isEmpty {
            if let stream = self.backlog.popFirst() {
                let waiter = self.acceptWaiters.removeFirst()
                // Exactly one ACK per inbound stream, sent when the application takes it.
                let delta = self.openingWindowDelta(for: stream)
                stream.stateMachine.sentACK()
                self.writeFrame(YamuxFrameHeader(type: .windowUpdate, flags: .ack, streamID: stream.streamID, length: delta))
                waiter.callback(.success(stream))
                stream.activate()
                self.flushIfNeeded()
            } else if case .closed(let error) = self.state {
                let waiters = self.acceptWaiters
                self.acceptWaiters.removeAll()
                for waiter in waiters {
                    switch error.code {
                    case .sessionClosed, .connectionClosed, .remoteGoAway: waiter.callback(.success(nil))
                    default: waiter.callback(.failure(error))
                    }
                }
            } else if self.localGoAway {
                // We refuse new streams, so once the backlog is drained there will be no more.
                let waiters = self.acceptWaiters
                self.acceptWaiters.removeAll()
                for waiter in waiters { waiter.callback(.success(nil)) }
            } else {
                return
            }
        }
    }

    /// Sends a ping; the callback gets the round-trip time, or a timeout after
    /// `connectionWriteTimeout`.
    func sendPing(callback: ((Result<Duration, YamuxError>) -> Void)?) {
        if self.deferIfIdle({ self.sendPing(callback: callback); self.flushIfNeeded() }) { return }
        guard case .active = self.state, let context = self.context else {
            callback?(.failure(self.closedError))
            return
        }
        let id = self.nextPingID
        self.nextPingID &+= 1
        let timeout = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(self.configuration.connectionWriteTimeout)) {
            guard let ping = self.pings.removeValue(forKey: id) else { return }
            ping.callback?(.failure(.pingTimeout))
        }
        self.pings[id] = PendingPing(start: .now(), callback: callback, timeout: timeout)
        self.writeFrame(YamuxFrameHeader(type: .ping, flags: .syn, streamID: 0, length: id))
    }

    private func scheduleKeepAlive() {
        guard let context = self.context else { return }
        self.keepAliveTask = context.eventLoop.assumeIsolated().scheduleTask(
            in: TimeAmount(self.configuration.keepAliveInterval)
        ) {
            self.keepAlive()
            if case .active = self.state { self.scheduleKeepAlive() }
        }
    }

    private func keepAlive() {
        guard case .active = self.state, !self.keepAlivePingOutstanding else { return }
        self.keepAlivePingOutstanding = true
        self._statistics.keepAlivesSent += 1
        self.sendPing { result in
            self.keepAlivePingOutstanding = false
            if case .failure(let error) = result, error.code == .pingTimeout {
                self.closeSession(error: .keepAliveTimeout, goAway: nil)
            }
        }
        self.flushIfNeeded()
    }

    /// GoAway(0): the peer may open no more streams; open ones go on.
    func goAway() {
        if self.deferIfIdle({ self.goAway() }) { return }
        guard case .active = self.state else { return }
        if !self.localGoAway {
            self.localGoAway = true
            self.writeFrame(YamuxFrameHeader(type: .goAway, streamID: 0, length: YamuxGoAwayCode.normal.rawValue))
            self.flushIfNeeded()
        }
        self.serviceAcceptWaiters()
    }

    var numberOfStreams: Int { self.streams.count }

    /// A description of the session's state, for debugging hangs.
    var debugState: String {
        var lines = ["session \(self.role) state=\(self.state) streams=\(self.streams.count) backlog=\(self.backlog.count) waiters=\(self.acceptWaiters.count) inflightSYNs=\(self.inflightSYNs) pendingOpens=\(self.pendingOpens.count) parentWritable=\(self.parentWritable) inReadLoop=\(self.isInReadLoop) needsFlush=\(self.needsFlush)"]
        for stream in self.streams.values.sorted(by: { $0.streamID < $1.streamID }) {
            lines.append("  " + stream.debugState)
        }
        return lines.joined(separator: "\n")
    }
    var isClosed: Bool {
        if case .closed = self.state { return true }
        return false
    }

    func onClose(_ callback: @escaping (YamuxError) -> Void) {
        if case .closed(let error) = self.state {
            callback(error)
        } else {
            self.closeCallbacks.append(callback)
        }
    }

    /// Registers `callback` for the peer's GoAway(0); runs it at once if one
    /// already came. Dropped unrun if the session ends without one.
    func onRemoteGoAway(_ callback: @escaping () -> Void) {
        if self.remoteGoAway {
            callback()
        } else if case .closed = self.state {
            return
        } else {
            self.remoteGoAwayCallbacks.append(callback)
        }
    }

    /// Ends the session: GoAway (if given) is written and flushed before the connection closes;
    /// every stream, waiter and ping fails with `error`.
    func closeSession(error: YamuxError, goAway: YamuxGoAwayCode?) {
        switch self.state {
        case .closed: return
        case .idle, .active: break
        }
        self.state = .closed(error)
        self.keepAliveTask?.cancel()
        self.keepAliveTask = nil
        self.writeTimeout?.cancel()
        self.writeTimeout = nil
        self.frameReadTimer?.cancel()
        self.frameReadTimer = nil
        self.controlQueue.removeAll()
        self.streamsWaitingForConnection.removeAll()
        // The stream of a data frame cut short by the close: held here, it would hold
        // this handler back through its own reference to the session.
        self.payloadStream = nil

        let streams = Array(self.streams.values)
        for stream in streams {
            self.removeStream(stream)
        }
        self.backlog.removeAll()
        for stream in streams { stream.terminate(error: error) }
        while let open = self.pendingOpens.popFirst() { open(.failure(error)) }
        let pings = self.pings
        self.pings.removeAll()
        for ping in pings.values {
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
            let frames = self.pendingFrames
            self.pendingFrames.removeAll()
            for frame in frames { frame.promise?.fail(error) }
            return
        }
        if let goAway {
            // The GoAway must reach the peer before the connection closes; if the peer does not
            // take it within the write timeout, close anyway.
            let channel = context.channel
            let written = context.eventLoop.makePromise(of: Void.self)
            self.writeFrame(YamuxFrameHeader(type: .goAway, streamID: 0, length: goAway.rawValue), promise: written)
            self.flushNow(context: context)
            let deadline = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(self.configuration.connectionWriteTimeout)) {
                channel.close(promise: nil)
            }
            written.futureResult.whenComplete { _ in
                deadline.cancel()
                channel.close(promise: nil)
            }
        } else {
            if self.needsFlush {
                self.flushNow(context: context)
            }
            context.close(promise: nil)
        }
    }
}
