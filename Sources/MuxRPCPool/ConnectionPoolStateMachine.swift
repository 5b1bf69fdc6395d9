import NIOCore
import MuxRPCTransport

// The endpoint-list methods (the balancer's picks and the attempts' books)
// are in the extension at the end.

/// The pool's bookkeeping, free of I/O, locks and clocks: every event (a
/// caller arrives, a dial ends, a call ends, a session fails, time passes)
/// goes in as a method call and comes out as a decision or a list of
/// ``Actions`` for the pool to carry out after it drops its lock. That keeps
/// the lock short, and every rule testable without sockets.
///
/// Per address it keeps one record: the sessions (connecting, ready,
/// draining), each session's stack of idle streams, the number of calls in
/// flight, a FIFO queue of waiting callers and, when the address is one of a
/// ``MuxRPCClient``'s endpoints, its balancer and breaker state
/// (``EndpointHealth``). A caller is given a *grant*: an idle stream to
/// reuse, or the right to open one more stream on a ready session.
///
/// Keeping a client's endpoints in the same record lets one locked step pick
/// an endpoint and lease a stream on it, and one more return the stream and
/// book the attempt's outcome. A pool used without a client has no endpoint
/// list and pays nothing for it.
///
/// Generic so that tests can drive it with plain values; the pool uses
/// `MuxRPCConnection` and `RPCClient`.
struct ConnectionPoolStateMachine<Address: Hashable, Connection, Stream> {
    struct SessionID: Hashable, Sendable, CustomStringConvertible {
        let rawValue: Int
        var description: String { "session \(rawValue)" }
    }

    struct WaiterID: Hashable, Sendable {
        let rawValue: Int
    }

    struct Limits {
        var maxSessionsPerAddress: Int
        var maxStreamsPerSession: Int
        var maxIdleStreamsPerSession: Int
        var maxConcurrentCallsPerAddress: Int
        var maxWaitersPerAddress: Int
        var failFastWhenBusy: Bool
        var maxIdleTime: TimeAmount
        /// Dial a new session when an address's last ready one fails, at most
        /// once per this interval (nil: never; the next call dials).
        var replacementInterval: TimeAmount? = nil
    }

    /// What a caller may make its call with. Either way the caller now holds
    /// a lease on the session and must end it with ``release(_:stream:reusable:now:)``
    /// (or ``streamOpenFailed(_:now:)``).
    enum Grant {
        /// Reuse this idle stream.
        case idleStream(Stream, Lease)
        /// Open one more stream on this session's connection.
        case newStream(Connection, Lease)

        var lease: Lease {
            switch self {
            case .idleStream(_, let lease), .newStream(_, let lease): lease
            }
        }
    }

    /// A call's claim on a session; returned exactly once.
    struct Lease: Hashable {
        let address: Address
        let session: SessionID
    }

    /// A connection the pool must dial; report the result with
    /// ``connected(_:connection:now:)`` or ``connectFailed(_:now:)``.
    struct Dial {
        let address: Address
        let session: SessionID
    }

    enum AcquireDecision {
        case granted(Grant)
        /// Wait for ``Actions/grants`` to name this waiter; start `dial` first if given.
        case wait(WaiterID, dial: Dial?)
        case failed(MuxRPCError)
    }

    /// What the pool must do after an event, outside its lock.
    struct Actions {
        var grants: [(WaiterID, Grant)] = []
        var failedWaiters: [(WaiterID, MuxRPCError)] = []
        var dials: [Dial] = []
        var streamsToClose: [Stream] = []
        var connectionsToClose: [Connection] = []
    }

    private enum Phase {
        case connecting
        case ready(Connection)
        /// The peer sent GoAway: no new streams; closed when its last call ends.
        case draining(Connection)
    }

    private struct Session {
        let id: SessionID
        var phase: Phase
        /// Most recently returned last, so the warmest stream is reused first.
        var idle: [Stream] = []
        /// Calls holding a lease on this session (each on a stream of it).
        var leases = 0
        var lastUsed: NIODeadline

