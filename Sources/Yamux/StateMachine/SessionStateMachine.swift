import NIOCore

/// The yamux protocol state of one session and of every one of its streams, as one value:
/// events go in as method calls, and what the session must do comes out as return values
/// (frames to send, streams to deliver to, fail or forget, a session to close). No channel,
/// promise or event loop is in here, so every rule can be tested without sockets
/// (`SessionStateMachineTests`); `YamuxSessionHandler` carries the actions out.
///
/// Generic over `Stream`, whatever the owner keeps for a stream (the handler: its child
/// channel), so that the protocol state of a stream and the stream itself share one
/// dictionary entry: a frame costs one lookup, as it did when the channel held its state.
/// Calls a stream makes about itself name the stream, not just its id, and do nothing unless
/// it is the very one in the session: a peer may reuse the id of a stream that ended.
///
/// In order: the session's lifecycle, GoAway, opening and accepting streams, streams ending,
/// the frames the peer sends on streams, and the windows both ways. One file, because only
/// the machine itself may change its state.
struct YamuxSessionStateMachine<Stream: YamuxStreamIdentity> {
    /// Why we sent GoAway(0).
    enum LocalGoAway: Hashable {
        /// The application (or the API) asked: no new inbound streams.
        case refusingStreams
        /// The server is shutting down (`ChannelShouldQuiesceEvent`): no new inbound streams,
        /// and the session closes once no stream's application uses it any more.
        case quiescing
    }

    /// The session's life, one state at a time. GoAway(0) is not an end: streams already
    /// open carry on in every state but `.closed`.
    enum Lifecycle: Hashable {
        /// The connection is not active yet.
        case idle
        case active
        /// We refuse the peer's new streams.
        case localGoAwaySent(LocalGoAway)
        /// The peer refuses our new streams.
        case remoteGoAwayReceived
        /// Both of the above.
        case bothGoneAway(LocalGoAway)
        case closed(YamuxError)
    }

    /// The protocol state of one stream, beside the stream it belongs to.
    struct StreamState {
        let stream: Stream
        var lifecycle: StreamStateMachine
        var flow: StreamFlowController
        /// Counted against the in-flight SYN limit (`acceptBacklog`) until ACKed or gone.
        var holdsSYNSlot: Bool
        /// An inbound stream in the accept backlog, not yet taken (and ACKed) by the application.
        var awaitingAccept: Bool
        /// The frame writer's early-flush epoch this stream last carried data in
        /// (``EarlyFlushPolicy``); kept here so counting it costs no lookup of its own.
        var flushEpoch: UInt64 = 0
    }

    let role: YamuxRole
    let configuration: YamuxConfiguration
    private(set) var lifecycle: Lifecycle = .idle
    /// Every stream the session knows, until both sides closed it or either reset it.
    private(set) var streams: [UInt32: StreamState] = [:]
    private(set) var nextStreamID: UInt32
    /// Inbound streams waiting for the application, oldest first.
    private(set) var acceptBacklog = CircularBuffer<UInt32>()
    /// Our opens the peer has not acknowledged yet.
    private(set) var inflightSYNs = 0
    /// Opens waiting for an in-flight SYN slot (their callers are the owner's business).
    private(set) var waitingOpens = 0
    /// Receive window auto-tuning has handed out across the streams.
    var autoTuneBudget: AutoTuneBudget
    /// Bytes received on the streams and not yet read by their applications.
    private(set) var unreadBytes = 0
    /// The stream the data frame being received belongs to, while its payload arrives.
    var payloadTarget: (streamID: UInt32, stream: Stream, flags: YamuxFrameFlags)?

    init(role: YamuxRole, configuration: YamuxConfiguration) {
        self.role = role
        self.configuration = configuration
        self.nextStreamID = role.firstStreamID
        self.autoTuneBudget = AutoTuneBudget(limit: configuration.maxAutoTunedSessionWindow)
    }

