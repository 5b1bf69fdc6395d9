import NIOCore

// What a stream channel asks of its session: the stream carries data, the session decides
// what the protocol allows (windows, FIN, RST) through its state machine.

extension YamuxSessionHandler {
    // MARK: outbound

    /// The stream flushed writes: they go out as far as the peer's window and the connection
    /// allow, and are flushed at the end of the turn (or earlier, see `YamuxFrameWriter`).
    func streamHasWritesToSend(_ stream: YamuxStreamChannel) {
        guard self.machine.isRunning else {
            stream.sessionEnded(error: self.closedError)
            return
        }
        switch self.machine.streamCarriesData(stream, flushEpoch: self.writer.flushEpoch) {
        case nil: return
        case true?: self.writer.countActiveStream()
        case false?: break
        }
        if stream.drainWrites() { self.writer.flushSoon() }
    }

    /// How many of `wanted` bytes `stream` may send now (taken from the peer's window); nil
    /// when it may send no data any more.
    func reserveSendWindow(for stream: YamuxStreamChannel, wanted: Int) -> Int? {
        self.machine.reserveSendWindow(for: stream, wanted: wanted)
    }

    /// Writes a data frame (not flushed).
    func writeData(streamID: UInt32, payload: ByteBuffer, promise: EventLoopPromise<Void>?) {
        self.writer.writeData(streamID: streamID, payload: payload, promise: promise)
    }

    /// Writes the FIN (as a window update, as hashicorp does) after the stream's queued data.
    func sendFIN(_ stream: YamuxStreamChannel, promise: EventLoopPromise<Void>?) {
        switch self.machine.sendFIN(stream) {
        case .alreadySent:
            promise?.succeed(())
        case .halfClosed(let fin):
            self.writer.writeFrame(fin, promise: promise)
        case .fullyClosed(let fin):
            self.writer.writeFrame(fin, promise: promise)
            self.streamRemoved(stream.streamID)
        }
    }

    /// Whether streams may hand data frames to the connection now. While the
    /// connection is not writable (the peer does not read it fast enough), data stays
    /// in its streams, where it counts against their writability and the session's
    /// buffer limit: what the connection holds stays within its write buffer's
    /// watermark plus one gathered batch, however many streams have window to spend.
    var connectionTakesData: Bool { self.writer.connectionWritable }

    func streamWaitsForConnection(_ stream: YamuxStreamChannel) {
        guard self.idsWaitingForConnection.insert(stream.streamID).inserted else { return }
        self.streamsWaitingForConnection.append(stream)
    }

    /// The connection is writable again: the waiting streams send what they can. On the
    /// next turn of the loop, as this may run inside a flush that a stream's own
    /// writes started.
    func resumeStreamsWaitingForConnection(context: ChannelHandlerContext) {
        guard !self.streamsWaitingForConnection.isEmpty, !self.resumeScheduled else { return }
        self.resumeScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.resumeScheduled = false
            let waiting = self.streamsWaitingForConnection
            self.streamsWaitingForConnection.removeAll(keepingCapacity: true)
            self.idsWaitingForConnection.removeAll(keepingCapacity: true)
            for stream in waiting {
                guard self.machine.isRunning, stream.hasFlushedWrites, self.machine.contains(stream) else { continue }
                if stream.drainWrites() { self.writer.noteNeedsFlush() }
            }
            self.writer.flushIfNeeded()
        }
    }

    // MARK: inbound

    func streamNeedsReadComplete(_ stream: YamuxStreamChannel) {
        self.streamsNeedingReadComplete.append(stream)
    }

    /// `bytes` reached the stream's consumer: credit the peer if half the window is free.
    func streamConsumedData(_ stream: YamuxStreamChannel, bytes: UInt32) {
        guard let update = self.machine.consumed(bytes, by: stream, now: .now(), rtt: self.pings.rtt) else { return }
        self._statistics.windowUpdatesSent += 1
        self.writer.writeFrame(update)
        self.writer.flushIfNeeded()
    }

    // MARK: ending

    /// The application closed the channel; the stream lingers until the peer closes its side,
    /// for at most `streamCloseTimeout`.
    func streamClosedByApplication(_ stream: YamuxStreamChannel) {
        if self.machine.isQuiescing, let context = self.context {
            // The stream counts as closed once its close completes, after this
            // call returns: look again on the next turn of the loop.
            context.eventLoop.assumeIsolated().execute { self.closeIfQuiescedAndIdle() }
        }
        guard self.machine.streamClosedByApplication(stream), self.context != nil else { return }
        self.startCloseTimeout(for: stream)
    }

    /// Aborts the stream: RST to the peer, the channel fails.
    func resetStream(_ stream: YamuxStreamChannel) {
        guard self.machine.contains(stream) else {
            stream.reset()
            return
        }
        self.sendReset(stream)
        self.writer.flushIfNeeded()
    }

    // MARK: buffered bytes

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
        self.machine.unreadBytesChanged(by: delta)
        self.streamBufferedBytesChanged(by: delta)
    }
}