        var isReady: Bool {
            if case .ready = phase { true } else { false }
        }
        var isConnecting: Bool {
            if case .connecting = phase { true } else { false }
        }
        var connection: Connection? {
            switch phase {
            case .connecting: nil
            case .ready(let connection), .draining(let connection): connection
            }
        }
    }

    /// Everything known of one address: the pool's sessions and callers and,
    /// for a client's endpoint, the balancer's and the breaker's books.
    private struct AddressState {
        let address: Address
        var sessions: [Session] = []
        var waiters = CircularBuffer<WaiterID>()
        /// Calls holding a lease on one of the address's sessions. The pool's
        /// concurrency limit applies to it; the balancer adds the waiters and
        /// the attempts still in their interceptors (``load``).
        var callsInFlight = 0
        /// When a failed session was last replaced in the background.
        var lastReplacement: NIODeadline?
        /// The latest round-trip time a health check measured.
        var roundTripTime: TimeAmount?
        /// Set while the address is on the client's endpoint list. Kept in
        /// a box of its own (copied on write, so the record stays a value):
        /// events move a record out of its slot and back, and the box keeps
        /// that move as small as it was before the record held a client's
        /// books.
        var health: EndpointHealth? {
            _read {
                if let healthBox { yield healthBox.value } else { yield nil }
            }
            _modify {
                if healthBox == nil {
                    var added: EndpointHealth?
                    yield &added
                    if let added { healthBox = HealthBox(added) }
                } else {
                    if !isKnownUniquelyReferenced(&healthBox!) { healthBox = HealthBox(healthBox!.value) }
                    yield &healthBox!.value
                    if healthBox!.value == nil { healthBox = nil }
                }
            }
        }
        /// Nil exactly when ``health`` is.
        private var healthBox: HealthBox?

        /// Whether the address is on the client's endpoint list; cheaper
        /// than reading ``health``.
        var isEndpoint: Bool { healthBox != nil }

        init(address: Address) {
            self.address = address
        }

        /// No session, caller or call: nothing of the pool's.
        var isIdle: Bool { sessions.isEmpty && waiters.isEmpty && callsInFlight == 0 }
        var isEmpty: Bool { !isEndpoint && isIdle }

        /// The calls this client has on the address, as the balancer and
        /// ``MuxRPCEndpointStatistics/callsInFlight`` count them: leased,
        /// waiting for a stream, or picked and still in the interceptors.
        var load: Int { callsInFlight + waiters.count + (healthBox?.value?.attemptsBeforePool ?? 0) }

        func index(of id: SessionID) -> Int? {
            sessions.firstIndex { $0.id == id }
        }
    }

    private final class HealthBox {
        var value: EndpointHealth?
        init(_ value: EndpointHealth?) { self.value = value }
    }

    let limits: Limits
    /// The records, each in a slot that stays its own while the record
    /// lives, so that the endpoint list can name them by index: a pick reads
    /// them without hashing an address. A freed slot is reused.
    private var slots: [AddressState?] = []
    private var slotOfAddress: [Address: Int] = [:]
    private var freeSlots: [Int] = []
    private var waiterAddresses: [WaiterID: Address] = [:]
    private var nextSessionID = 0
    private var nextWaiterID = 0
    private(set) var isShuttingDown = false
    /// The grace period ended: leases still out are forgotten, and their
    /// late returns only close their streams.
    private var hasClosedEverything = false
    private(set) var counters = ConnectionPoolStatistics()
    /// The breakers' and the latency average's settings, when a client keeps
    /// its endpoints here; nil for a pool on its own.
    let endpointPolicy: EndpointPolicy?
    /// The slots of the client's endpoints, in the resolver's order.
    private var endpointSlots: [Int] = []
    /// Whether the client gave an endpoint list yet.
    private(set) var hasEndpointList = false
    /// The client is shutting down: no more picks.
    var isClientShutDown = false
    /// Scratch for picks, kept with its memory between calls.
    private var candidates: [Int] = []
    private var loads: [EndpointLoad] = []

    init(limits: Limits, endpointPolicy: EndpointPolicy? = nil) {
        self.limits = limits
        self.endpointPolicy = endpointPolicy
    }

    // MARK: Callers