    // MARK: lifecycle

    /// Not yet started: API calls wait for the connection.
    var isIdle: Bool {
        if case .idle = self.lifecycle { return true }
        return false
    }

    /// Started and not closed (GoAway either way included): frames flow.
    var isRunning: Bool {
        switch self.lifecycle {
        case .idle, .closed: return false
        case .active, .localGoAwaySent, .remoteGoAwayReceived, .bothGoneAway: return true
        }
    }

    var closedError: YamuxError? {
        if case .closed(let error) = self.lifecycle { return error }
        return nil
    }

    var sentGoAway: Bool {
        switch self.lifecycle {
        case .localGoAwaySent, .bothGoneAway: return true
        case .idle, .active, .remoteGoAwayReceived, .closed: return false
        }
    }

    var receivedGoAway: Bool {
        switch self.lifecycle {
        case .remoteGoAwayReceived, .bothGoneAway: return true
        case .idle, .active, .localGoAwaySent, .closed: return false
        }
    }

    var isQuiescing: Bool {
        switch self.lifecycle {
        case .localGoAwaySent(.quiescing), .bothGoneAway(.quiescing): return true
        default: return false
        }
    }

    /// The connection became active. False if the session had already started or ended.
    mutating func start() -> Bool {
        guard case .idle = self.lifecycle else { return false }
        self.lifecycle = .active
        return true
    }

    /// The streams the session ended with, and the opens that were waiting for a SYN slot.
    struct Closure {
        var streams: [Stream]
        var waitingOpens: Int
    }

    /// The session ends with `error`. Nil if it already had; otherwise every stream is gone
    /// (the owner fails them), as is every waiting open.
    mutating func close(error: YamuxError) -> Closure? {
        if case .closed = self.lifecycle { return nil }
        self.lifecycle = .closed(error)
        let streams = self.streams.values.map(\.stream)
        self.streams.removeAll()
        self.acceptBacklog.removeAll()
        self.inflightSYNs = 0
        self.autoTuneBudget = AutoTuneBudget(limit: self.autoTuneBudget.limit)
        self.payloadTarget = nil
        let waiting = self.waitingOpens
        self.waitingOpens = 0
        return Closure(streams: streams, waitingOpens: waiting)
    }

    // MARK: GoAway

    /// We go away (GoAway(0)), or begin quiescing. Returns the GoAway frame to send, or nil if
    /// one went out already (or the session is not running).
    mutating func goAway(quiescing: Bool = false) -> YamuxFrameHeader? {
        let reason: LocalGoAway = quiescing ? .quiescing : .refusingStreams
        switch self.lifecycle {
        case .idle, .closed:
            return nil
        case .active:
            self.lifecycle = .localGoAwaySent(reason)
        case .remoteGoAwayReceived:
            self.lifecycle = .bothGoneAway(reason)
        case .localGoAwaySent(let previous):
            if quiescing && previous != .quiescing { self.lifecycle = .localGoAwaySent(.quiescing) }
            return nil
        case .bothGoneAway(let previous):
            if quiescing && previous != .quiescing { self.lifecycle = .bothGoneAway(.quiescing) }
            return nil
        }
        return YamuxFrameHeader(type: .goAway, streamID: 0, length: YamuxGoAwayCode.normal.rawValue)
    }

    enum RemoteGoAwayAction: Equatable {
        /// Nothing new (a second GoAway(0), or the session is not running).
        case none
        /// The peer accepts no more streams: fail the waiting opens with `.remoteGoAway` and
        /// tell whoever listens; open streams go on.
        case refuseOpens(waitingOpens: Int)
        /// The peer ended the session.
        case close(YamuxError)
    }

