import MuxRPC
@testable import MuxRPCTransport
@testable import MuxRPCPool
import NIOCore
import Testing

/// The pool's rules, driven without sockets: connections are strings,
/// streams are integers, time is whatever the test says.
@Suite("Connection pool state machine")
struct ConnectionPoolStateMachineTests {
    typealias Machine = ConnectionPoolStateMachine<String, String, Int>

    static func limits(
        sessions: Int = 1,
        streams: Int = 1024,
        idle: Int = 64,
        calls: Int = 2048,
        waiters: Int = 1024,
        failFast: Bool = false,
        replacement: TimeAmount? = nil
    ) -> Machine.Limits {
        .init(
            maxSessionsPerAddress: sessions,
            maxStreamsPerSession: streams,
            maxIdleStreamsPerSession: idle,
            maxConcurrentCallsPerAddress: calls,
            maxWaitersPerAddress: waiters,
            failFastWhenBusy: failFast,
            maxIdleTime: .seconds(120),
            replacementInterval: replacement
        )
    }

    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    /// A machine with one ready session to "a" (the connection "a#0").
    func readyMachine(_ limits: Machine.Limits = limits()) throws -> Machine {
        var machine = Machine(limits: limits)
        let (_, dial) = try #require(machine.acquire("a", now: start).waiting)
        let actions = machine.connected(try #require(dial), connection: "a#0", now: start)
        let grant = try #require(actions.grants.first?.1)
        _ = machine.release(grant.lease, stream: 0, reusable: true, now: start)
        return machine
    }

    @Test("concurrent first callers share one dial, then all get a stream")
    func coalescedDial() throws {
        var machine = Machine(limits: Self.limits())
        var dials: [Machine.Dial] = []
        var waiters: [Machine.WaiterID] = []
        for _ in 0..<200 {
            let (waiter, dial) = try #require(machine.acquire("a", now: start).waiting)
            waiters.append(waiter)
            if let dial { dials.append(dial) }
        }
        #expect(dials.count == 1)
        #expect(machine.statistics.waiters == 200)
        let actions = machine.connected(dials[0], connection: "a#0", now: start)
        #expect(actions.grants.map(\.0) == waiters)
        #expect(actions.grants.allSatisfy { if case .newStream("a#0", _) = $0.1 { true } else { false } })
        #expect(machine.statistics.callsInFlight == 200)
        #expect(machine.statistics.dials == 1)
    }

    @Test("a returned stream is reused, the warmest first")
    func reuse() throws {
        var machine = try readyMachine()
        let first = try #require(machine.acquire("a", now: start).grant)
        guard case .idleStream(0, _) = first else { Issue.record("expected stream 0 back, got \(first)"); return }
        let second = try #require(machine.acquire("a", now: start).grant)
        guard case .newStream = second else { Issue.record("expected a new stream, got \(second)"); return }
        _ = machine.release(second.lease, stream: 1, reusable: true, now: start)
        _ = machine.release(first.lease, stream: 0, reusable: true, now: start)
        guard case .idleStream(0, _) = try #require(machine.acquire("a", now: start).grant) else {
            Issue.record("the last stream returned should be reused first"); return
        }
        #expect(machine.statistics.streamsOpened == 2)
        #expect(machine.statistics.streamsReused == 2)
    }