    /// A caller wants a stream to `address`.
    mutating func acquire(_ address: Address, now: NIODeadline) -> AcquireDecision {
        if isShuttingDown {
            return .failed(MuxRPCError(code: .shutDown, message: "the pool is shutting down"))
        }
        return acquire(inSlot: slot(for: address), now: now)
    }

    private mutating func acquire(inSlot slot: Int, now: NIODeadline) -> AcquireDecision {
        var decision: AcquireDecision?
        modify(slot: slot) { machine, state in decision = machine.acquire(&state, now: now) }
        return decision!
    }

    private mutating func acquire(_ state: inout AddressState, now: NIODeadline) -> AcquireDecision {
        let address = state.address
        // Callers already queued go first.
        if state.waiters.isEmpty, state.callsInFlight < limits.maxConcurrentCallsPerAddress,
           let grant = takeGrant(address, &state, now: now) {
            return .granted(grant)
        }
        if state.waiters.count >= limits.maxWaitersPerAddress {
            return .failed(MuxRPCError(
                code: .tooManyWaiters, message: "\(state.waiters.count) callers already wait for this server"
            ))
        }
        let dial = state.callsInFlight < limits.maxConcurrentCallsPerAddress
            ? startDialIfNeeded(address, &state, now: now) : nil
        let dialling = state.sessions.contains { $0.isConnecting }
        if !dialling, limits.failFastWhenBusy {
            return .failed(MuxRPCError(
                code: .overloaded, message: "all \(state.callsInFlight) calls this server may have are in flight"
            ))
        }
        let waiter = WaiterID(rawValue: nextWaiterID)
        nextWaiterID += 1
        state.waiters.append(waiter)
        waiterAddresses[waiter] = address
        return .wait(waiter, dial: dial)
    }

    /// A waiter gave up (deadline, cancellation). False if it is no longer
    /// waiting: it was granted or failed already, and that outcome stands.
    mutating func removeWaiter(_ waiter: WaiterID) -> Bool {
        guard let address = waiterAddresses.removeValue(forKey: waiter) else { return false }
        modify(address) { _, state in
            if let index = state.waiters.firstIndex(of: waiter) { state.waiters.remove(at: index) }
        }
        return true
    }

    /// A call is over. `stream` is the stream it used (nil if it never got
    /// one); `reusable` says whether it may carry another call.
    mutating func release(_ lease: Lease, stream: Stream?, reusable: Bool, now: NIODeadline) -> Actions {
        var actions = Actions()
        guard !hasClosedEverything, slotOfAddress[lease.address] != nil else {
            // Everything was closed at the end of a shutdown's grace period.
            if let stream { close(stream, into: &actions) }
            return actions
        }
        modify(lease.address) { machine, state in
            state.callsInFlight -= 1
            guard let index = state.index(of: lease.session) else {
                // The session already left the pool (it failed or was closed).
                if let stream { machine.close(stream, into: &actions) }
                return
            }
            state.sessions[index].leases -= 1
            state.sessions[index].lastUsed = now
            if let stream {
                if reusable, !machine.isShuttingDown, state.sessions[index].isReady,
                   state.sessions[index].idle.count < machine.limits.maxIdleStreamsPerSession {
                    state.sessions[index].idle.append(stream)
                } else {
                    machine.close(stream, into: &actions)
                }
            }
            if state.sessions[index].leases == 0, !state.sessions[index].isReady || machine.isShuttingDown {
                machine.remove(sessionAt: index, &state, into: &actions)
            }
            machine.serveWaiters(lease.address, &state, now: now, into: &actions)
        }
        return actions
    }

    /// A caller granted an idle stream wants a stream of its own instead (a
    /// streaming call, which never goes back to the free list): the idle
    /// stream goes back, the lease stays, and the caller opens its stream on
    /// the session's connection, which this returns. Nil when the session
    /// has left the pool since; the lease then ends as with any release.
    mutating func returnIdleKeepingLease(_ stream: Stream, _ lease: Lease) -> Connection? {
        var connection: Connection?
        modify(lease.address) { machine, state in
            guard let index = state.index(of: lease.session), state.sessions[index].isReady else { return }
            state.sessions[index].idle.append(stream)
            // The stream the caller opens instead is counted as opened.
            machine.counters.streamsReused -= 1
            machine.counters.streamsOpened += 1
            connection = state.sessions[index].connection
        }
        return connection
    }