    mutating func receivedGoAway(code: UInt32) -> RemoteGoAwayAction {
        switch code {
        case YamuxGoAwayCode.normal.rawValue:
            switch self.lifecycle {
            case .active: self.lifecycle = .remoteGoAwayReceived
            case .localGoAwaySent(let reason): self.lifecycle = .bothGoneAway(reason)
            case .idle, .remoteGoAwayReceived, .bothGoneAway, .closed: return .none
            }
            let waiting = self.waitingOpens
            self.waitingOpens = 0
            return .refuseOpens(waitingOpens: waiting)
        case YamuxGoAwayCode.protocolError.rawValue:
            return .close(.remoteProtocolError)
        case YamuxGoAwayCode.internalError.rawValue:
            return .close(.remoteInternalError)
        default:
            return .close(.remoteUnknownGoAway(code))
        }
    }

    // MARK: opening streams

    enum OpenDecision {
        /// The session has not started: ask again once it has.
        case deferUntilActive
        /// `acceptBacklog` opens are un-ACKed already: wait for ``resumeWaitingOpen(now:makeStream:)``.
        case waitForSYNSlot
        case failed(YamuxError)
        /// The stream is in the session; send `syn`.
        case opened(Stream, syn: YamuxFrameHeader)
    }

    /// The application opens a stream. `makeStream` makes the owner's stream for the new id.
    mutating func openStream(now: NIODeadline, makeStream: (UInt32) -> Stream) -> OpenDecision {
        switch self.lifecycle {
        case .idle: return .deferUntilActive
        case .closed(let error): return .failed(error)
        case .remoteGoAwayReceived, .bothGoneAway: return .failed(.remoteGoAway)
        case .localGoAwaySent: return .failed(.localGoAway)
        case .active: break
        }
        if self.inflightSYNs >= self.configuration.acceptBacklog {
            self.waitingOpens += 1
            return .waitForSYNSlot
        }
        return self.performOpen(now: now, makeStream: makeStream)
    }

    /// Whether the oldest waiting open may go now (a SYN slot is free).
    var waitingOpenMayStart: Bool {
        self.waitingOpens > 0 && self.inflightSYNs < self.configuration.acceptBacklog
    }

    /// The oldest waiting open goes now (call while ``waitingOpenMayStart``). Our own GoAway
    /// since it began waiting does not stop it; the peer's does (see ``receivedGoAway(code:)``).
    mutating func resumeWaitingOpen(now: NIODeadline, makeStream: (UInt32) -> Stream) -> OpenDecision {
        precondition(self.waitingOpens > 0, "yamux: no open is waiting")
        self.waitingOpens -= 1
        return self.performOpen(now: now, makeStream: makeStream)
    }

