import NIOCore
import Synchronization

/// Ask a yamux stream channel to abort with RST: `channel.triggerUserOutboundEvent(YamuxStreamResetEvent())`.
public struct YamuxStreamResetEvent: Sendable, Hashable {
    /// The event; it carries nothing.
    public init() {}
}

/// One yamux stream, as a child `Channel` of the TCP channel (the model is swift-nio-http2's
/// `HTTP2StreamChannel`).
///
/// Inbound: data frames are buffered here and handed to the pipeline only when it asks with
/// `read()`; the session credits the peer's window only for bytes that reached the pipeline, so
/// a slow consumer throttles only its own sender. A FIN from the peer becomes
/// `ChannelEvent.inputClosed` after the buffered data.
///
/// Outbound: writes queue here; on flush they are cut to the peer's window and written to the
/// parent as data frames (header and payload as separate buffers, never copied), while the
/// parent is writable: otherwise they wait here until it is. The channel is writable while its
/// queued bytes stay under the watermark and the parent is writable.
/// `close(mode: .output)` sends FIN after the queued data. `close(mode: .all)` ends the channel
/// for the application at once but closes the stream gracefully: queued data and a FIN still go
/// out, and the stream is reset if the peer does not close its side within
/// `streamCloseTimeout`. Reset with `YamuxStreamResetEvent`.
///
/// The channel holds no protocol state: stream state, windows and SYN slots are the session's
/// (``YamuxSessionStateMachine``), and the channel asks its session whenever the protocol has
/// a say (how much it may send, whether its FIN goes out, what its reads credit the peer).
final class YamuxStreamChannel: Channel, ChannelCore, YamuxStreamIdentity, @unchecked Sendable {
    // @unchecked Sendable: every mutable property below is touched only on `eventLoop` (the
    // parent's loop); the few properties other threads may read (`isActive`, `isWritable`) are
    // atomics, and the rest of the `Channel` API hops to the loop like NIO's own channels do.

    let streamID: UInt32
    let isOutbound: Bool
    let session: YamuxSessionHandler
    let eventLoop: any EventLoop
    let allocator: ByteBufferAllocator
    private let parentChannel: any Channel
    private let closePromise: EventLoopPromise<Void>
    private var _pipeline: ChannelPipeline!

    private let _isActive = Atomic<Bool>(false)
    private let _isWritable = Atomic<Bool>(true)

    // MARK: channel state
    private var activated = false
    /// The channel has become inactive (app close, reset, or session end).
    private(set) var channelClosed = false
    private var autoRead = true
    private var allowRemoteHalfClosure = true
    private var waterMark: ChannelOptions.Types.WriteBufferWaterMark
    private var readRequested = false
    /// Data received and not yet handed to the pipeline; change it only through
    /// `appendPendingRead`, `popPendingRead` and `dropPendingReads`, which keep the
    /// session's count of buffered bytes.
    private var pendingReads = CircularBuffer<ByteBuffer>(initialCapacity: 4)
    private var pendingReadBytes = 0
    /// The last pending read is a buffer of this channel's own, which small
    /// payloads are copied into (see `appendPendingRead`).
    private var lastPendingReadIsOwned = false
    /// The last flushed write is a buffer of this channel's own, which small
    /// writes are copied into while writes wait (see `moveUnflushed`).
    private var lastFlushedIsOwned = false

    /// Payloads up to this size are copied behind the last waiting read (or
    /// write) rather than kept as buffers of their own, while reads (or
    /// writes) wait.
    static let coalescedPayloadLimit = 1024
    /// The capacity of the buffers small payloads are copied into.
    static let coalescingBufferCapacity = 16 * 1024
    private var eofDelivered = false
    /// The peer closed its side (FIN): end of input follows the buffered data.
    private var inputEnded = false
    private var readCompletePending = false

    private enum PendingWrite {
        case data(ByteBuffer, EventLoopPromise<Void>?)
        case fin(EventLoopPromise<Void>?)
    }
    private var unflushed = CircularBuffer<PendingWrite>(initialCapacity: 4)
    private var flushed = CircularBuffer<PendingWrite>(initialCapacity: 4)
    /// Data written and not yet sent; change it only through `changeQueuedBytes(by:)`,
    /// which keeps the session's count of buffered bytes.
    private var queuedBytes = 0
    private var ownWritable = true
    private var parentWritable = true
    private var finQueued = false