    @Test("a stream after an error is closed; beyond the idle cap too")
    func closing() throws {
        var machine = try readyMachine(Self.limits(idle: 1))
        let grants = try (0..<3).map { _ in try #require(machine.acquire("a", now: start).grant) }
        #expect(machine.release(grants[0].lease, stream: 0, reusable: false, now: start).streamsToClose == [0])
        #expect(machine.release(grants[1].lease, stream: 1, reusable: true, now: start).streamsToClose == [])
        #expect(machine.release(grants[2].lease, stream: 2, reusable: true, now: start).streamsToClose == [2])
        #expect(machine.statistics.idleStreams == 1)
        #expect(machine.statistics.streamsClosed == 2)
    }

    @Test("a second session opens only when the first is full, up to the limit")
    func secondSession() throws {
        var machine = try readyMachine(Self.limits(sessions: 2, streams: 2))
        _ = try #require(machine.acquire("a", now: start).grant)
        _ = try #require(machine.acquire("a", now: start).grant)
        let (waiter, dial) = try #require(machine.acquire("a", now: start).waiting)
        let actions = machine.connected(try #require(dial), connection: "a#1", now: start)
        #expect(actions.grants.map(\.0) == [waiter])
        guard case .newStream("a#1", _) = try #require(actions.grants.first?.1) else {
            Issue.record("expected a stream on the second session"); return
        }
        _ = try #require(machine.acquire("a", now: start).grant)
        // Both sessions full and no third allowed: wait, without a dial.
        let (_, noDial) = try #require(machine.acquire("a", now: start).waiting)
        #expect(noDial == nil)
        #expect(machine.statistics.readySessions == 2)
    }

    @Test("the waiter limit, and failing fast when busy")
    func limitsOnWaiting() throws {
        var waiting = try readyMachine(Self.limits(calls: 1, waiters: 1))
        _ = try #require(waiting.acquire("a", now: start).grant)
        _ = try #require(waiting.acquire("a", now: start).waiting)
        #expect(waiting.acquire("a", now: start).failure?.code == .tooManyWaiters)

        var failFast = try readyMachine(Self.limits(calls: 1, failFast: true))
        _ = try #require(failFast.acquire("a", now: start).grant)
        #expect(failFast.acquire("a", now: start).failure?.code == .overloaded)

        // Waiting for a first dial is not being busy.
        var fresh = Machine(limits: Self.limits(failFast: true))
        #expect(fresh.acquire("b", now: start).waiting != nil)
        #expect(fresh.acquire("b", now: start).waiting != nil)
    }

    @Test("a waiter that gives up is forgotten; one already served keeps its grant")
    func abandoning() throws {
        var machine = try readyMachine(Self.limits(calls: 1))
        let held = try #require(machine.acquire("a", now: start).grant)
        let (first, _) = try #require(machine.acquire("a", now: start).waiting)
        let (second, _) = try #require(machine.acquire("a", now: start).waiting)
        let removed = machine.removeWaiter(first)
        let removedAgain = machine.removeWaiter(first)
        #expect(removed)
        #expect(!removedAgain)
        let actions = machine.release(held.lease, stream: 0, reusable: true, now: start)
        #expect(actions.grants.map(\.0) == [second])
        let servedRemoved = machine.removeWaiter(second)
        #expect(!servedRemoved)
    }

    @Test("a failed dial fails its waiters; the next call dials again")
    func connectFailure() throws {
        var machine = Machine(limits: Self.limits())
        let (first, dial) = try #require(machine.acquire("a", now: start).waiting)
        let (second, _) = try #require(machine.acquire("a", now: start).waiting)
        let error = MuxRPCError(code: .connectionRefused, message: "connection refused")
        let actions = machine.connectFailed(try #require(dial), error: error, now: start)
        #expect(actions.failedWaiters.map(\.0) == [first, second])
        #expect(actions.failedWaiters.allSatisfy { $0.1.code == .connectionRefused })
        #expect(machine.statistics.sessions == 0)
        #expect(try #require(machine.acquire("a", now: start).waiting).dial != nil)
    }

    @Test("a session that ends leaves the pool with its idle streams")
    func sessionEnds() throws {
        var machine = try readyMachine()
        let busy = try #require(machine.acquire("a", now: start).grant)
        let lease = Machine.Lease(address: "a", session: busy.lease.session)
        _ = machine.release(busy.lease, stream: 0, reusable: true, now: start)
        let actions = machine.sessionClosed(lease, now: start)
        #expect(actions.streamsToClose == [0])
        #expect(actions.connectionsToClose == ["a#0"])
        #expect(machine.statistics.sessions == 0)
        #expect(try #require(machine.acquire("a", now: start).waiting).dial != nil)
    }

    @Test("after GoAway new calls go to a new session; the old one closes after its last call")
    func goAway() throws {
        var machine = try readyMachine()
        let busy = try #require(machine.acquire("a", now: start).grant)
        let second = try #require(machine.acquire("a", now: start).grant)
        _ = machine.release(second.lease, stream: 1, reusable: true, now: start)
        let draining = machine.sessionDraining(busy.lease, now: start)
        #expect(draining.streamsToClose == [1])
        #expect(draining.connectionsToClose.isEmpty)
        #expect(machine.statistics.drainingSessions == 1)
        let (_, dial) = try #require(machine.acquire("a", now: start).waiting)
        #expect(dial != nil, "a draining session does not count against maxSessionsPerAddress")
        let released = machine.release(busy.lease, stream: 0, reusable: true, now: start)
        #expect(released.streamsToClose == [0])
        #expect(released.connectionsToClose == ["a#0"])
    }

    @Test("a failed dial beside a draining session fails its waiters, without redialling")
    func connectFailureWhileDraining() throws {
        var machine = try readyMachine()
        let busy = try #require(machine.acquire("a", now: start).grant)
        _ = machine.sessionDraining(busy.lease, now: start)
        let (waiter, dial) = try #require(machine.acquire("a", now: start).waiting)
        let error = MuxRPCError(code: .connectionRefused, message: "connection refused")
        let actions = machine.connectFailed(try #require(dial), error: error, now: start)
        #expect(actions.failedWaiters.map(\.0) == [waiter])
        #expect(actions.dials.isEmpty)
        #expect(machine.statistics.dials == 2)
    }

    @Test("a failed last session is replaced in the background, at most once per interval")
    func replacement() throws {
        var machine = try readyMachine(Self.limits(replacement: .seconds(1)))
        let lease = Machine.Lease(address: "a", session: .init(rawValue: 0))
        let first = machine.sessionClosed(lease, now: start)
        let dial = try #require(first.dials.first)
        #expect(machine.statistics.connectingSessions == 1)
        _ = machine.connected(dial, connection: "a#1", now: start)
        // The replacement fails at once: no second replacement within the interval.
        #expect(machine.sessionClosed(.init(address: "a", session: dial.session), now: start + .milliseconds(10)).dials.isEmpty)
        // Without the interval set, nothing is dialled until a call comes.
        var lazy = try readyMachine()
        #expect(lazy.sessionClosed(lease, now: start).dials.isEmpty)
    }

    @Test("draining an address closes idle sessions now and busy ones after their calls")
    func drainAddress() throws {
        var machine = try readyMachine(Self.limits(sessions: 2, streams: 1))
        let busy = try #require(machine.acquire("a", now: start).grant)
        let (_, dial) = try #require(machine.acquire("a", now: start).waiting)
        let second = machine.connected(try #require(dial), connection: "a#1", now: start)
        _ = machine.release(try #require(second.grants.first?.1).lease, stream: 1, reusable: true, now: start)
        #expect(machine.readySessions.count == 2)
        let drained = machine.drain("a", now: start)
        #expect(drained.connectionsToClose == ["a#1"])
        #expect(drained.streamsToClose == [1])
        #expect(machine.readySessions.isEmpty)
        #expect(machine.release(busy.lease, stream: 0, reusable: true, now: start).connectionsToClose == ["a#0"])
        #expect(machine.statistics.sessions == 0)
    }

    @Test("a failed stream open drops the session")
    func streamOpenFailure() throws {
        var machine = try readyMachine()
        _ = try #require(machine.acquire("a", now: start).grant)
        let grant = try #require(machine.acquire("a", now: start).grant)
        let actions = machine.streamOpenFailed(grant.lease, now: start)
        #expect(actions.connectionsToClose == ["a#0"])
        #expect(machine.statistics.callsInFlight == 1)
        #expect(try #require(machine.acquire("a", now: start).waiting).dial != nil)
    }

    @Test("idle sessions are reaped after maxIdleTime, busy ones never")
    func reaping() throws {
        var machine = try readyMachine()
        #expect(machine.reap(now: start + .seconds(119)).connectionsToClose.isEmpty)
        let busy = try #require(machine.acquire("a", now: start + .seconds(100)).grant)
        #expect(machine.reap(now: start + .seconds(500)).connectionsToClose.isEmpty)
        _ = machine.release(busy.lease, stream: 0, reusable: true, now: start + .seconds(500))
        #expect(machine.reap(now: start + .seconds(619)).connectionsToClose.isEmpty)
        let reaped = machine.reap(now: start + .seconds(620))
        #expect(reaped.connectionsToClose == ["a#0"])
        #expect(reaped.streamsToClose == [0])
        #expect(machine.statistics.sessionsReaped == 1)
        #expect(machine.statistics.sessions == 0)
    }

    @Test("shutdown fails waiters and new calls, and drains as calls end")
    func shutdown() throws {
        var machine = try readyMachine(Self.limits(calls: 1))
        let busy = try #require(machine.acquire("a", now: start).grant)
        let (waiter, _) = try #require(machine.acquire("a", now: start).waiting)
        let (dialWaiter, dial) = try #require(machine.acquire("b", now: start).waiting)
        let actions = machine.beginShutdown()
        #expect(Set(actions.failedWaiters.map(\.0)) == [waiter, dialWaiter])
        #expect(actions.failedWaiters.allSatisfy { $0.1.code == .shutDown })
        #expect(machine.acquire("a", now: start).failure?.code == .shutDown)
        #expect(!machine.isDrained)
        // The dial that was under way ends: its connection closes at once.
        #expect(machine.connected(try #require(dial), connection: "b#0", now: start).connectionsToClose == ["b#0"])
        let released = machine.release(busy.lease, stream: 0, reusable: true, now: start)
        #expect(released.streamsToClose == [0])
        #expect(released.connectionsToClose == ["a#0"])
        #expect(machine.isDrained)
    }

    @Test("at the end of the grace period everything closes; late releases only close their stream")
    func closeEverything() throws {
        var machine = try readyMachine()
        let busy = try #require(machine.acquire("a", now: start).grant)
        _ = machine.beginShutdown()
        #expect(machine.closeEverything().connectionsToClose == ["a#0"])
        #expect(machine.isDrained)
        #expect(machine.release(busy.lease, stream: 3, reusable: true, now: start).streamsToClose == [3])
        #expect(machine.isDrained)
    }
}

extension ConnectionPoolStateMachine.AcquireDecision {
    var grant: ConnectionPoolStateMachine.Grant? {
        if case .granted(let grant) = self { grant } else { nil }
    }
    var waiting: (ConnectionPoolStateMachine.WaiterID, dial: ConnectionPoolStateMachine.Dial?)? {
        if case .wait(let waiter, let dial) = self { (waiter, dial) } else { nil }
    }
    var failure: MuxRPCError? {
        if case .failed(let error) = self { error } else { nil }
    }
}