    private mutating func performOpen(now: NIODeadline, makeStream: (UInt32) -> Stream) -> OpenDecision {
        if let error = self.closedError { return .failed(error) }
        if self.receivedGoAway { return .failed(.remoteGoAway) }
        guard self.streams.count < self.configuration.maxConcurrentStreams else { return .failed(.tooManyStreams) }
        guard self.nextStreamID < UInt32.max - 1 else { return .failed(.streamsExhausted) }
        let id = self.nextStreamID
        self.nextStreamID += 2
        let stream = makeStream(id)
        var state = StreamState(
            stream: stream,
            lifecycle: StreamStateMachine(outbound: true),
            flow: StreamFlowController(maxStreamWindow: self.configuration.maxStreamWindowSize),
            holdsSYNSlot: true,
            awaitingAccept: false
        )
        let delta = Self.openingWindowDelta(&state.flow, now: now, budget: &self.autoTuneBudget)
        self.streams[id] = state
        self.inflightSYNs += 1
        return .opened(stream, syn: YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: id, length: delta))
    }

    /// Whether `id` is our open that the peer has not acknowledged yet (its open timer runs).
    func isAwaitingACK(_ id: UInt32) -> Bool {
        self.streams[id]?.lifecycle.state == .synSent
    }

    // MARK: accepting streams

    enum AcceptDecision {
        /// Hand `stream` to the application, and send `ack` (exactly one per inbound stream).
        case accepted(Stream, ack: YamuxFrameHeader)
        /// None waits now; more may come.
        case wait
        /// No stream will come any more: the session ended normally, or we went away and the
        /// backlog is drained.
        case noMoreStreams
        /// The session ended in error.
        case failed(YamuxError)
    }

    /// An application asks for the next inbound stream.
    mutating func acceptStream(now: NIODeadline) -> AcceptDecision {
        if let id = self.acceptBacklog.popFirst() {
            var budget = self.autoTuneBudget
            let (stream, delta) = self.updateStream(at: self.streams.index(forKey: id)!) { state in
                state.awaitingAccept = false
                state.lifecycle.sentACK()
                return (state.stream, Self.openingWindowDelta(&state.flow, now: now, budget: &budget))
            }
            self.autoTuneBudget = budget
            return .accepted(stream, ack: YamuxFrameHeader(type: .windowUpdate, flags: .ack, streamID: id, length: delta))
        }
        if let error = self.closedError {
            switch error.code {
            case .sessionClosed, .connectionClosed, .remoteGoAway: return .noMoreStreams
            default: return .failed(error)
            }
        }
        // We refuse new streams, so once the backlog is drained there will be no more.
        return self.sentGoAway ? .noMoreStreams : .wait
    }

    /// The window delta a SYN or ACK carries: what the stream's receive window holds beyond
    /// the initial 256 KiB.
    private static func openingWindowDelta(
        _ flow: inout StreamFlowController,
        now: NIODeadline,
        budget: inout AutoTuneBudget
    ) -> UInt32 {
        flow.windowUpdate(force: true, now: now, rtt: nil, budget: &budget, maxAutoTuned: nil)!
    }

    // MARK: streams ending

    /// Forgets a stream: its SYN slot, its place in the accept backlog, its auto-tuned window.
    @discardableResult
    mutating func removeStream(_ id: UInt32) -> StreamState? {
        guard let state = self.streams.removeValue(forKey: id) else { return nil }
        self.autoTuneBudget.giveBack(state.flow.autoTuneGrowth)
        if state.holdsSYNSlot { self.inflightSYNs -= 1 }
        if state.awaitingAccept, let index = self.acceptBacklog.firstIndex(of: id) {
            self.acceptBacklog.remove(at: index)
        }
        if self.payloadTarget?.streamID == id { self.payloadTarget = nil }
        return state
    }

    /// We reset the stream (the application asked, it lingered too long after its close, or
    /// data came that nobody will read). Returns the RST to send; nil if the stream is gone
    /// already.
    mutating func resetStream(_ stream: Stream) -> YamuxFrameHeader? {
        guard self.updateStream(stream, { _ in true }) != nil else { return nil }
        let id = stream.streamID
        self.removeStream(id)
        return YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: id, length: 0)
    }

    /// The application closed the stream's channel: what it had not read yet never will be,
    /// so it no longer holds the window back. False if the stream is gone.
    mutating func streamClosedByApplication(_ stream: Stream) -> Bool {
        self.updateStream(stream) { state in
            state.flow.dropBuffered()
            return true
        } ?? false
    }

    /// Whether `stream` is (still) in the session; a stream that ended is not, even if a new
    /// one has its id.
    func contains(_ stream: Stream) -> Bool {
        self.streams[stream.streamID]?.stream === stream
    }

    /// `body` on the state of the stream at `index`, in place. (Reading
    /// `streams.values[index].field` copies the whole entry, its stream's reference
    /// included, on every read: in the per-frame paths that cost more than the lookup.)
    mutating func updateStream<Result>(
        at index: Dictionary<UInt32, StreamState>.Index,
        _ body: (inout StreamState) -> Result
    ) -> Result {
        body(&self.streams.values[index])
    }

    /// `body` on the state of `stream`, in place; nil without calling it when the stream is
    /// not in the session (any more). One lookup.
    mutating func updateStream<Result>(_ stream: Stream, _ body: (inout StreamState) -> Result?) -> Result? {
        guard let index = self.streams.index(forKey: stream.streamID) else { return nil }
        return self.updateStream(at: index) { state in
            state.stream === stream ? body(&state) : nil
        }
    }

    /// Whether a quiescing session may close now: no stream waits to be accepted, and
    /// `isInUse` says no stream's application uses it.
    func quiescedAndIdle(isInUse: (Stream) -> Bool) -> Bool {
        guard self.isQuiescing, self.acceptBacklog.isEmpty else { return false }
        return !self.streams.values.contains { isInUse($0.stream) }
    }
}