    init(
        streamID: UInt32,
        outbound: Bool,
        session: YamuxSessionHandler,
        parent: any Channel,
        configuration: YamuxConfiguration
    ) {
        self.streamID = streamID
        self.isOutbound = outbound
        self.session = session
        self.parentChannel = parent
        self.eventLoop = parent.eventLoop
        self.allocator = parent.allocator
        self.closePromise = parent.eventLoop.makePromise()
        self.waterMark = configuration.streamWriteBufferWaterMark
        self.parentWritable = parent.isWritable
        self._pipeline = ChannelPipeline(channel: self)
        session.liveObjects?.streamCreated()
    }

    deinit {
        self.session.liveObjects?.streamFreed()
    }

    // MARK: Channel

    var pipeline: ChannelPipeline { self._pipeline }
    var closeFuture: EventLoopFuture<Void> { self.closePromise.futureResult }
    var localAddress: SocketAddress? { self.parentChannel.localAddress }
    var remoteAddress: SocketAddress? { self.parentChannel.remoteAddress }
    var parent: (any Channel)? { self.parentChannel }
    var isWritable: Bool { self._isWritable.load(ordering: .relaxed) }
    var isActive: Bool { self._isActive.load(ordering: .relaxed) }
    var _channelCore: any ChannelCore { self }

