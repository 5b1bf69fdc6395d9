import NIOCore

// What `YamuxSession` asks of the handler, on the event loop: open and accept streams, go
// away, close, and report.

extension YamuxSessionHandler {
    // MARK: opening

    /// Opens a stream: SYN goes out now (or once an in-flight SYN slot frees up).
    func openStream(_ callback: @escaping StreamCallback) {
        if self.deferIfIdle({ self.openStream(callback) }) { return }
        let decision = self.machine.openStream(now: .now()) { id in self.makeStream(id: id, outbound: true) }
        self.carryOut(decision, for: callback)
    }

    /// Starts the opens that waited for a SYN slot, while slots are free.
    func startWaitingOpens() {
        while self.machine.waitingOpenMayStart, let open = self.pendingOpens.popFirst() {
            let decision = self.machine.resumeWaitingOpen(now: .now()) { id in self.makeStream(id: id, outbound: true) }
            self.carryOut(decision, for: open)
        }
    }

    private func carryOut(_ decision: YamuxSessionStateMachine<YamuxStreamChannel>.OpenDecision, for callback: @escaping StreamCallback) {
        switch decision {
        case .deferUntilActive:
            self.openStream(callback)
        case .waitForSYNSlot:
            self.pendingOpens.append(callback)
        case .failed(let error):
            callback(.failure(error))
        case .opened(let stream, let syn):
            self.startOpenTimeout(for: stream.streamID)
            self.writer.writeFrame(syn)
            callback(.success(stream))
            stream.activate()
            self.writer.flushIfNeeded()
        }
    }

    // MARK: accepting

    /// Hands the next inbound stream to the application (and ACKs it), or waits for one.
    /// `token` is for `cancelAccept`.
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

    func serviceAcceptWaiters() {
        while !self.acceptWaiters.isEmpty {
            switch self.machine.acceptStream(now: .now()) {
            case .accepted(let stream, let ack):
                let waiter = self.acceptWaiters.removeFirst()
                self.writer.writeFrame(ack)
                waiter.callback(.success(stream))
                stream.activate()
                self.writer.flushIfNeeded()
            case .wait:
                return
            case .noMoreStreams:
                let waiters = self.acceptWaiters
                self.acceptWaiters.removeAll()
                for waiter in waiters { waiter.callback(.success(nil)) }
            case .failed(let error):
                let waiters = self.acceptWaiters
                self.acceptWaiters.removeAll()
                for waiter in waiters { waiter.callback(.failure(error)) }
            }
        }
    }

    // MARK: going away

    /// GoAway(0): the peer may open no more streams; open ones go on.
    func goAway() {
        if self.deferIfIdle({ self.goAway() }) { return }
        guard self.machine.isRunning else { return }
        if let frame = self.machine.goAway() {
            self.writer.writeFrame(frame)
            self.writer.flushIfNeeded()
        }
        self.serviceAcceptWaiters()
    }

    /// GoAway(0), the quiesce event passed on to every stream, and the session closed once no
    /// stream's application uses it.
    func quiesce() {
        if self.deferIfIdle({ self.quiesce() }) { return }
        guard self.machine.isRunning else { return }
        if let frame = self.machine.goAway(quiescing: true) {
            self.writer.writeFrame(frame)
            self.writer.flushIfNeeded()
        }
        self.serviceAcceptWaiters()
        for stream in Array(self.machine.streams.values.lazy.map(\.stream)) {
            stream.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        self.closeIfQuiescedAndIdle()
    }

    /// While quiescing: ends the session once no stream's application still uses it (closed
    /// streams may linger for the peer's FIN; they need not).
    func closeIfQuiescedAndIdle() {
        guard self.machine.quiescedAndIdle(isInUse: { !$0.channelClosed }) else { return }
        self.closeSession(error: .sessionClosed, goAway: nil)
    }

    // MARK: writing, for the session and tests

    /// Writes a header-only frame (not flushed).
    func writeFrame(_ header: YamuxFrameHeader, promise: EventLoopPromise<Void>? = nil) {
        self.writer.writeFrame(header, promise: promise)
    }

    /// Flushes now, unless inside a read batch (`channelReadComplete` flushes once for it).
    func flushIfNeeded() {
        self.writer.flushIfNeeded()
    }

    // MARK: reporting

    /// Set by `ChannelShouldQuiesceEvent`: the session closes once every stream is done.
    var quiescing: Bool { self.machine.isQuiescing }

    var numberOfStreams: Int { self.machine.streams.count }

    var isClosed: Bool { self.machine.closedError != nil }

    /// The latest measured round-trip time, for auto-tuning and callers.
    var rtt: TimeAmount? { self.pings.rtt }

    var statistics: YamuxSessionStatistics {
        var statistics = self._statistics
        statistics.autoTunedWindow = self.machine.autoTuneBudget.granted
        statistics.bufferedBytes = self.bufferedBytes
        statistics.unreadBytes = self.machine.unreadBytes
        statistics.maxBufferedControlFrames = self.writer.maxQueuedControlFrames
        return statistics
    }

    /// A description of the session's state, for debugging hangs.
    var debugState: String {
        let machine = self.machine
        var lines = [
            "session \(self.role) state=\(machine.lifecycle) streams=\(machine.streams.count) backlog=\(machine.acceptBacklog.count) waiters=\(self.acceptWaiters.count) inflightSYNs=\(machine.inflightSYNs) pendingOpens=\(self.pendingOpens.count) \(self.writer.debugState)"
        ]
        for (id, state) in machine.streams.sorted(by: { $0.key < $1.key }) {
            let flow = state.flow
            lines.append(
                "  stream \(id) \(state.lifecycle.state) sendWindow=\(flow.sendWindow) recvWindow=\(flow.recvWindow) buffered=\(flow.buffered) target=\(flow.target) \(state.stream.debugState)"
            )
        }
        return lines.joined(separator: "\n")
    }

    func onClose(_ callback: @escaping (YamuxError) -> Void) {
        if let error = self.machine.closedError {
            callback(error)
        } else {
            self.closeCallbacks.append(callback)
        }
    }

    /// Registers `callback` for the peer's GoAway(0); runs it at once if one
    /// already came. Dropped unrun if the session ends without one.
    func onRemoteGoAway(_ callback: @escaping () -> Void) {
        if self.machine.receivedGoAway {
            callback()
        } else if self.machine.closedError != nil {
            return
        } else {
            self.remoteGoAwayCallbacks.append(callback)
        }
    }
}