/// What the session's state machine needs to know of a stream it keeps: its id, and that it
/// is an object, so that a stream that ended can be told from a new one with the same id.
protocol YamuxStreamIdentity: AnyObject {
    var streamID: UInt32 { get }
}

// MARK: - frames from the peer

// The frames the peer sends on streams (window updates, data headers, payloads, FIN, RST),
// as hashicorp/yamux takes them.

extension YamuxSessionStateMachine {
    /// What a received FIN did to its stream.
    enum FINEffect: Hashable {
        case none
        /// The peer will send no more: end of input after what is buffered.
        case halfClosed
        /// Both sides are done: the stream is gone from the session.
        case fullyClosed
    }

    /// What the owner does for a window update or data header on a known stream, in this order.
    struct StreamFrameEffects: Hashable {
        /// A new inbound stream waits in the accept backlog: serve any waiting accept.
        var openedInbound = false
        /// The peer acknowledged our SYN: the stream's open timer can go, and a SYN slot may
        /// have freed (see ``waitingOpenMayStart``).
        var acknowledged = false
        /// The peer granted more window: queued writes may go out.
        var sendWindowGrew = false
        /// A payload follows for this stream (see ``receivedPayload(last:)``).
        var payloadFollows = false
        /// The stream carried data for the first time in the writer's early-flush epoch.
        var firstDataInFlushEpoch = false
        /// A FIN on a frame without payload (on a data frame, it applies once the payload is in).
        var fin: FINEffect = .none
    }

    enum StreamFrameAction {
        /// A SYN we refuse (we went away, a limit, or a nonsense id): send `rst` as a control
        /// frame (the peer provokes it); later frames for the id are discarded as unknown, as
        /// hashicorp does.
        case refuse(rst: YamuxFrameHeader)
        /// A frame for a stream the session does not know (likely one we reset): drop it.
        case discard
        /// The peer broke the protocol: close the session with GoAway(protocol error).
        case protocolError(YamuxError)
        /// The peer reset the stream; it is gone from the session. Fail it.
        case peerReset(Stream)
        case update(Stream, StreamFrameEffects)
    }

    /// What a stream header did to its entry, for the session to follow up on.
    private enum HeaderOutcome {
        case payloadFollows(Stream)
        case done(Stream)
        case protocolError(YamuxError)
    }

    /// A window update, or the header of a data frame. `makeStream` makes the owner's stream
    /// for a SYN the session accepts.
    mutating func receivedStreamHeader(
        _ header: YamuxFrameHeader,
        flushEpoch: UInt64,
        makeStream: (UInt32) -> Stream
    ) -> StreamFrameAction {
        let id = header.streamID
        let flags = header.flags
        self.payloadTarget = nil
        var effects = StreamFrameEffects()

        if flags.contains(.syn) {
            if self.streams[id] != nil { return .protocolError(.duplicateStream(id)) }
            let peersParity: UInt32 = self.role == .client ? 0 : 1
            if self.sentGoAway || id == 0 || id % 2 != peersParity
                || self.streams.count >= self.configuration.maxConcurrentStreams
                || self.acceptBacklog.count >= self.configuration.acceptBacklog
            {
                return .refuse(rst: YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: id, length: 0))
            }
            self.streams[id] = StreamState(
                stream: makeStream(id),
                lifecycle: StreamStateMachine(outbound: false),
                flow: StreamFlowController(maxStreamWindow: self.configuration.maxStreamWindowSize),
                holdsSYNSlot: false,
                awaitingAccept: true
            )
            self.acceptBacklog.append(id)
            effects.openedInbound = true
        }