    func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        if self.eventLoop.inEventLoop {
            return self.eventLoop.makeCompletedFuture { try self.setOption0(option, value: value) }
        }
        return self.eventLoop.submit { try self.setOption0(option, value: value) }
    }

    func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        if self.eventLoop.inEventLoop {
            return self.eventLoop.makeCompletedFuture { try self.getOption0(option) }
        }
        return self.eventLoop.submit { try self.getOption0(option) }
    }

    fileprivate func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        self.eventLoop.preconditionInEventLoop()
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption:
            let on = value as! Bool
            let wasOff = !self.autoRead
            self.autoRead = on
            // Through the pipeline, as NIO's own channels do, so handlers that hold reads back see it.
            if on && wasOff && self.activated { self.pipeline.syncOperations.read() }
        case _ as ChannelOptions.Types.AllowRemoteHalfClosureOption:
            self.allowRemoteHalfClosure = value as! Bool
        case _ as ChannelOptions.Types.WriteBufferWaterMarkOption:
            self.waterMark = value as! ChannelOptions.Types.WriteBufferWaterMark
            self.updateWritability()
        default:
            throw ChannelError.operationUnsupported
        }
    }

    fileprivate func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        self.eventLoop.preconditionInEventLoop()
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption:
            return self.autoRead as! Option.Value
        case _ as ChannelOptions.Types.AllowRemoteHalfClosureOption:
            return self.allowRemoteHalfClosure as! Option.Value
        case _ as ChannelOptions.Types.WriteBufferWaterMarkOption:
            return self.waterMark as! Option.Value
        default:
            throw ChannelError.operationUnsupported
        }
    }

    private struct SyncOptions: NIOSynchronousChannelOptions {
        let channel: YamuxStreamChannel
        func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
            try self.channel.setOption0(option, value: value)
        }
        func getOption<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
            try self.channel.getOption0(option)
        }
    }

    var syncOptions: (any NIOSynchronousChannelOptions)? { SyncOptions(channel: self) }

    // MARK: ChannelCore

    func localAddress0() throws -> SocketAddress {
        guard let address = self.parentChannel.localAddress else { throw ChannelError.unknownLocalAddress }
        return address
    }

    func remoteAddress0() throws -> SocketAddress {
        guard let address = self.parentChannel.remoteAddress else { throw ChannelError.operationUnsupported }
        return address
    }

    func register0(promise: EventLoopPromise<Void>?) {
        // A stream channel is registered by the session when it is created.
        promise?.succeed(())
    }

    func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        if self.detached, let error = self.terminationError {
            promise?.fail(error)
            return
        }
        // Once FIN is queued nothing more may follow; a reset or ended stream is closed or
        // detached (above): the session's stream state need not be asked.
        guard !self.channelClosed, !self.finQueued else {
            promise?.fail(self.channelClosed ? ChannelError.ioOnClosedChannel : ChannelError.outputClosed)
            return
        }
        let buffer = self.unwrapData(data, as: ByteBuffer.self)
        self.unflushed.append(.data(buffer, promise))
        self.changeQueuedBytes(by: buffer.readableBytes)
        self.updateWritability()
    }

    func flush0() {
        guard !self.unflushed.isEmpty else { return }
        self.moveUnflushed()
        self.session.streamHasWritesToSend(self)
    }

    func read0() {
        guard !self.channelClosed else { return }
        self.readRequested = true
        if self.activated { self.tryToRead(inSessionReadLoop: self.session.isInReadLoop) }
    }

    func close0(error: any Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .input:
            promise?.fail(ChannelError.operationUnsupported)
        case .output:
            guard !self.channelClosed else {
                promise?.fail(ChannelError.alreadyClosed)
                return
            }
            guard !self.finQueued, !self.detached else {
                promise?.fail(self.terminationError ?? ChannelError.outputClosed)
                return
            }
            self.queueFIN(promise: promise)
            self.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.outputClosed)
        case .all:
            guard !self.channelClosed else {
                promise?.fail(ChannelError.alreadyClosed)
                return
            }
            if self.detached {
                self.dropPendingReads()
                self.finishChannel(error: nil, closePromise: promise)
                return
            }
            // Graceful: whatever the application already wrote still goes out, then FIN.
            if !self.finQueued {
                self.queueFIN(promise: nil)
            } else if !self.unflushed.isEmpty {
                self.moveUnflushed()
                self.session.streamHasWritesToSend(self)
            }
            self.dropPendingReads()
            self.session.streamClosedByApplication(self)
            self.finishChannel(error: nil, closePromise: promise)
        }
    }

    func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        if event is YamuxStreamResetEvent {
            self.session.resetStream(self)
            promise?.succeed(())
        } else {
            promise?.fail(ChannelError.operationUnsupported)
        }
    }

    func channelRead0(_ data: NIOAny) {
        // Reached the end of the stream's pipeline unconsumed: nothing to do.
    }

    func errorCaught0(error: any Error) {
        // Unhandled errors at the tail of the stream pipeline are the application's business.
    }

    // MARK: session-facing: lifecycle

    /// Makes the channel live: fires registered/active and starts reading if autoRead is on.
    /// The caller has installed its handlers already.
    func activate() {
        guard !self.channelClosed, !self.activated else { return }
        self.activated = true
        self._isActive.store(true, ordering: .relaxed)
        self.pipeline.syncOperations.fireChannelRegistered()
        self.pipeline.syncOperations.fireChannelActive()
        self.updateWritability()
        if self.autoRead { self.pipeline.syncOperations.read() }
        // Data or a FIN may have arrived before activation.
        self.tryToRead(inSessionReadLoop: self.session.isInReadLoop)
    }

    /// The stream was reset (by either side): fail and close the channel; what was received
    /// and not read is dropped.
    func reset() {
        self.terminate(error: .streamReset, keepingInput: false)
    }

    /// The session ended: fail and close the channel.
    ///
    /// Exception: if the peer had already closed its side cleanly (FIN), what it sent is still
    /// delivered, then EOF, so a response is not lost when the peer closes the whole session
    /// right after it. The channel then stays open (writes fail) until the application closes.
    func sessionEnded(error: YamuxError) {
        self.terminate(error: error, keepingInput: self.inputEnded)
    }

    private func terminate(error: YamuxError, keepingInput cleanEOF: Bool) {
        self.failPendingWrites(error: error)
        if self.terminationError == nil { self.terminationError = error }
        guard !self.channelClosed else { return }
        // Only a stream some application holds can still be read; one that waited in the
        // accept backlog never will be, and detached it would never be freed.
        if cleanEOF && !self.eofDelivered && self.activated {
            self.detached = true
            return
        }
        self.dropPendingReads()
        self.finishChannel(error: error, closePromise: nil)
    }

    /// Why the stream ended, if it failed.
    private(set) var terminationError: YamuxError?
    /// The session is gone but the application still reads what arrived before.
    private var detached = false

    // MARK: session-facing: inbound

    /// A data payload passed the window check.
    func receive(_ payload: ByteBuffer) {
        self.appendPendingRead(payload)
        if self.activated { self.tryToRead(inSessionReadLoop: self.session.isInReadLoop) }
    }

    /// The peer sent FIN: EOF after the buffered data.
    func receivedFIN() {
        self.inputEnded = true
        if self.activated { self.deliverEOFIfNeeded() }
    }

    /// Called by the session at the end of its read batch.
    func sessionReadComplete() {
        guard self.readCompletePending else { return }
        self.readCompletePending = false
        guard !self.channelClosed else { return }
        self.pipeline.syncOperations.fireChannelReadComplete()
        if self.autoRead && !self.channelClosed { self.pipeline.syncOperations.read() }
    }

    private func tryToRead(inSessionReadLoop: Bool) {
        guard self.readRequested, !self.pendingReads.isEmpty, !self.channelClosed else {
            self.deliverEOFIfNeeded()
            return
        }
        self.deliverReads(ignoreReadRequests: false)
        if inSessionReadLoop {
            // The session fires readComplete once per batch, after all frames were handled.
            if !self.readCompletePending {
                self.readCompletePending = true
                self.session.streamNeedsReadComplete(self)
            }
        } else if !self.channelClosed {
            self.pipeline.syncOperations.fireChannelReadComplete()
            if self.autoRead && !self.channelClosed { self.pipeline.syncOperations.read() }
        }
        self.deliverEOFIfNeeded()
    }

    private func deliverReads(ignoreReadRequests: Bool) {
        guard self.readRequested || ignoreReadRequests else { return }
        self.readRequested = false
        var delivered: UInt32 = 0
        while !self.channelClosed, let buffer = self.popPendingRead() {
            delivered += UInt32(buffer.readableBytes)
            self.pipeline.syncOperations.fireChannelRead(NIOAny(buffer))
        }
        if delivered > 0 { self.session.streamConsumedData(self, bytes: delivered) }
    }

    /// EOF is what a read finds, as on any NIO channel: it waits for read
    /// demand. (Delivered without it, an EOF that arrived before the
    /// application installed its handlers, autoRead still off, went into an
    /// empty pipeline and closed the stream under the application.)
    private func deliverEOFIfNeeded() {
        guard self.activated, self.readRequested, !self.eofDelivered, !self.channelClosed, self.pendingReads.isEmpty,
            self.inputEnded
        else { return }
        self.readRequested = false
        self.eofDelivered = true
        if self.allowRemoteHalfClosure {
            self.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        } else {
            self.close0(error: ChannelError.eof, mode: .all, promise: nil)
        }
    }

    // MARK: session-facing: outbound

    /// Writes as much queued data as the peer's window allows, then a queued FIN.
    /// Returns whether anything was written.
    @discardableResult
    func drainWrites() -> Bool {
        var wrote = false
        while let next = self.flushed.first {
            switch next {
            case .data(var buffer, let promise):
                let readable = buffer.readableBytes
                if readable == 0 {
                    self.flushed.removeFirst()
                    promise?.succeed(())
                    continue
                }
                if !self.session.connectionTakesData {
                    // The connection holds enough already: the data waits here, counted
                    // against this stream's writability, until it drains.
                    self.session.streamWaitsForConnection(self)
                    return self.finishDrain(wrote)
                }
                // The peer's window, as the session keeps it: what this frame may carry.
                guard let granted = self.session.reserveSendWindow(for: self, wanted: readable) else {
                    self.flushed.removeFirst()
                    self.changeQueuedBytes(by: -readable)
                    promise?.fail(YamuxError.streamClosed)
                    continue
                }
                guard granted > 0 else { return self.finishDrain(wrote) }
                if granted == readable {
                    self.flushed.removeFirst()
                    self.changeQueuedBytes(by: -readable)
                    self.session.writeData(streamID: self.streamID, payload: buffer, promise: promise)
                } else {
                    // Split to the window; the rest waits for a window update.
                    let slice = buffer.readSlice(length: granted)!
                    self.flushed[self.flushed.startIndex] = .data(buffer, promise)
                    self.changeQueuedBytes(by: -granted)
                    self.session.writeData(streamID: self.streamID, payload: slice, promise: nil)
                }
                wrote = true
            case .fin(let promise):
                self.flushed.removeFirst()
                self.session.sendFIN(self, promise: promise)
                wrote = true
            }
        }
        return self.finishDrain(wrote)
    }

    private func finishDrain(_ wrote: Bool) -> Bool {
        self.updateWritability()
        return wrote
    }

    var hasFlushedWrites: Bool { !self.flushed.isEmpty }

    func parentWritabilityChanged(_ writable: Bool) {
        self.parentWritable = writable
        self.updateWritability()
    }

    private func queueFIN(promise: EventLoopPromise<Void>?) {
        self.finQueued = true
        self.moveUnflushed()
        self.flushed.append(.fin(promise))
        self.session.streamHasWritesToSend(self)
    }

    private func moveUnflushed() {
        while let write = self.unflushed.popFirst() {
            guard case .data(let buffer, let promise) = write, buffer.readableBytes <= Self.coalescedPayloadLimit,
                !self.flushed.isEmpty
            else {
                self.flushed.append(write)
                self.lastFlushedIsOwned = false
                continue
            }
            // Writes are waiting (the peer's window or the connection is
            // full). Small ones are copied behind the last waiting write: a
            // writer of many small values then holds about the bytes its
            // watermark allows, not a buffer and an entry for each value.
            let last = self.flushed.index(before: self.flushed.endIndex)
            if self.lastFlushedIsOwned, case .data(var owned, let ownedPromise) = self.flushed[last],
                owned.writableBytes >= buffer.readableBytes {
                self.flushed[last] = .fin(nil)
                owned.writeImmutableBuffer(buffer)
                self.flushed[last] = .data(owned, Self.merge(ownedPromise, promise))
            } else {
                var owned = self.allocator.buffer(capacity: max(Self.coalescingBufferCapacity, buffer.readableBytes))
                owned.writeImmutableBuffer(buffer)
                self.flushed.append(.data(owned, promise))
                self.lastFlushedIsOwned = true
            }
        }
    }

    /// One promise for two writes copied into one buffer: both complete
    /// when the buffer is written.
    private static func merge(_ first: EventLoopPromise<Void>?, _ second: EventLoopPromise<Void>?) -> EventLoopPromise<Void>? {
        guard let first else { return second }
        if let second { first.futureResult.cascade(to: second) }
        return first
    }

    private func failPendingWrites(error: any Error) {
        self.moveUnflushed()
        while let write = self.flushed.popFirst() {
            switch write {
            case .data(let buffer, let promise):
                self.changeQueuedBytes(by: -buffer.readableBytes)
                promise?.fail(error)
            case .fin(let promise):
                promise?.fail(error)
            }
        }
    }

    /// Counts written bytes in or out of the queue, for the stream and its session.
    private func changeQueuedBytes(by delta: Int) {
        self.queuedBytes += delta
        self.session.streamBufferedBytesChanged(by: delta)
    }

    /// How many buffers wait to be read (for tests of the coalescing below).
    var pendingReadBufferCount: Int { self.pendingReads.count }

    /// How many writes wait for the peer's window or the connection (for
    /// tests of the coalescing in `moveUnflushed`).
    var waitingWriteCount: Int { self.flushed.count }

    private func appendPendingRead(_ buffer: ByteBuffer) {
        let count = buffer.readableBytes
        if count <= Self.coalescedPayloadLimit, !self.pendingReads.isEmpty {
            // Reads are waiting (a slow or stalled reader). A small payload
            // kept as it came is a slice that keeps the whole buffer of the
            // connection's read alive, and an entry of its own: a reader that
            // never reads would hold many times its window. Copied behind the
            // last waiting read, it costs its own bytes.
            let last = self.pendingReads.index(before: self.pendingReads.endIndex)
            if self.lastPendingReadIsOwned, self.pendingReads[last].writableBytes >= count {
                // Taken out while written to, so that its storage has one
                // owner and is not copied.
                var owned = self.pendingReads[last]
                self.pendingReads[last] = ByteBuffer()
                owned.writeImmutableBuffer(buffer)
                self.pendingReads[last] = owned
            } else {
                var owned = self.allocator.buffer(capacity: max(Self.coalescingBufferCapacity, count))
                owned.writeImmutableBuffer(buffer)
                self.pendingReads.append(owned)
                self.lastPendingReadIsOwned = true
            }
        } else {
            self.pendingReads.append(buffer)
            self.lastPendingReadIsOwned = false
        }
        self.pendingReadBytes += count
        self.session.streamUnreadBytesChanged(by: count)
    }

    private func popPendingRead() -> ByteBuffer? {
        guard let buffer = self.pendingReads.popFirst() else { return nil }
        if self.pendingReads.isEmpty { self.lastPendingReadIsOwned = false }
        self.pendingReadBytes -= buffer.readableBytes
        self.session.streamUnreadBytesChanged(by: -buffer.readableBytes)
        return buffer
    }

    private func dropPendingReads() {
        guard self.pendingReadBytes > 0 || !self.pendingReads.isEmpty else { return }
        self.session.streamUnreadBytesChanged(by: -self.pendingReadBytes)
        self.pendingReads.removeAll()
        self.lastPendingReadIsOwned = false
        self.pendingReadBytes = 0
    }

    private func updateWritability() {
        if self.ownWritable && self.queuedBytes > self.waterMark.high {
            self.ownWritable = false
        } else if !self.ownWritable && self.queuedBytes < self.waterMark.low {
            self.ownWritable = true
        }
        let writable = self.ownWritable && self.parentWritable && !self.channelClosed
        if self._isWritable.exchange(writable, ordering: .relaxed) != writable, self.activated, !self.channelClosed {
            self.pipeline.syncOperations.fireChannelWritabilityChanged()
        }
    }

    /// Makes the channel inactive for the application (once).
    private func finishChannel(error: YamuxError?, closePromise: EventLoopPromise<Void>?) {
        guard !self.channelClosed else {
            closePromise?.succeed(())
            return
        }
        self.channelClosed = true
        self._isActive.store(false, ordering: .relaxed)
        self._isWritable.store(false, ordering: .relaxed)
        closePromise?.succeed(())
        if self.activated {
            if let error { self.pipeline.syncOperations.fireErrorCaught(error) }
            self.pipeline.syncOperations.fireChannelInactive()
            self.pipeline.syncOperations.fireChannelUnregistered()
            // As NIO's own channels do: tear the pipeline down on the next tick, after the
            // inactive event has been seen by everyone.
            self.eventLoop.execute {
                self.removeHandlers(pipeline: self.pipeline)
                self.closePromise.succeed(())
            }
        } else {
            // Never activated (it waited in the accept backlog, or its opener
            // never took it): the pipeline still holds the channel, and only
            // tearing it down breaks that cycle. Left alone, every stream that
            // ended in the backlog stayed in memory for good.
            self.removeHandlers(pipeline: self.pipeline)
            self.closePromise.succeed(())
        }
    }
}

extension YamuxStreamChannel {
    var debugState: String {
        "active=\(self.activated) closed=\(self.channelClosed) detached=\(self.detached) inputEnded=\(self.inputEnded) pendingReads=\(self.pendingReads.count) readRequested=\(self.readRequested) readCompletePending=\(self.readCompletePending) eof=\(self.eofDelivered) unflushed=\(self.unflushed.count) flushed=\(self.flushed.count) queued=\(self.queuedBytes) ownWritable=\(self.ownWritable) parentWritable=\(self.parentWritable) writable=\(self.isWritable) finQueued=\(self.finQueued) autoRead=\(self.autoRead)"
    }
}

extension YamuxStreamChannel: CustomStringConvertible {
    var description: String {
        "YamuxStreamChannel(streamID: \(self.streamID), isActive: \(self.isActive), isWritable: \(self.isWritable))"
    }
}
