import NIOCore

/// Our pings awaiting their answers, the keepalive among them, and the round-trip time they
/// measure. Plain bookkeeping; the handler sends the frames and runs the timers.
struct YamuxPingTracker {
    struct PendingPing {
        var start: NIODeadline
        var callback: ((Result<Duration, YamuxError>) -> Void)?
        var timeout: Scheduled<Void>?
    }

    private(set) var pending: [UInt32: PendingPing] = [:]
    private var nextPingID: UInt32 = 0
    /// A keepalive ping is out and unanswered: the next keepalive waits for it rather than
    /// piling up pings on a connection that does not answer.
    var keepAliveOutstanding = false
    /// The latest measured round-trip time, for auto-tuning and callers.
    private(set) var rtt: TimeAmount?

    /// The id the next ping carries.
    mutating func takeID() -> UInt32 {
        defer { self.nextPingID &+= 1 }
        return self.nextPingID
    }

    mutating func sent(id: UInt32, _ ping: PendingPing) {
        self.pending[id] = ping
    }

    /// The peer answered ping `id`: the ping, with the round-trip time recorded, or nil if
    /// it is not ours (or timed out).
    mutating func answered(id: UInt32, now: NIODeadline) -> (PendingPing, TimeAmount)? {
        guard let ping = self.pending.removeValue(forKey: id) else { return nil }
        let elapsed = now - ping.start
        self.rtt = elapsed
        return (ping, elapsed)
    }

    /// Ping `id` timed out: its waiter, if it still waits.
    mutating func timedOut(id: UInt32) -> PendingPing? {
        self.pending.removeValue(forKey: id)
    }

    /// The session ended: every waiting ping, for the caller to fail. (Failed here, their
    /// callbacks would run inside this mutation, and the keepalive's changes the tracker.)
    mutating func removeAll() -> [PendingPing] {
        defer { self.pending.removeAll() }
        return Array(self.pending.values)
    }
}

extension YamuxSessionHandler {
    func handlePing(_ header: YamuxFrameHeader) {
        if header.flags.contains(.syn) {
            self._statistics.pingsAnswered += 1
            self.queueControlFrame(YamuxFrameHeader(type: .ping, flags: .ack, streamID: 0, length: header.length))
        } else if header.flags.contains(.ack), let (ping, elapsed) = self.pings.answered(id: header.length, now: .now()) {
            ping.timeout?.cancel()
            self._statistics.pongsReceived += 1
            ping.callback?(.success(Duration.nanoseconds(elapsed.nanoseconds)))
        }
    }

    /// Sends a ping; the callback gets the round-trip time, or a timeout after
    /// `connectionWriteTimeout`.
    func sendPing(callback: ((Result<Duration, YamuxError>) -> Void)?) {
        if self.deferIfIdle({ self.sendPing(callback: callback); self.writer.flushIfNeeded() }) { return }
        guard self.machine.isRunning, let context = self.context else {
            callback?(.failure(self.closedError))
            return
        }
        let id = self.pings.takeID()
        let timeout = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(self.configuration.connectionWriteTimeout)) {
            guard let ping = self.pings.timedOut(id: id) else { return }
            ping.callback?(.failure(.pingTimeout))
        }
        self.pings.sent(id: id, .init(start: .now(), callback: callback, timeout: timeout))
        self.writer.writeFrame(YamuxFrameHeader(type: .ping, flags: .syn, streamID: 0, length: id))
    }

    func scheduleKeepAlive() {
        guard let context = self.context else { return }
        self.timers.keepAlive = context.eventLoop.assumeIsolated().scheduleTask(
            in: TimeAmount(self.configuration.keepAliveInterval)
        ) {
            self.keepAlive()
            if self.machine.isRunning { self.scheduleKeepAlive() }
        }
    }

    private func keepAlive() {
        guard self.machine.isRunning, !self.pings.keepAliveOutstanding else { return }
        self.pings.keepAliveOutstanding = true
        self._statistics.keepAlivesSent += 1
        self.sendPing { result in
            self.pings.keepAliveOutstanding = false
            if case .failure(let error) = result, error.code == .pingTimeout {
                self.closeSession(error: .keepAliveTimeout, goAway: nil)
            }
        }
        self.writer.flushIfNeeded()
    }
}
