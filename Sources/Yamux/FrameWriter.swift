import NIOCore

/// Everything a session writes goes through here: frames are gathered and handed to the
/// connection as few buffers as possible, flushed once per read batch or turn of the event
/// loop (or earlier, by ``EarlyFlushPolicy``), and the control frames the peer provokes are
/// held, up to a limit, while the connection is not writable.
///
/// A class, not a struct inside the handler: writing to the connection calls back into the
/// session (a promise completes, writability changes), which writes more frames while a
/// flush is under way.
final class YamuxFrameWriter {
    /// A frame written but not yet handed to the connection.
    private struct PendingFrame {
        var header: YamuxFrameHeader
        /// A data payload (nil for header-only frames).
        var payload: ByteBuffer?
        var promise: EventLoopPromise<Void>?
    }

    /// Payloads up to this size are copied behind their header: a copy this small costs less
    /// than a buffer of its own, a promise and an iovec.
    static let copyPayloadLimit = 1024
    /// Gathered data past this is flushed at once, so the connection's writability (and so
    /// every stream's) reflects it while a long batch of writes goes on.
    static let maxGatheredDataBytes = 1024 * 1024

    private let configuration: YamuxConfiguration
    /// The session's place in the connection's pipeline; nil once the handler is removed.
    var context: ChannelHandlerContext?

    private var pendingFrames: [PendingFrame] = []
    /// Swapped with `pendingFrames` while they are written, so frames written meanwhile are
    /// neither lost nor reordered, and neither array is reallocated.
    private var framesBeingWritten: [PendingFrame] = []
    private var writingFrames = false
    /// Where headers and small payloads are gathered at a flush; reused while the connection
    /// holds none of its bytes any more.
    private var gatherBuffer = ByteBuffer()
    /// Data bytes gathered for the next flush.
    private var gatheredDataBytes = 0
    private(set) var needsFlush = false
    /// A flush has been scheduled for the end of this turn of the event loop.
    private var flushScheduled = false
    /// Inside the session's read batch: `readBatchEnded` flushes once for all of it.
    private(set) var isInReadBatch = false
    /// How many gathered frames make an early flush.
    private(set) var earlyFlush = EarlyFlushPolicy()

    /// Frames provoked by the peer (ping replies, refusals) held while the connection is not
    /// writable; bounded by `maxBufferedControlFrames`.
    private var controlQueue = CircularBuffer<YamuxFrameHeader>()
    /// The most control frames ever held.
    private(set) var maxQueuedControlFrames = 0
    private(set) var connectionWritable = true
    /// Set when the session ends: only its closing GoAway may still be written.
    private var sessionEnd: YamuxError?

    init(configuration: YamuxConfiguration) {
        self.configuration = configuration
    }

    // MARK: gathering

    /// Writes a header-only frame (not flushed).
    func writeFrame(_ header: YamuxFrameHeader, promise: EventLoopPromise<Void>? = nil) {
        guard self.context != nil else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        if let error = self.sessionEnd, header.type != .goAway {
            // The connection is closing: a frame gathered now would never be flushed (and its
            // promise never completed).
            promise?.fail(error)
            return
        }
        self.pendingFrames.append(PendingFrame(header: header, payload: nil, promise: promise))
        self.needsFlush = true
    }

    /// Writes a data frame (not flushed). The payload is not copied unless it is small.
    func writeData(streamID: UInt32, payload: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard self.sessionEnd == nil, let context = self.context else {
            promise?.fail(YamuxError.sessionClosed)
            return
        }
        let header = YamuxFrameHeader(type: .data, streamID: streamID, length: UInt32(payload.readableBytes))
        self.pendingFrames.append(PendingFrame(header: header, payload: payload, promise: promise))
        self.needsFlush = true
        self.gatheredDataBytes += payload.readableBytes
        if self.gatheredDataBytes >= Self.maxGatheredDataBytes {
            self.flushNow(context: context)
        }
    }

    /// Frames were handed to the connection directly (or gathered elsewhere): flush them.
    func noteNeedsFlush() {
        self.needsFlush = true
    }

    /// The session ended with `error`: no frame but its GoAway is taken from now on, and the
    /// held control frames are dropped.
    func sessionEnded(_ error: YamuxError) {
        self.sessionEnd = error
        self.controlQueue.removeAll()
    }

    /// Fails what was gathered and will never be flushed now (the handler is gone).
    func failPendingFrames(_ error: any Error) {
        let frames = self.pendingFrames
        self.pendingFrames.removeAll()
        for frame in frames { frame.promise?.fail(error) }
    }