    /// A streaming call is over: its lease ends, and the stream it opened
    /// itself (closed by the call, never pooled) is counted as closed.
    mutating func releaseStreamingCall(_ lease: Lease, now: NIODeadline) -> Actions {
        counters.streamsClosed += 1
        return release(lease, stream: nil, reusable: false, now: now)
    }

    /// Opening a stream on the granted session failed: the lease ends and the
    /// session, which can open no more, leaves the pool.
    mutating func streamOpenFailed(_ lease: Lease, now: NIODeadline) -> Actions {
        var actions = Actions()
        if hasClosedEverything { return actions }
        modify(lease.address) { machine, state in
            state.callsInFlight -= 1
            if let index = state.index(of: lease.session) {
                state.sessions[index].leases -= 1
                machine.remove(sessionAt: index, &state, into: &actions)
            }
            machine.serveWaiters(lease.address, &state, now: now, into: &actions)
        }
        return actions
    }

    // MARK: Sessions

    /// A dial succeeded.
    mutating func connected(_ dial: Dial, connection: Connection, now: NIODeadline) -> Actions {
        var actions = Actions()
        counters.sessionsOpened += 1
        guard !isShuttingDown, let index = self[dial.address]?.index(of: dial.session) else {
            // Shut down (or closed) while the dial was under way.
            modify(dial.address) { _, state in state.sessions.removeAll { $0.id == dial.session } }
            actions.connectionsToClose.append(connection)
            counters.sessionsClosed += 1
            return actions
        }
        modify(dial.address) { machine, state in
            state.sessions[index].phase = .ready(connection)
            state.sessions[index].lastUsed = now
            machine.serveWaiters(dial.address, &state, now: now, into: &actions)
        }
        return actions
    }

    /// A dial failed. Unless a ready session to the address remains, every
    /// waiter fails with it (they all came while it was tried, and a
    /// draining session takes no new calls); otherwise they go on waiting
    /// for room on the ready sessions. Either way no new dial starts here:
    /// redialling a refusing server at once would loop.
    mutating func connectFailed(_ dial: Dial, error: MuxRPCError, now: NIODeadline) -> Actions {
        var actions = Actions()
        counters.connectFailures += 1
        modify(dial.address) { machine, state in
            state.sessions.removeAll { $0.id == dial.session }
            if state.sessions.contains(where: \.isReady) {
                machine.serveWaiters(dial.address, &state, now: now, mayDial: false, into: &actions)
            } else {
                while let waiter = state.waiters.popFirst() {
                    machine.waiterAddresses[waiter] = nil
                    actions.failedWaiters.append((waiter, error))
                }
            }
        }
        return actions
    }

    /// The session ended (EOF, keepalive timeout, protocol error, closed by
    /// us): it leaves the pool at once; its calls in flight fail on their own.
    ///
    /// When it was the address's last ready session, a new one is dialled
    /// in the background (at most once per `replacementInterval`), so the
    /// next call finds a session ready.
    mutating func sessionClosed(_ lease: Lease, now: NIODeadline) -> Actions {
        var actions = Actions()
        modify(lease.address) { machine, state in
            guard let index = state.index(of: lease.session) else { return }
            let wasReady = state.sessions[index].isReady
            machine.remove(sessionAt: index, &state, into: &actions)
            machine.serveWaiters(lease.address, &state, now: now, into: &actions)
            if wasReady, let interval = machine.limits.replacementInterval,
               !state.sessions.contains(where: { $0.isReady || $0.isConnecting }),
               state.lastReplacement.map({ now - $0 >= interval }) ?? true,
               let dial = machine.startDialIfNeeded(lease.address, &state, now: now) {
                state.lastReplacement = now
                actions.dials.append(dial)
            }
        }
        return actions
    }

    /// The address is leaving (its endpoint was removed): every session
    /// drains as after GoAway, closing when its last call ends.
    mutating func drain(_ address: Address, now: NIODeadline) -> Actions {
        var actions = Actions()
        drain(address, now: now, into: &actions)
        return actions
    }

