public import MsgpackRPC
public import NIOCore
import NIOPosix
import Synchronization
import Yamux
package import MuxRPCTransport

/// Calls RPC servers over a few long-lived connections, the way Consul's
/// `ConnPool` does, with its known faults fixed.
///
/// Per server address the pool keeps one yamux session (a second one, up to
/// ``Configuration/maxSessionsPerAddress``, only when the first has no room
/// for another stream) and per session a free-list of idle RPC streams. A
/// call takes an idle stream or opens one, and after a successful call the
/// stream goes back on the list; a stream that saw any error is closed, and
/// one a call left out of step (cancelled, timed out) is reset (RST), which
/// tells the server to stop working on it.
///
///     let pool = ConnectionPool()
///     let reply = try await pool.call("Echo.Echo", EchoArgs(msg: bytes), returning: EchoReply.self, on: address)
///     await pool.shutdown()
///
/// - Concurrent first calls to an address share one dial.
/// - A session that fails (EOF, keepalive timeout, protocol error) or whose
///   server sends GoAway leaves the pool at once; the next call redials.
///   Opening a stream that fails is retried once, on a fresh session.
/// - The call's deadline covers waiting for a stream, opening it, sending
///   and receiving.
/// - Sessions no call used for ``Configuration/maxIdleTime`` are closed.
/// - ``shutdown()`` (or the `Service` conformance) fails waiters and new
///   calls at once, lets calls in flight finish within a grace period, then
///   closes every session.
///
/// All bookkeeping happens in one state machine under one short lock; dials,
/// stream opens and closes run outside it.
public final class ConnectionPool: Sendable {
    typealias StateMachine = ConnectionPoolStateMachine<SocketAddress, MuxRPCConnection, RPCClient>
    typealias Grant = StateMachine.Grant
    typealias WaiterID = StateMachine.WaiterID

    /// The settings the pool was made with.
    public let configuration: Configuration
    private let group: any EventLoopGroup
    private let state: Mutex<State>

    /// Creates a pool; nothing is dialled until the first call. `group`
    /// defaults to NIO's shared `MultiThreadedEventLoopGroup.singleton`.
    ///
    /// - Important: Shut the pool down (``shutdown()``, or run it as a
    ///   `Service`) to close its sessions.
    public convenience init(configuration: Configuration = .init(), group: (any EventLoopGroup)? = nil) throws {
        try self.init(configuration: configuration, group: group, endpointPolicy: nil)
    }