        guard let index = self.streams.index(forKey: id) else { return .discard }

        if flags.contains(.rst) {
            // The length of an RST is ignored (libp2p's go-yamux puts an error code there).
            return .peerReset(self.removeStream(id)!.stream)
        }

        // Everything below touches the entry once, in place; what it decides for the
        // session (a SYN slot freed, a payload to expect, the stream gone) follows after.
        var releasedSYNSlot = false
        let outcome = self.updateStream(at: index) { state -> HeaderOutcome in
            if flags.contains(.ack) {
                effects.acknowledged = state.lifecycle.state == .synSent
                state.lifecycle.receivedACK()
                if state.holdsSYNSlot {
                    state.holdsSYNSlot = false
                    releasedSYNSlot = true
                    effects.acknowledged = true
                }
            }
            if header.type == .data && header.length > 0 {
                guard state.lifecycle.canReceiveData else { return .protocolError(.unexpectedData(id)) }
                guard state.flow.receive(header.length) else { return .protocolError(.windowExceeded(streamID: id)) }
                effects.payloadFollows = true
                effects.firstDataInFlushEpoch = state.countCarriedData(inEpoch: flushEpoch)
                return .payloadFollows(state.stream)
            }
            if header.type == .windowUpdate && header.length > 0 {
                state.flow.grantSend(header.length)
                effects.sendWindowGrew = true
            }
            if flags.contains(.fin) {
                switch state.lifecycle.receivedFIN() {
                case .protocolError: return .protocolError(.unexpectedFIN(id))
                case .halfClosed: effects.fin = .halfClosed
                case .fullyClosed: effects.fin = .fullyClosed
                }
            }
            return .done(state.stream)
        }
        if releasedSYNSlot { self.inflightSYNs -= 1 }
        switch outcome {
        case .protocolError(let error):
            return .protocolError(error)
        case .payloadFollows(let stream):
            self.payloadTarget = (id, stream, flags)
            return .update(stream, effects)
        case .done(let stream):
            if effects.fin == .fullyClosed { self.removeStream(id) }
            return .update(stream, effects)
        }
    }

    /// A piece of the current data frame's payload: the stream it goes to, nil when it is
    /// to be dropped (the stream was unknown, or is gone since the header). With the last
    /// piece come the header's flags, for its FIN (see ``receivedFIN(on:)``).
    mutating func receivedPayload(last: Bool) -> (streamID: UInt32, stream: Stream, flags: YamuxFrameFlags)? {
        guard let target = self.payloadTarget else { return nil }
        if last { self.payloadTarget = nil }
        return target
    }

    enum FINAction {
        /// The stream is gone already.
        case ignored
        case protocolError(YamuxError)
        /// Deliver end of input after the buffered data.
        case halfClosed(Stream)
        /// Deliver end of input; the stream is gone from the session.
        case fullyClosed(Stream)
    }

    /// The FIN of a data frame whose payload is all in.
    mutating func receivedFIN(on stream: Stream) -> FINAction {
        guard let result = self.updateStream(stream, { $0.lifecycle.receivedFIN() }) else { return .ignored }
        switch result {
        case .protocolError:
            return .protocolError(.unexpectedFIN(stream.streamID))
        case .halfClosed:
            return .halfClosed(stream)
        case .fullyClosed:
            self.removeStream(stream.streamID)
            return .fullyClosed(stream)
        }
    }
}

extension YamuxSessionStateMachine.StreamState {
    /// Records that the stream carried data in `epoch`; true the first time in that epoch.
    mutating func countCarriedData(inEpoch epoch: UInt64) -> Bool {
        guard self.flushEpoch != epoch else { return false }
        self.flushEpoch = epoch
        return true
    }
}