    private mutating func drain(_ address: Address, now: NIODeadline, into actions: inout Actions) {
        modify(address) { machine, state in
            var index = state.sessions.startIndex
            while index < state.sessions.endIndex {
                guard case .ready(let connection) = state.sessions[index].phase else {
                    index += 1
                    continue
                }
                state.sessions[index].phase = .draining(connection)
                machine.closeIdleStreams(of: &state.sessions[index], into: &actions)
                if state.sessions[index].leases == 0 {
                    machine.remove(sessionAt: index, &state, into: &actions)
                } else {
                    index += 1
                }
            }
        }
    }

    /// The ready sessions, for health checks.
    var readySessions: [(Lease, Connection)] {
        slots.flatMap { state -> [(Lease, Connection)] in
            guard let state else { return [] }
            return state.sessions.compactMap { session in
                guard case .ready(let connection) = session.phase else { return nil }
                return (Lease(address: state.address, session: session.id), connection)
            }
        }
    }

    /// Records a health check's round-trip time.
    mutating func recordRoundTripTime(_ rtt: TimeAmount, for address: Address) {
        modify(address) { _, state in state.roundTripTime = rtt }
    }

    /// The latest round-trip time measured to `address`, if any.
    func roundTripTime(to address: Address) -> TimeAmount? {
        self[address]?.roundTripTime
    }

    /// The peer sent GoAway: no new streams on the session, which closes when
    /// its last call ends; new calls go to another session.
    mutating func sessionDraining(_ lease: Lease, now: NIODeadline) -> Actions {
        var actions = Actions()
        modify(lease.address) { machine, state in
            guard let index = state.index(of: lease.session), case .ready(let connection) = state.sessions[index].phase else {
                return
            }
            state.sessions[index].phase = .draining(connection)
            machine.closeIdleStreams(of: &state.sessions[index], into: &actions)
            if state.sessions[index].leases == 0 {
                machine.remove(sessionAt: index, &state, into: &actions)
            }
            machine.serveWaiters(lease.address, &state, now: now, into: &actions)
        }
        return actions
    }

    /// Closes the ready sessions no call has used for `maxIdleTime`, and
    /// forgets addresses with nothing left.
    mutating func reap(now: NIODeadline) -> Actions {
        var actions = Actions()
        for slot in slots.indices where slots[slot] != nil {
            modify(slot: slot) { machine, state in
                var index = state.sessions.startIndex
                while index < state.sessions.endIndex {
                    let session = state.sessions[index]
                    if session.isReady, session.leases == 0, now - session.lastUsed >= machine.limits.maxIdleTime {
                        machine.counters.sessionsReaped += 1
                        machine.remove(sessionAt: index, &state, into: &actions)
                    } else {
                        index += 1
                    }
                }
            }
        }
        return actions
    }

    // MARK: Shutdown

    /// No new calls from now on: waiters fail, idle streams close, sessions
    /// without calls close; the others close as their last call ends.
    mutating func beginShutdown() -> Actions {
        var actions = Actions()
        isShuttingDown = true
        for slot in slots.indices where slots[slot] != nil {
            modify(slot: slot) { machine, state in
                while let waiter = state.waiters.popFirst() {
                    machine.waiterAddresses[waiter] = nil
                    actions.failedWaiters.append((waiter, MuxRPCError(code: .shutDown, message: "the pool shut down while the call waited for a stream")))
                }
                var index = state.sessions.startIndex
                while index < state.sessions.endIndex {
                    if state.sessions[index].leases == 0, !state.sessions[index].isConnecting {
                        machine.remove(sessionAt: index, &state, into: &actions)
                    } else {
                        machine.closeIdleStreams(of: &state.sessions[index], into: &actions)
                        index += 1
                    }
                }
            }
        }
        return actions
    }

    /// True once shutting down and no call or session is left.
    var isDrained: Bool {
        isShuttingDown && slots.allSatisfy { $0?.isIdle ?? true }
    }

    /// The end of the grace period: every session still open closes now.
    mutating func closeEverything() -> Actions {
        var actions = Actions()
        hasClosedEverything = true
        for slot in slots.indices where slots[slot] != nil {
            modify(slot: slot) { machine, state in
                while !state.sessions.isEmpty {
                    machine.remove(sessionAt: state.sessions.startIndex, &state, into: &actions)
                }
                state.callsInFlight = 0
            }
        }
        return actions
    }