    /// A pool that also keeps a client's endpoint list, with each
    /// endpoint's balancer and breaker state in the endpoint's record
    /// (`endpointPolicy`), so that a client's attempt picks its endpoint
    /// and leases its stream in one locked step.
    package init(configuration: Configuration, group: (any EventLoopGroup)?, endpointPolicy: EndpointPolicy?) throws {
        try configuration.validate()
        self.configuration = configuration
        self.group = group ?? MultiThreadedEventLoopGroup.singleton
        let limits = StateMachine.Limits(
            maxSessionsPerAddress: configuration.maxSessionsPerAddress,
            maxStreamsPerSession: configuration.maxStreamsPerSession,
            maxIdleStreamsPerSession: configuration.maxIdleStreamsPerSession,
            maxConcurrentCallsPerAddress: configuration.maxConcurrentCallsPerAddress,
            maxWaitersPerAddress: configuration.maxWaitersPerAddress,
            failFastWhenBusy: configuration.whenBusy == .failFast,
            maxIdleTime: TimeAmount(configuration.maxIdleTime),
            replacementInterval: configuration.sessionReplacementInterval.map { TimeAmount($0) }
        )
        self.state = Mutex(State(machine: StateMachine(limits: limits, endpointPolicy: endpointPolicy)))
        let interval = TimeAmount(configuration.reapInterval)
        let reaper = self.group.any().scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] task in
            guard let self else { return task.cancel() }
            self.update { $0.reap(now: .now()) }
        }
        let healthCheck = configuration.healthCheckInterval.map { interval in
            self.group.any().scheduleRepeatedTask(initialDelay: TimeAmount(interval), delay: TimeAmount(interval)) { [weak self] task in
                guard let self else { return task.cancel() }
                self.checkHealth()
            }
        }
        state.withLock { state in
            state.reaper = reaper
            state.healthCheck = healthCheck
        }
    }

    deinit {
        // NIO reports a promise that is dropped without a result.
        state.withLock { $0.drainWaiter.take() }?.succeed()
    }

    /// What the pool holds now and has done so far.
    public var statistics: ConnectionPoolStatistics {
        state.withLock { state in
            var statistics = state.machine.statistics
            statistics.connections = state.liveConnections.count
            return statistics
        }
    }

    // MARK: Calls

    /// Calls `serviceMethod` on the server at `address` with `arguments` and
    /// decodes the reply as `Reply`.
    ///
    /// - Throws: `MuxRPCError` when no stream could be had (nothing was
    ///   sent: a refused or failed connection, a full pool, the deadline),
    ///   or `RPCError` for the call itself.
    public func call<Arguments: Encodable, Reply: Decodable>(
        _ serviceMethod: String,
        _ arguments: Arguments,
        returning: Reply.Type = Reply.self,
        on address: SocketAddress,
        options: RPCCallOptions = .defaults
    ) async throws -> Reply {
        // One deadline for every step, fixed now: a timeout re-read later
        // would restart the clock.
        var options = options
        let deadline = options.effectiveDeadline
        options.deadline = deadline
        options.timeout = nil
        return try await withStream(to: address, deadline: deadline) { stream in
            try await stream.call(serviceMethod, arguments, returning: Reply.self, options: options)
        }
    }

    /// Lends `body` a stream to `address` for one or more calls made one
    /// after another. The stream goes back to the pool if `body` returns and
    /// the stream is still usable, and is closed if `body` throws (unless
    /// ``Configuration/keepsStreamsAfterServerErrors`` and the error is the
    /// server's answer).
    ///
    /// - Parameters:
    ///   - address: the server.
    ///   - deadline: bounds the wait for a stream (calls made in `body` take
    ///     their own options).
    ///   - body: makes the calls on the stream it is lent; what it returns,
    ///     this returns.
    /// - Throws: `MuxRPCError` when no stream could be had, or what `body`
    ///   throws.
    public func withStream<Value>(
        to address: SocketAddress,
        deadline: RPCDeadline? = nil,
        _ body: (RPCClient) async throws -> Value
    ) async throws -> Value {
        // The pool's own path, kept apart from `lend`: without a client's
        // books to carry, its async frame stays as small as it was.
        var hasRetried = false
        while true {
            let decision = try decide(address, deadline: deadline, movingPick: false)
            let grant = try await settle(decision, address: address, deadline: deadline, movingPick: false)
            let stream: RPCClient
            switch grant {
            case .idleStream(let idle, _):
                stream = idle
            case .newStream(let connection, let lease):
                do {
                    stream = try await openStream(on: connection, deadline: deadline, address: address)
                    if connection.session == nil { track(plainStream: stream) }
                } catch {
                    try streamOpenFailed(lease, to: address, books: .none, error: error, hasRetried: hasRetried)
                    hasRetried = true
                    continue
                }
            }
            let result: Value
            do {
                result = try await body(stream)
            } catch {
                giveBack(stream, lease: grant.lease, to: address, books: .none, failure: error, sent: nil)
                throw error
            }
            giveBack(stream, lease: grant.lease, to: address, books: .none, failure: nil, sent: nil)
            return result
        }
    }

    // MARK: A client's attempts

    /// One attempt of a client's call on the common path: picks an endpoint
    /// and leases a stream to it in one locked step, runs `body` on the
    /// stream, then returns the stream and books the attempt's outcome and
    /// latency in one more. Its latency runs from the moment the stream was
    /// in hand to the reply: waiting for a stream (a dial, a full pool) says
    /// nothing of the server. A failed attempt's runs from `startedAt`.
    ///
    /// - Parameters:
    ///   - deadline: absolute, fixed where the call started.
    ///   - samplesLatency: false for a call that is long by design (a
    ///     blocking query): its latency says nothing of the endpoint's speed
    ///     and is kept out of the balancer's average.
    ///   - picked: set to the endpoint once one is picked. Left nil when
    ///     none could be (no endpoint, all breakers open, the client shutting
    ///     down): then no attempt was made.
    /// - Returns: what `body` returned.
    /// - Throws: what kept the attempt from a stream, what `body` threw, or
    ///   why no endpoint could be picked.
    package func attempt<Value>(
        pickingWith balancer: any LoadBalancer,
        excluding tried: [SocketAddress],
        startedAt: Duration,
        deadline: RPCDeadline?,
        samplesLatency: Bool = true,
        picked: inout SocketAddress?,
        _ body: (RPCClient) async throws -> Value
    ) async throws -> Value {
        let deadlinePassed = deadline?.hasPassed ?? false
        let pick = try state.withLock { state throws(MuxRPCError) in
            try state.machine.pickAndAcquire(
                with: balancer, excluding: tried, at: ContinuousClock.Instant(timeSinceReference: startedAt), now: .now(),
                deadlinePassed: deadlinePassed
            )
        }
        picked = pick.address
        var sent: Duration?
        return try await lend(
            to: pick.address, deadline: deadline, books: .attempt(startedAt: startedAt, samplesLatency: samplesLatency), measuresSend: true,
            decided: pick.decision, sent: &sent, body
        )
    }

    /// Picks the endpoint of an attempt that runs interceptors before it
    /// asks for a stream. End it with ``finishAttempt(at:_:latency:at:releasingPick:)``.
    package func pickEndpoint(
        with balancer: any LoadBalancer,
        excluding tried: [SocketAddress],
        at now: ContinuousClock.Instant
    ) throws(MuxRPCError) -> SocketAddress {
        try state.withLock { state throws(MuxRPCError) in
            try state.machine.pickEndpoint(with: balancer, excluding: tried, at: now)
        }
    }

    /// ``withStream(to:deadline:_:)`` for an attempt past its interceptors,
    /// which may have sent it to another address than `picked`. Sets `sent`
    /// to the moment the stream was in hand.
    package func withStream<Value>(
        to address: SocketAddress,
        picked: SocketAddress,
        deadline: RPCDeadline?,
        sent: inout Duration?,
        _ body: (RPCClient) async throws -> Value
    ) async throws -> Value {
        try await lend(
            to: address, deadline: deadline, books: address == picked ? .interceptedPick : .none, measuresSend: true,
            decided: nil, sent: &sent, body
        )
    }

    /// Books the end of an attempt picked with ``pickEndpoint(with:excluding:at:)``
    /// (`releasingPick`), or of one whose pick failed to get a stream.
    package func finishAttempt(
        at address: SocketAddress,
        _ outcome: AttemptOutcome,
        latency: Duration?,
        at now: ContinuousClock.Instant,
        releasingPick: Bool
    ) {
        state.withLock { $0.machine.finishAttempt(at: address, outcome, latency: latency, at: now, releasingPick: releasingPick) }
    }

    /// Takes a client's new endpoint list; endpoints that left drain, in
    /// the same step.
    package func replaceEndpoints(with endpoints: [MuxRPCEndpoint]) {
        update { $0.replaceEndpoints(with: endpoints, now: .now()).actions }
    }

    /// What the client knows of each endpoint now, in the resolver's order.
    package var endpointStatistics: [MuxRPCEndpointStatistics] {
        state.withLock { $0.machine.endpointStatistics }
    }

    /// The client is shutting down: no endpoint is picked any more.
    package func stopPicking() {
        state.withLock { $0.machine.isClientShutDown = true }
    }

    /// What a lease does to a client's books besides the pool's own.
    private enum AttemptBooks {
        /// Nothing: a pool on its own, or an attempt sent elsewhere than
        /// its pick.
        case none
        /// An attempt picked in the step that asked for its stream: its end
        /// is booked in the step that ends its lease (or after it failed to
        /// get one), with its latency unless it is long by design.
        case attempt(startedAt: Duration, samplesLatency: Bool)
        /// An attempt picked before its interceptors: its lease (or its
        /// place in the queue) counts it instead of its pick while it lasts.
        case interceptedPick

        var movesPick: Bool {
            if case .interceptedPick = self { true } else { false }
        }

        /// The clock, read outside the lock, for an attempt's end.
        var clockReading: Duration? {
            if case .attempt = self { ContinuousClock.now.timeSinceReference } else { nil }
        }
    }

    /// Lends `body` a stream to `address` (from `decided`, when the caller
    /// asked for it already) and returns it, doing to the client's books
    /// what `books` says in the same locked steps. With `measuresSend`,
    /// `sent` is set to the moment the stream was in hand.
    ///
    /// The steps that end a lease are plain functions, which the compiler
    /// specialises: this function is generic and runs unspecialised, and
    /// closures held in it showed in profiles of the pool.
    private func lend<Value>(
        to address: SocketAddress,
        deadline: RPCDeadline?,
        books: AttemptBooks,
        measuresSend: Bool,
        decided: StateMachine.AcquireDecision?,
        sent: inout Duration?,
        _ body: (RPCClient) async throws -> Value
    ) async throws -> Value {
        var decided = decided
        var hasRetried = false
        while true {
            let grant: Grant
            do {
                let decision = try decided.take() ?? decide(address, deadline: deadline, movingPick: books.movesPick)
                grant = try await settle(decision, address: address, deadline: deadline, movingPick: books.movesPick)
            } catch {
                endAttempt(at: address, books: books, failure: error)
                throw error
            }
            let stream: RPCClient
            switch grant {
            case .idleStream(let idle, _):
                stream = idle
            case .newStream(let connection, let lease):
                do {
                    stream = try await openStream(on: connection, deadline: deadline, address: address)
                    if connection.session == nil { track(plainStream: stream) }
                } catch {
                    // The session can open no more streams: drop it, and try
                    // once more on a fresh one, as Consul does.
                    try streamOpenFailed(lease, to: address, books: books, error: error, hasRetried: hasRetried)
                    hasRetried = true
                    continue
                }
            }
            if measuresSend { sent = ContinuousClock.now.timeSinceReference }
            let result: Value
            do {
                result = try await body(stream)
            } catch {
                giveBack(stream, lease: grant.lease, to: address, books: books, failure: error, sent: sent)
                throw error
            }
            giveBack(stream, lease: grant.lease, to: address, books: books, failure: nil, sent: sent)
            return result
        }
    }

    /// Opening a stream on a granted session failed. Returns to try once
    /// more on a fresh session; otherwise throws what the caller gets.
    private func streamOpenFailed(
        _ lease: StateMachine.Lease, to address: SocketAddress, books: AttemptBooks, error: any Error, hasRetried: Bool
    ) throws {
        if let error = error as? MuxRPCError, error.code == .deadlineExceeded {
            let ended = books.clockReading
            update { machine in
                let actions = machine.release(lease, stream: nil, reusable: false, now: .now())
                Self.book(books, at: address, in: &machine, failure: error, sent: nil, ended: ended)
                return actions
            }
            throw error
        }
        if !hasRetried {
            // The session can open no more streams: it leaves the pool.
            update { machine in
                let actions = machine.streamOpenFailed(lease, now: .now())
                if books.movesPick { machine.movePick(address, toPool: false) }
                return actions
            }
            return
        }
        // A plain-mode stream is a connection of its own: its failure
        // already says why (refused, unreachable).
        let failure = error as? MuxRPCError ?? MuxRPCError(
            code: .streamOpenFailed, message: "opening a stream failed twice (\(error))", address: address, cause: error
        )
        let ended = books.clockReading
        update { machine in
            let actions = machine.streamOpenFailed(lease, now: .now())
            Self.book(books, at: address, in: &machine, failure: failure, sent: nil, ended: ended)
            return actions
        }
        throw failure
    }

    /// Returns a lent stream: back to the pool if the call left it usable
    /// (or ended in the server's error reply, with
    /// ``Configuration/keepsStreamsAfterServerErrors``), closed otherwise;
    /// and books the attempt in the same step.
    private func giveBack(
        _ stream: RPCClient,
        lease: StateMachine.Lease,
        to address: SocketAddress,
        books: AttemptBooks,
        failure: (any Error)?,
        sent: Duration?
    ) {
        let reusable = if let failure {
            configuration.keepsStreamsAfterServerErrors && (failure as? RPCError)?.code == .serverError && stream.isUsable
        } else {
            stream.isUsable
        }
        let ended = books.clockReading
        update { machine in
            let actions = machine.release(lease, stream: stream, reusable: reusable, now: .now())
            Self.book(books, at: address, in: &machine, failure: failure, sent: sent, ended: ended)
            return actions
        }
    }

    /// Books the end of an attempt that got no stream.
    private func endAttempt(at address: SocketAddress, books: AttemptBooks, failure: any Error) {
        guard case .attempt = books else { return }
        let ended = books.clockReading
        state.withLock { Self.book(books, at: address, in: &$0.machine, failure: failure, sent: nil, ended: ended) }
    }

    /// What `books` asks of the state machine as an attempt's lease ends
    /// (or the attempt ends without one): its outcome and latency, or its
    /// pick back from the pool.
    private static func book(
        _ books: AttemptBooks,
        at address: SocketAddress,
        in machine: inout StateMachine,
        failure: (any Error)?,
        sent: Duration?,
        ended: Duration?
    ) {
        switch books {
        case .none:
            break
        case .attempt(let startedAt, let samplesLatency):
            let ended = ended ?? ContinuousClock.now.timeSinceReference
            let at = ContinuousClock.Instant(timeSinceReference: ended)
            if let failure {
                let latency = samplesLatency ? ended - startedAt : nil
                machine.finishAttempt(at: address, CallFailure(failure).outcome, latency: latency, at: at, releasingPick: false)
            } else {
                let latency = samplesLatency ? ended - (sent ?? startedAt) : nil
                machine.finishAttempt(at: address, .answered, latency: latency, at: at, releasingPick: false)
            }
        case .interceptedPick:
            machine.movePick(address, toPool: false)
        }
    }

    // MARK: Shutdown

    /// Shuts the pool down: new calls and waiting callers fail at once with
    /// `MuxRPCError/Code/shutDown`, idle streams close, calls in
    /// flight get ``Configuration/shutdownGracePeriod`` to finish, then every
    /// session closes. Returns when all are closed.
    public func shutdown() async {
        await shutdown(gracePeriod: configuration.shutdownGracePeriod)
    }

    package func shutdown(gracePeriod: Duration) async {
        let timers = state.withLock { [$0.reaper.take(), $0.healthCheck.take()] }
        for timer in timers { timer?.cancel() }
        update { $0.beginShutdown() }
        // The promise to wait on is made only when there is something to
        // wait for. Already drained (nothing in flight, every session gone,
        // as after the event loop group shut down) there is not, and a
        // promise of a loop that is gone could never be completed: waiting
        // on it would never end, and NIO reports it dropped.
        let drained: EventLoopFuture<Void>? = state.withLock { state in
            if state.hasDrained { return nil }
            if state.drainWaiter == nil { state.drainWaiter = group.any().makePromise(of: Void.self) }
            return state.drainWaiter!.futureResult
        }
        guard let drained else { return }
        if await drained.result(before: .now() + TimeAmount(gracePeriod)) != nil { return }
        update { $0.closeEverything() }
        // Plain-mode streams are connections of their own, outside any session.
        let plainStreams = state.withLock { Array($0.plainStreams.values) }
        for stream in plainStreams { stream.channel.close(promise: nil) }
        try? await drained.get()
    }

    /// Keeps a plain-mode stream (its own TCP connection) until it closes,
    /// so that a shutdown whose grace period runs out can close it.
    private func track(plainStream stream: RPCClient) {
        let key = ObjectIdentifier(stream)
        state.withLock { $0.plainStreams[key] = stream }
        stream.channel.closeFuture.whenComplete { [weak self] _ in
            _ = self?.state.withLock { $0.plainStreams.removeValue(forKey: key) }
        }
    }

    // MARK: Endpoints

    /// Takes `address` out of use: its sessions take no new calls, their
    /// idle streams close, and each session closes once its last call in
    /// flight ends. A later call to the address dials afresh.
    public func drain(_ address: SocketAddress) {
        update { $0.drain(address, now: .now()) }
    }

    /// The round-trip time the latest health check measured to `address`.
    public func roundTripTime(to address: SocketAddress) -> Duration? {
        state.withLock { $0.machine.roundTripTime(to: address) }.map { Duration($0) }
    }

    /// Pings every ready session; one that does not answer within
    /// ``Configuration/healthCheckTimeout`` is closed, which takes it out
    /// of the pool and starts its replacement.
    private func checkHealth() {
        let sessions = state.withLock { $0.machine.readySessions }
        let timeout = configuration.healthCheckTimeout
        for (lease, connection) in sessions {
            guard let session = connection.session else { continue }
            Task { [weak self] in
                let start = ContinuousClock.now
                let ping = session.channel.eventLoop.makeFutureWithTask { try await session.ping() }
                let outcome = await ping.result(before: .now() + TimeAmount(timeout))
                guard let self else { return }
                if case .success = outcome {
                    let rtt = TimeAmount(ContinuousClock.now - start)
                    state.withLock { $0.machine.recordRoundTripTime(rtt, for: lease.address) }
                } else {
                    await connection.close()
                }
            }
        }
    }

    // MARK: Waiting for a stream

    /// Asks for a stream; ``settle(_:address:deadline:movingPick:)`` waits
    /// for it if need be. With `movingPick` the attempt's pick moves to the
    /// pool in the same step, and back if no stream comes.
    func decide(_ address: SocketAddress, deadline: RPCDeadline?, movingPick: Bool) throws -> StateMachine.AcquireDecision {
        if let deadline, deadline.hasPassed {
            throw MuxRPCError(code: .deadlineExceeded, message: "the deadline passed before the call began", address: address)
        }
        return state.withLock { state in
            guard movingPick else { return state.machine.acquire(address, now: .now()) }
            state.machine.movePick(address, toPool: true)
            let decision = state.machine.acquire(address, now: .now())
            if case .failed = decision { state.machine.movePick(address, toPool: false) }
            return decision
        }
    }

    /// The grant an acquire decision leads to, waiting for it if need be.
    func settle(
        _ decision: StateMachine.AcquireDecision, address: SocketAddress, deadline: RPCDeadline?, movingPick: Bool
    ) async throws -> Grant {
        switch decision {
        case .granted(let grant):
            return grant
        case .failed(var error):
            error.address = address
            throw error
        case .wait(let waiter, let dial):
            if let dial { start(dial) }
            do {
                return try await wait(for: waiter, address: address, deadline: deadline)
            } catch {
                if movingPick { state.withLock { $0.machine.movePick(address, toPool: false) } }
                throw error
            }
        }
    }

    private func wait(for waiter: WaiterID, address: SocketAddress, deadline: RPCDeadline?) async throws -> Grant {
        let timer = deadline.map { deadline in
            group.any().scheduleTask(deadline: deadline.nioDeadline) { [weak self] in
                self?.abandon(waiter, MuxRPCError(
                    code: .deadlineExceeded, message: "the deadline passed while the call waited for a stream", address: address
                ))
            }
        }
        defer { timer?.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                let outcome = state.withLock { state -> Result<Grant, MuxRPCError>? in
                    if let outcome = state.outcomes.removeValue(forKey: waiter) { return outcome }
                    state.waiting[waiter] = continuation
                    return nil
                }
                if let outcome { continuation.resume(with: outcome.mapError { $0 as any Error }) }
            }
        } onCancel: { [weak self] in
            self?.abandon(waiter, MuxRPCError(
                code: .cancelled, message: "the task was cancelled while the call waited for a stream", address: address
            ))
        }
    }

    /// A waiter's deadline passed or its task was cancelled: fail it, unless
    /// it was granted a stream (or failed) first.
    private func abandon(_ waiter: WaiterID, _ error: MuxRPCError) {
        let continuation = state.withLock { state -> CheckedContinuation<Grant, any Error>? in
            guard state.machine.removeWaiter(waiter) else { return nil }
            if let continuation = state.waiting.removeValue(forKey: waiter) { return continuation }
            state.outcomes[waiter] = .failure(error)
            return nil
        }
        continuation?.resume(throwing: error)
    }

    // MARK: Sessions and streams

    private func start(_ dial: StateMachine.Dial) {
        let configuration = configuration.connection
        let group = group
        Task {
            do {
                let connection = try await MuxRPCConnection.connect(to: dial.address, configuration: configuration, group: group)
                updateState { state in
                    if connection.session != nil {
                        state.liveConnections[ObjectIdentifier(connection)] = connection
                    }
                    return state.machine.connected(dial, connection: connection, now: .now())
                }
                watch(connection, as: StateMachine.Lease(address: dial.address, session: dial.session))
            } catch {
                // `connect` names refused, unreachable and timed-out
                // connections itself; anything else (a configuration, a TLS
                // set-up) is a failed connect all the same.
                var failure = error as? MuxRPCError ?? MuxRPCError(
                    code: .connectFailed, message: "connect failed (\(error))", cause: error
                )
                failure.address = dial.address
                update { $0.connectFailed(dial, error: failure, now: .now()) }
            }
        }
    }

    /// Takes the session out of the pool the moment it ends or its server
    /// sends GoAway.
    private func watch(_ connection: MuxRPCConnection, as lease: StateMachine.Lease) {
        guard let session = connection.session else { return }
        let key = ObjectIdentifier(connection)
        session.onRemoteGoAway { [weak self] in
            self?.update { $0.sessionDraining(lease, now: .now()) }
        }
        session.onClose { [weak self] _ in
            self?.updateState { state in
                state.liveConnections[key] = nil
                return state.machine.sessionClosed(lease, now: .now())
            }
        }
    }

    /// Opens a stream on `connection`, giving up at `deadline`. A stream
    /// that opens after that is closed.
    private func openStream(on connection: MuxRPCConnection, deadline: RPCDeadline?, address: SocketAddress) async throws -> RPCClient {
        guard let deadline else { return try await connection.openStream() }
        let opening = group.any().makeFutureWithTask { try await connection.openStream() }
        guard let outcome = await opening.result(before: deadline.nioDeadline) else {
            opening.whenSuccess { late in late.channel.close(promise: nil) }
            throw MuxRPCError(
                code: .deadlineExceeded, message: "the deadline passed while a stream was being opened", address: address
            )
        }
        return try outcome.get()
    }

    // MARK: Carrying out the state machine's actions

    /// Puts an idle stream a caller was granted back, keeping its lease (see
    /// `ConnectionPoolStateMachine.returnIdleKeepingLease`).
    func returnIdleKeepingLease(_ stream: RPCClient, _ lease: StateMachine.Lease) -> MuxRPCConnection? {
        state.withLock { $0.machine.returnIdleKeepingLease(stream, lease) }
    }

    /// Applies one event to the state machine under the lock, then carries
    /// out what it asks for outside it.
    func update(_ event: (inout StateMachine) -> StateMachine.Actions) {
        updateState { state in event(&state.machine) }
    }

    /// ``update(_:)`` for events that also touch the pool's own state.
    private func updateState(_ event: (inout State) -> StateMachine.Actions) {
        let work = state.withLock { state in
            let actions = event(&state)
            return state.claim(actions)
        }
        for (continuation, outcome) in work.resumptions {
            continuation.resume(with: outcome.mapError { $0 as any Error })
        }
        for stream in work.streamsToClose {
            Self.discard(stream)
        }
        for connection in work.connectionsToClose {
            Task { await connection.close() }
        }
        for dial in work.dials {
            start(dial)
        }
        work.drainWaiter?.succeed()
    }

    /// Ends a stream the pool lets go of. One still in step (beyond the
    /// idle cap, or its session leaving) closes with FIN, as a Go client
    /// closes a stream it is done with. One that a call left out of step
    /// (cancelled, timed out, broken) is reset (RST) at once: its reply is
    /// no longer wanted, and a reset is what tells the server to stop (a
    /// MuxRPC server cancels the handler's task; a Go server's codec read
    /// fails and it ends the stream), where a FIN would let the server
    /// finish the work and answer a caller who is gone. In plain mode the
    /// stream is a TCP connection, which the close ends either way.
    static func discard(_ stream: RPCClient) {
        if !stream.isUsable {
            stream.channel.triggerUserOutboundEvent(YamuxStreamResetEvent(), promise: nil)
        }
        stream.channel.close(promise: nil)
    }

    /// The state under the pool's lock: the machine, and the continuations of
    /// the callers it told to wait.
    private struct State {
        var machine: StateMachine
        var waiting: [WaiterID: CheckedContinuation<Grant, any Error>] = [:]
        /// Outcomes decided before the waiter's continuation was stored.
        var outcomes: [WaiterID: Result<Grant, MuxRPCError>] = [:]
        /// Sessions not yet closed, whether or not the machine still has them.
        var liveConnections: [ObjectIdentifier: MuxRPCConnection] = [:]
        /// Plain-mode streams not yet closed.
        var plainStreams: [ObjectIdentifier: RPCClient] = [:]
        var reaper: RepeatedTask?
        var healthCheck: RepeatedTask?
        var hasDrained = false
        /// What a shutdown waits on, made when it has to wait.
        var drainWaiter: EventLoopPromise<Void>?

        /// Takes the continuations the actions resume (or records the
        /// outcome for a waiter that has not stored its continuation yet).
        mutating func claim(_ actions: StateMachine.Actions) -> Work {
            var work = Work(
                streamsToClose: actions.streamsToClose,
                connectionsToClose: actions.connectionsToClose,
                dials: actions.dials
            )
            func settle(_ waiter: WaiterID, _ outcome: Result<Grant, MuxRPCError>) {
                if let continuation = waiting.removeValue(forKey: waiter) {
                    work.resumptions.append((continuation, outcome))
                } else {
                    outcomes[waiter] = outcome
                }
            }
            for (waiter, grant) in actions.grants { settle(waiter, .success(grant)) }
            for (waiter, error) in actions.failedWaiters { settle(waiter, .failure(error)) }
            if !hasDrained, machine.isDrained, liveConnections.isEmpty {
                hasDrained = true
            }
            if hasDrained { work.drainWaiter = drainWaiter.take() }
            return work
        }
    }

    private struct Work {
        var streamsToClose: [RPCClient]
        var connectionsToClose: [MuxRPCConnection]
        var dials: [StateMachine.Dial]
        var resumptions: [(CheckedContinuation<Grant, any Error>, Result<Grant, MuxRPCError>)] = []
        var drainWaiter: EventLoopPromise<Void>?
    }
}