// MARK: - windows

// The windows, both ways: what a stream may send, what it credits back once its application
// has read, and the session-wide bound on what nobody has read yet.

extension YamuxSessionStateMachine {
    /// The application of `stream` read `bytes`: the window update to send, if half its
    /// window is free again (nil otherwise, or when the peer will send no more anyway).
    /// `now` and `rtt` drive auto-tuning.
    mutating func consumed(_ bytes: UInt32, by stream: Stream, now: NIODeadline, rtt: TimeAmount?) -> YamuxFrameHeader? {
        let running = self.isRunning
        let autoTune = self.configuration.enableWindowAutoTuning ? self.configuration.maxAutoTunedStreamWindow : nil
        var budget = self.autoTuneBudget
        defer { self.autoTuneBudget = budget }
        let delta = self.updateStream(stream) { state -> UInt32? in
            state.flow.consumed(bytes)
            // No credit before the ACK: the SYN's window is still the peer's to use.
            guard running, !state.lifecycle.remoteHasClosed, state.lifecycle.state != .synReceived else { return nil }
            return state.flow.windowUpdate(force: false, now: now, rtt: rtt, budget: &budget, maxAutoTuned: autoTune)
        }
        guard let delta else { return nil }
        return YamuxFrameHeader(type: .windowUpdate, streamID: stream.streamID, length: delta)
    }

    /// `stream` wants to send `wanted` bytes: how many the peer's window allows now (they
    /// are taken from it), 0 to wait for a window update, nil when the stream may send no
    /// data any more (it sent FIN, was reset, or is gone).
    mutating func reserveSendWindow(for stream: Stream, wanted: Int) -> Int? {
        self.updateStream(stream) { state in
            guard state.lifecycle.canSendData else { return nil }
            let granted = min(wanted, Int(state.flow.sendWindow))
            if granted > 0 { state.flow.sent(UInt32(granted)) }
            return granted
        }
    }

    /// `stream` has data to send in the writer's early-flush epoch `epoch`: nil when the
    /// stream is gone, else whether this is its first data in that epoch.
    mutating func streamCarriesData(_ stream: Stream, flushEpoch epoch: UInt64) -> Bool? {
        self.updateStream(stream) { $0.countCarriedData(inEpoch: epoch) }
    }

    enum FINSendAction {
        /// FIN went out already (or the stream is gone): nothing to send.
        case alreadySent
        /// Send `fin`; the peer may still send.
        case halfClosed(fin: YamuxFrameHeader)
        /// Send `fin`; both sides are done and the stream is gone from the session.
        case fullyClosed(fin: YamuxFrameHeader)
    }

    /// `stream` half-closes (its FIN goes as a window update, as hashicorp sends it).
    mutating func sendFIN(_ stream: Stream) -> FINSendAction {
        let id = stream.streamID
        guard let fullyClosed = self.updateStream(stream, { $0.lifecycle.sentFIN() }) else { return .alreadySent }
        let fin = YamuxFrameHeader(type: .windowUpdate, flags: .fin, streamID: id, length: 0)
        guard fullyClosed else { return .halfClosed(fin: fin) }
        self.removeStream(id)
        return .fullyClosed(fin: fin)
    }

    /// The bytes the streams hold received and unread changed by `delta` (counted by the
    /// streams' channels, which hold them).
    mutating func unreadBytesChanged(by delta: Int) {
        self.unreadBytes += delta
    }

    /// Data the peer sent within its windows took the session past `maxSessionUnreadBytes`:
    /// the application reads too few of the streams the peer fills. The session must end
    /// (with GoAway(internal error)), so memory does not grow with the number of streams.
    var unreadLimitExceeded: Bool {
        self.isRunning && self.unreadBytes > self.configuration.maxSessionUnreadBytes
    }
}