    // MARK: Statistics

    /// The counters, plus the gauges read off the current state.
    var statistics: ConnectionPoolStatistics {
        var statistics = counters
        for case let state? in slots {
            statistics.callsInFlight += state.callsInFlight
            statistics.waiters += state.waiters.count
            for session in state.sessions {
                switch session.phase {
                case .connecting: statistics.connectingSessions += 1
                case .ready: statistics.readySessions += 1
                case .draining: statistics.drainingSessions += 1
                }
                statistics.idleStreams += session.idle.count
                statistics.busyStreams += session.leases
            }
        }
        return statistics
    }

    // MARK: Internals

    /// Runs `body` on the address's state, taken out of its slot meanwhile,
    /// and frees the slot once the state is empty. `body` gets the machine
    /// as a parameter: a closure capturing `self` would overlap this mutation.
    private mutating func modify(_ address: Address, _ body: (inout Self, inout AddressState) -> Void) {
        guard let slot = slotOfAddress[address] else { return }
        modify(slot: slot, body)
    }

    private mutating func modify(slot: Int, _ body: (inout Self, inout AddressState) -> Void) {
        guard var state = slots[slot].take() else { return }
        body(&self, &state)
        if state.isEmpty {
            slotOfAddress[state.address] = nil
            freeSlots.append(slot)
        } else {
            slots[slot] = state
        }
    }

    /// The address's slot, made (empty) if it has none.
    private mutating func slot(for address: Address) -> Int {
        if let slot = slotOfAddress[address] { return slot }
        let state = AddressState(address: address)
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = state
        } else {
            slot = slots.count
            slots.append(state)
        }
        slotOfAddress[address] = slot
        return slot
    }

    private subscript(address: Address) -> AddressState? {
        slotOfAddress[address].flatMap { slots[$0] }
    }

    /// A grant from the first ready session with an idle stream, or else the
    /// first with room for another stream. Filling sessions in order lets the
    /// later ones go idle and be reaped when load falls.
    private mutating func takeGrant(_ address: Address, _ state: inout AddressState, now: NIODeadline) -> Grant? {
        if let index = state.sessions.firstIndex(where: { $0.isReady && !$0.idle.isEmpty }) {
            let stream = state.sessions[index].idle.removeLast()
            state.sessions[index].leases += 1
            state.sessions[index].lastUsed = now
            state.callsInFlight += 1
            counters.streamsReused += 1
            return .idleStream(stream, Lease(address: address, session: state.sessions[index].id))
        }
        if let index = state.sessions.firstIndex(where: {
            $0.isReady && $0.leases + $0.idle.count < limits.maxStreamsPerSession
        }), let connection = state.sessions[index].connection {
            state.sessions[index].leases += 1
            state.sessions[index].lastUsed = now
            state.callsInFlight += 1
            counters.streamsOpened += 1
            return .newStream(connection, Lease(address: address, session: state.sessions[index].id))
        }
        return nil
    }

    /// Starts a dial when callers need a stream, no session has room, none is
    /// being dialled and the address may have one more session.
    private mutating func startDialIfNeeded(_ address: Address, _ state: inout AddressState, now: NIODeadline) -> Dial? {
        guard !isShuttingDown, !state.sessions.contains(where: { $0.isConnecting }) else { return nil }
        let live = state.sessions.count { if case .draining = $0.phase { false } else { true } }
        guard live < limits.maxSessionsPerAddress else { return nil }
        let hasRoom = state.sessions.contains { $0.isReady && $0.leases + $0.idle.count < limits.maxStreamsPerSession }
        guard !hasRoom else { return nil }
        let id = SessionID(rawValue: nextSessionID)
        nextSessionID += 1
        state.sessions.append(Session(id: id, phase: .connecting, lastUsed: now))
        counters.dials += 1
        return Dial(address: address, session: id)
    }

    /// Hands out what the address can give to its waiters, in order, and
    /// dials another session if they still wait for room.
    private mutating func serveWaiters(
        _ address: Address,
        _ state: inout AddressState,
        now: NIODeadline,
        mayDial: Bool = true,
        into actions: inout Actions
    ) {
        while !state.waiters.isEmpty, state.callsInFlight < limits.maxConcurrentCallsPerAddress,
              let grant = takeGrant(address, &state, now: now) {
            let waiter = state.waiters.removeFirst()
            waiterAddresses[waiter] = nil
            actions.grants.append((waiter, grant))
        }
        if mayDial, !state.waiters.isEmpty, state.callsInFlight < limits.maxConcurrentCallsPerAddress,
           let dial = startDialIfNeeded(address, &state, now: now) {
            actions.dials.append(dial)
        }
    }

    private mutating func close(_ stream: Stream, into actions: inout Actions) {
        actions.streamsToClose.append(stream)
        counters.streamsClosed += 1
    }

    private mutating func closeIdleStreams(of session: inout Session, into actions: inout Actions) {
        actions.streamsToClose += session.idle
        counters.streamsClosed += session.idle.count
        session.idle.removeAll()
    }

    private mutating func remove(sessionAt index: Int, _ state: inout AddressState, into actions: inout Actions) {
        var session = state.sessions.remove(at: index)
        closeIdleStreams(of: &session, into: &actions)
        if let connection = session.connection {
            actions.connectionsToClose.append(connection)
            counters.sessionsClosed += 1
        }
    }
}

