import NIOCore

/// The session's timers, and the streams' (keyed by stream id, as the stream channels carry
/// no protocol state): each is cancelled when what it watches ends.
struct YamuxSessionTimers {
    var keepAlive: Scheduled<Void>?
    /// Runs while the connection is not writable: hashicorp's connection write timeout.
    var writeTimeout: Scheduled<Void>?
    var frameReadTimer: Scheduled<Void>?
    /// Counts frame boundaries (headers and payload ends), so a partial frame can be told
    /// from the one seen at the last read.
    var frameProgress: UInt64 = 0
    /// The partial frame the connection's bytes end in, and since when.
    var partialFrame: (progress: UInt64, since: NIODeadline)?
    /// Our opens waiting for the peer's ACK.
    var openTimeouts: [UInt32: Scheduled<Void>] = [:]
    /// Streams the application closed, waiting for the peer's FIN.
    var closeTimeouts: [UInt32: Scheduled<Void>] = [:]

    mutating func connectionBecameWritable() {
        self.writeTimeout?.cancel()
        self.writeTimeout = nil
    }

    mutating func cancelOpenTimeout(of id: UInt32) {
        guard !self.openTimeouts.isEmpty else { return }
        self.openTimeouts.removeValue(forKey: id)?.cancel()
    }

    mutating func cancelStreamTimers(of id: UInt32) {
        self.cancelOpenTimeout(of: id)
        guard !self.closeTimeouts.isEmpty else { return }
        self.closeTimeouts.removeValue(forKey: id)?.cancel()
    }

    mutating func cancelAll() {
        self.keepAlive?.cancel()
        self.keepAlive = nil
        self.writeTimeout?.cancel()
        self.writeTimeout = nil
        self.frameReadTimer?.cancel()
        self.frameReadTimer = nil
        for timer in self.openTimeouts.values { timer.cancel() }
        self.openTimeouts.removeAll()
        for timer in self.closeTimeouts.values { timer.cancel() }
        self.closeTimeouts.removeAll()
    }
}

extension YamuxSessionHandler {
    /// hashicorp's connection write timeout: if the peer does not take our bytes for this
    /// long, the connection is considered dead.
    func startWriteTimeout(context: ChannelHandlerContext) {
        guard self.timers.writeTimeout == nil else { return }
        self.timers.writeTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(self.configuration.connectionWriteTimeout)) {
            guard !self.writer.connectionWritable else { return }
            self.closeSession(error: .connectionWriteTimeout, goAway: nil)
        }
    }

    /// hashicorp closes the whole session when a stream is not acknowledged in time.
    func startOpenTimeout(for id: UInt32) {
        guard let context = self.context else { return }
        self.timers.openTimeouts[id] = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(self.configuration.streamOpenTimeout)) {
            guard self.machine.isAwaitingACK(id) else { return }
            self.closeSession(error: .streamOpenTimeout, goAway: nil)
        }
    }

    /// A stream the application closed is reset if the peer does not close its side in time.
    func startCloseTimeout(for stream: YamuxStreamChannel) {
        guard let context = self.context else { return }
        self.timers.closeTimeouts[stream.streamID]?.cancel()
        self.timers.closeTimeouts[stream.streamID] = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(self.configuration.streamCloseTimeout)) {
            self.sendReset(stream)
            self.writer.flushIfNeeded()
        }
    }

    // MARK: the frame read timeout

    /// After each read: if the bytes end inside a frame, its rest must come within
    /// `frameReadTimeout`. One clock read per read that ends mid-frame, and one
    /// timer that re-arms itself only while frames stay partial: nothing runs
    /// while the connection is idle between frames.
    func watchPartialFrame(context: ChannelHandlerContext, insideFrame: Bool) {
        guard insideFrame else {
            self.timers.partialFrame = nil
            return
        }
        if self.timers.partialFrame?.progress != self.timers.frameProgress {
            self.timers.partialFrame = (self.timers.frameProgress, context.eventLoop.now)
        }
        if self.timers.frameReadTimer == nil { self.armFrameReadTimer(context: context) }
    }

    private func armFrameReadTimer(context: ChannelHandlerContext) {
        guard let partial = self.timers.partialFrame else { return }
        let deadline = partial.since + TimeAmount(self.configuration.frameReadTimeout)
        self.timers.frameReadTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timers.frameReadTimer = nil
            guard self.machine.isRunning, let partial = self.timers.partialFrame, let context = self.context else { return }
            if context.eventLoop.now >= partial.since + TimeAmount(self.configuration.frameReadTimeout) {
                self.closeSession(error: .frameReadTimeout, goAway: .protocolError)
            } else {
                // Another frame began since: wait for that one.
                self.armFrameReadTimer(context: context)
            }
        }
    }
}
