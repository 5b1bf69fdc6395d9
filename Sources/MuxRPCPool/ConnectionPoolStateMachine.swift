import NIOCore
import MuxRPCTransport

/// The pool's bookkeeping, free of I/O, locks and clocks: every event (a
/// caller arrives, a dial ends, a call ends, a session fails, time passes)
/// goes in as a method call and comes out as a decision or a list of
/// ``Actions`` for the pool to carry out after it drops its lock. That keeps
/// the lock short, and every rule testable without sockets.
///
/// Per address it keeps the sessions (connecting, ready, draining), each
/// session's stack of idle streams, the number of calls in flight and a FIFO
/// queue of waiting callers. A caller is given a *grant*: an idle stream to
/// reuse, or the right to open one more stream on a ready session.
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

    private struct AddressState {
        var sessions: [Session] = []
        var waiters = CircularBuffer<WaiterID>()
        var callsInFlight = 0
        /// When a failed session was last replaced in the background.
        var lastReplacement: NIODeadline?
        /// The latest round-trip time a health check measured.
        var roundTripTime: TimeAmount?

        var isEmpty: Bool { sessions.isEmpty && waiters.isEmpty && callsInFlight == 0 }

        func index(of id: SessionID) -> Int? {
            sessions.firstIndex { $0.id == id }
        }
    }

    let limits: Limits
    private var addresses: [Address: AddressState] = [:]
    private var waiterAddresses: [WaiterID: Address] = [:]
    private var nextSessionID = 0
    private var nextWaiterID = 0
    private(set) var isShuttingDown = false
    private(set) var counters = ConnectionPoolStatistics()

    init(limits: Limits) {
        self.limits = limits
    }

    // MARK: Callers

    /// A caller wants a stream to `address`.
    mutating func acquire(_ address: Address, now: NIODeadline) -> AcquireDecision {
        if isShuttingDown {
            return .failed(MuxRPCError(code: .shutDown, message: "the pool is shutting down"))
        }
        var state = addresses.removeValue(forKey: address) ?? AddressState()
        defer { addresses[address] = state }

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
        if let index = addresses[address]?.waiters.firstIndex(of: waiter) {
            addresses[address]!.waiters.remove(at: index)
        }
        return true
    }

    /// A call is over. `stream` is the stream it used (nil if it never got
    /// one); `reusable` says whether it may carry another call.
    mutating func release(_ lease: Lease, stream: Stream?, reusable: Bool, now: NIODeadline) -> Actions {
        var actions = Actions()
        guard addresses[lease.address] != nil else {
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

    /// Opening a stream on the granted session failed: the lease ends and the
    /// session, which can open no more, leaves the pool.
    mutating func streamOpenFailed(_ lease: Lease, now: NIODeadline) -> Actions {
        var actions = Actions()
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
        guard !isShuttingDown, let index = addresses[dial.address]?.index(of: dial.session) else {
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
        return actions
    }

    /// The ready sessions, for health checks.
    var readySessions: [(Lease, Connection)] {
        addresses.flatMap { address, state in
            state.sessions.compactMap { session in
                guard case .ready(let connection) = session.phase else { return nil }
                return (Lease(address: address, session: session.id), connection)
            }
        }
    }

    /// Records a health check's round-trip time.
    mutating func recordRoundTripTime(_ rtt: TimeAmount, for address: Address) {
        addresses[address]?.roundTripTime = rtt
    }

    /// The latest round-trip time measured to `address`, if any.
    func roundTripTime(to address: Address) -> TimeAmount? {
        addresses[address]?.roundTripTime
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
        for address in Array(addresses.keys) {
            modify(address) { machine, state in
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
        for address in Array(addresses.keys) {
            modify(address) { machine, state in
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
        isShuttingDown && addresses.isEmpty
    }

    /// The end of the grace period: every session still open closes now.
    mutating func closeEverything() -> Actions {
        var actions = Actions()
        for address in Array(addresses.keys) {
            modify(address) { machine, state in
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
        for state in addresses.values {
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

    /// Runs `body` on the address's state and drops the state once empty.
    /// Runs `body` on the address's state, taken out of the map meanwhile,
    /// and drops the state once empty. `body` gets the machine as a
    /// parameter: a closure capturing `self` would overlap this mutation.
    private mutating func modify(_ address: Address, _ body: (inout Self, inout AddressState) -> Void) {
        guard var state = addresses.removeValue(forKey: address) else { return }
        body(&self, &state)
        if !state.isEmpty { addresses[address] = state }
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