extension ConnectionPoolStateMachine.Grant: Sendable where Connection: Sendable, Stream: Sendable, Address: Sendable {}
extension ConnectionPoolStateMachine.Lease: Sendable where Address: Sendable {}
extension ConnectionPoolStateMachine.Dial: Sendable where Address: Sendable {}

// MARK: - A client's endpoints

extension ConnectionPoolStateMachine where Address == SocketAddress {
    /// Takes a resolver's new list. Endpoints that stay keep their load,
    /// latency and breaker; those that left drain (as ``drain(_:now:)``)
    /// and are returned, in the old list's order.
    mutating func replaceEndpoints(with endpoints: [MuxRPCEndpoint], now: NIODeadline) -> (removed: [Address], actions: Actions) {
        guard let policy = endpointPolicy else { preconditionFailure("the pool keeps no endpoint list") }
        hasEndpointList = true
        var kept: [Int] = []
        for endpoint in endpoints {
            let slot = slot(for: endpoint.address)
            if kept.contains(slot) { continue }
            if !slots[slot]!.isEndpoint {
                slots[slot]!.health = EndpointHealth(endpoint: endpoint, policy: policy)
            } else {
                slots[slot]!.health!.endpoint = endpoint
            }
            kept.append(slot)
        }
        var removed: [Address] = []
        var actions = Actions()
        for slot in endpointSlots where !kept.contains(slot) {
            guard let address = slots[slot]?.address else { continue }
            removed.append(address)
            modify(slot: slot) { _, state in state.health = nil }
            drain(address, now: now, into: &actions)
        }
        endpointSlots = kept
        return (removed, actions)
    }

    /// Chooses the endpoint for an attempt that goes through interceptors
    /// before it asks for a stream; it counts as the endpoint's load until
    /// ``finishAttempt(at:_:latency:at:releasingPick:)``.
    mutating func pickEndpoint(
        with balancer: any LoadBalancer,
        excluding excluded: [Address],
        at now: ContinuousClock.Instant
    ) throws(MuxRPCError) -> Address {
        let slot = try choose(with: balancer, excluding: excluded, at: now)
        slots[slot]!.health!.attemptsBeforePool += 1
        return slots[slot]!.address
    }

    /// Chooses the endpoint for an attempt and asks for a stream to it, in
    /// one step. With `deadlinePassed` the attempt ends at once (the pick
    /// and its neutral end are booked, as for any attempt).
    mutating func pickAndAcquire(
        with balancer: any LoadBalancer,
        excluding excluded: [Address],
        at instant: ContinuousClock.Instant,
        now: NIODeadline,
        deadlinePassed: Bool
    ) throws(MuxRPCError) -> (address: Address, decision: AcquireDecision) {
        let slot = try choose(with: balancer, excluding: excluded, at: instant)
        let address = slots[slot]!.address
        if deadlinePassed {
            _ = slots[slot]!.health!.record(.neutral, latency: .zero, at: instant)
            return (address, .failed(MuxRPCError(code: .deadlineExceeded, message: "the deadline passed before the call began")))
        }
        if isShuttingDown {
            return (address, .failed(MuxRPCError(code: .shutDown, message: "the pool is shutting down")))
        }
        return (address, acquire(inSlot: slot, now: now))
    }