    // MARK: control frames

    /// Frames the peer provokes without bound (ping replies, refusal RSTs): written at once
    /// while the connection is writable, held while it is not. False when more than
    /// `maxBufferedControlFrames` are held: a peer that floods us without reading, whose
    /// session must end.
    func queueControlFrame(_ header: YamuxFrameHeader) -> Bool {
        if self.connectionWritable && self.controlQueue.isEmpty {
            self.writeControlFrame(header)
            return true
        }
        self.controlQueue.append(header)
        self.maxQueuedControlFrames = max(self.maxQueuedControlFrames, self.controlQueue.count)
        return self.controlQueue.count <= self.configuration.maxBufferedControlFrames
    }

    /// Writes a control frame to the connection at once, not gathered for the flush: so it
    /// counts against the connection's writability straight away, and a peer flooding pings
    /// within one read batch makes the connection unwritable (and its replies queue, up to the
    /// limit) in that batch. Gathered, a whole batch of replies would pass as writable. Ping
    /// replies and refusals need no order with respect to other frames.
    private func writeControlFrame(_ header: YamuxFrameHeader) {
        guard let context = self.context else { return }
        var buffer = context.channel.allocator.buffer(capacity: YamuxFrameHeader.size)
        header.write(to: &buffer)
        context.write(NIOAny(buffer), promise: nil)
        self.needsFlush = true
    }

    /// The connection's writability changed; once writable, the held control frames go first.
    func connectionWritabilityChanged(_ writable: Bool) {
        self.connectionWritable = writable
        guard writable else { return }
        while let header = self.controlQueue.popFirst() { self.writeControlFrame(header) }
    }

    // MARK: flushing

    /// The session begins handling a read: flushes wait for its end.
    func readBatchStarted() {
        self.isInReadBatch = true
    }

    /// The read batch is over (one turn, for the early-flush policy). The caller flushes
    /// (``flushIfNeeded()``) once its streams have seen the batch end.
    func readBatchEnded() {
        self.isInReadBatch = false
        self.earlyFlush.turnEnded()
    }

    /// The epoch streams count their data in (see ``EarlyFlushPolicy``).
    var flushEpoch: UInt64 { self.earlyFlush.epoch }

    /// A stream carried data for the first time in this epoch.
    func countActiveStream() {
        self.earlyFlush.countActiveStream()
    }

    /// Flushes now, unless inside a read batch (its end flushes once for it).
    func flushIfNeeded() {
        guard !self.isInReadBatch, self.needsFlush, let context = self.context else { return }
        self.flushNow(context: context)
    }

    /// Flushes whatever is gathered, even inside a read batch.
    func flushNow() {
        guard let context = self.context else { return }
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
    /// `writev`, instead of one each. Inside a read batch, its end flushes. But once the
    /// early-flush threshold is reached (half the busy streams, at most `maxFramesPerFlush`;
    /// ``EarlyFlushPolicy``) it flushes now, unless `flushesEarly` is off: the peer can start
    /// on those frames while the streams still to be served this turn write theirs.
    func flushSoon() {
        guard self.needsFlush, let context = self.context else { return }
        if self.configuration.flushesEarly,
            self.pendingFrames.count >= self.earlyFlush.threshold(limit: self.configuration.maxFramesPerFlush)
        {
            self.flushNow(context: context)
            return
        }
        guard !self.isInReadBatch, !self.flushScheduled else { return }
        self.flushScheduled = true
        // A strong capture: the closure's context is then `self` itself, no allocation (a
        // weak one needs a box). The writer lives until the task has run.
        context.eventLoop.assumeIsolated().execute { [self] in
            self.flushScheduled = false
            self.earlyFlush.turnEnded()
            self.flushIfNeeded()
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
                    context.write(NIOAny(slice), promise: nil)
                    context.write(NIOAny(frame.payload!), promise: frame.promise)
                } else {
                    context.write(NIOAny(slice), promise: frame.promise)
                }
            }
        }
        if end > sliceStart {
            context.write(NIOAny(gathered.getSlice(at: sliceStart, length: end - sliceStart)!), promise: nil)
        }
        self.framesBeingWritten.removeAll(keepingCapacity: true)
    }

    var debugState: String {
        "pendingFrames=\(self.pendingFrames.count) needsFlush=\(self.needsFlush) inReadBatch=\(self.isInReadBatch) connectionWritable=\(self.connectionWritable) controlQueue=\(self.controlQueue.count)"
    }
}