    /// Books an attempt's end on its endpoint; `releasingPick` for one
    /// picked with ``pickEndpoint(with:excluding:at:)``. An endpoint removed
    /// meanwhile is ignored.
    mutating func finishAttempt(
        at address: Address,
        _ outcome: AttemptOutcome,
        latency: Duration?,
        at now: ContinuousClock.Instant,
        releasingPick: Bool
    ) {
        guard let slot = slotOfAddress[address], slots[slot]!.isEndpoint else { return }
        if releasingPick { slots[slot]!.health!.attemptsBeforePool -= 1 }
        guard slots[slot]!.health!.record(outcome, latency: latency, at: now), let policy = endpointPolicy else { return }
        let open = endpointSlots.count { slots[$0]!.health!.breaker.isOpen }
        let allowed = endpointSlots.count * policy.breaker.maxEjectionPercent / 100
        if open < allowed {
            slots[slot]!.health!.breaker.open(at: now)
        } else {
            slots[slot]!.health!.breaker.stayClosed()
        }
    }

    /// A picked attempt reached the pool (`true`: its lease or place in the
    /// queue now counts it) or left it (`false`: it counts as picked again).
    mutating func movePick(_ address: Address, toPool: Bool) {
        guard let slot = slotOfAddress[address], slots[slot]!.isEndpoint else { return }
        slots[slot]!.health!.attemptsBeforePool += toPool ? -1 : 1
    }

    /// What the client knows of each endpoint now, in the resolver's order.
    var endpointStatistics: [MuxRPCEndpointStatistics] {
        endpointSlots.map { slots[$0]!.health!.statistics(callsInFlight: slots[$0]!.load) }
    }

    /// Among the endpoints whose breaker admits calls, preferring ones not
    /// in `excluded` (tried already by this call), the slot of the one the
    /// balancer picks. A half-open breaker's pick is its probe.
    private mutating func choose(
        with balancer: any LoadBalancer,
        excluding excluded: [Address],
        at now: ContinuousClock.Instant
    ) throws(MuxRPCError) -> Int {
        if isClientShutDown { throw MuxRPCError(code: .shutDown, message: "the client is shutting down") }
        guard !endpointSlots.isEmpty, let policy = endpointPolicy else {
            throw MuxRPCError(code: .noEndpoints, message: hasEndpointList ? "the resolver's list is empty" : "no endpoint list yet")
        }
        // Admitted endpoints not tried yet, or else all admitted ones.
        candidates.removeAll(keepingCapacity: true)
        for slot in endpointSlots where slots[slot]!.health!.breaker.admits(at: now) || !policy.breaker.isEnabled {
            candidates.append(slot)
        }
        if !excluded.isEmpty, candidates.contains(where: { !excluded.contains(slots[$0]!.address) }) {
            candidates.removeAll { excluded.contains(slots[$0]!.address) }
        }
        guard !candidates.isEmpty else {
            throw MuxRPCError(code: .allEndpointsUnavailable, message: "the circuit breakers of all \(endpointSlots.count) endpoints are open")
        }
        let chosen: Int
        if candidates.count == 1 {
            // Whatever the balancer says, it must be this one.
            chosen = candidates[0]
        } else {
            loads.removeAll(keepingCapacity: true)
            for slot in candidates {
                loads.append(EndpointLoad(
                    endpoint: slots[slot]!.health!.endpoint,
                    callsInFlight: slots[slot]!.load,
                    latency: slots[slot]!.health!.latency.value(at: now)
                ))
            }
            chosen = candidates[min(max(0, balancer.pick(from: loads)), candidates.count - 1)]
        }
        slots[chosen]!.health!.breaker.callStarted()
        return chosen
    }
}
