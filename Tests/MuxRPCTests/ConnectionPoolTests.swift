import DemoServices
import Foundation
import MsgpackRPC
import MuxRPC
import NIOCore
import ServiceLifecycleTestKit
import Testing

/// The pool against real servers on loopback.
@Suite("Connection pool", .timeLimit(.minutes(5)))
struct ConnectionPoolTests {
    typealias EchoArgs = DemoServices.EchoArgs
    typealias EchoReply = DemoServices.EchoReply

    /// Calls Echo.Echo through `pool` and checks the answer.
    static func echo(_ pool: ConnectionPool, _ address: SocketAddress, _ text: String, options: RPCCallOptions = .defaults) async throws {
        let message = Array(text.utf8)
        let reply = try await pool.call("Echo.Echo", EchoArgs(msg: message), returning: EchoReply.self, on: address, options: options)
        #expect(reply.msg == message)
    }

    /// Polls `condition` until it holds, for at most `limit`. For states the
    /// pool reaches through its own timers or the server's.
    static func eventually(within limit: Duration = .seconds(20), _ condition: () async -> Bool) async -> Bool {
        let clock = ContinuousClock()
        let end = clock.now + limit
        while clock.now < end {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return await condition()
    }

    /// The kernel's TCP sockets with `port` at either end, by state (as
    /// /proc/net/tcp writes it: 01 established, 06 time-wait, 08 close-wait,
    /// 0A listen...). Counting these rather than the process's descriptors
    /// stays exact while other tests run alongside.
    static func sockets(onPort port: Int) -> [String: Int] {
        var states: [String: Int] = [:]
        let hexPort = String(format: ":%04X", port)
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 3, fields[1].hasSuffix(hexPort) || fields[2].hasSuffix(hexPort) else { continue }
                states[String(fields[3]), default: 0] += 1
            }
        }
        return states
    }

    /// Sockets to `port` that still hold a descriptor somewhere: all but the
    /// listener and the kernel's TIME_WAIT entries.
    static func openSockets(onPort port: Int) -> Int {
        sockets(onPort: port).filter { $0.key != "0A" && $0.key != "06" }.values.reduce(0, +)
    }

    @Test("200 concurrent first callers make one TCP connection", arguments: [ConnectionMode.consulMultiplex, .nomadMultiplex])
    func coalescedDial(mode: ConnectionMode) async throws {
        let server = MuxRPCServer(services: DemoServices.registry, configuration: .patient())
        let address = try await server.start()
        let pool = try ConnectionPool(configuration: .init(connection: .init(mode: mode)))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<200 {
                group.addTask { try await Self.echo(pool, address, "caller \(caller)") }
            }
            try await group.waitForAll()
        }
        #expect(server.statistics.connectionsAccepted == 1)
        #expect(pool.statistics.dials == 1)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("20,000 calls from 32 callers open no more streams than callers")
    func streamReuse() async throws {
        let server = MuxRPCServer(services: DemoServices.registry, configuration: .patient())
        let address = try await server.start()
        let pool = try ConnectionPool()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<32 {
                group.addTask {
                    for call in 0..<625 {
                        try await Self.echo(pool, address, "\(caller)/\(call)")
                    }
                }
            }
            try await group.waitForAll()
        }
        let statistics = pool.statistics
        #expect(statistics.streamsOpened <= 32)
        #expect(statistics.streamsOpened + statistics.streamsReused == 20_000)
        #expect(server.statistics.streamsAccepted <= 32)
        #expect(server.statistics.connectionsAccepted == 1)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("no session, stream or file descriptor outlives 100,000 calls and the shutdown", arguments: [ConnectionMode.consulMultiplex, .plain])
    func noLeaks(mode: ConnectionMode) async throws {
        let server = MuxRPCServer(services: DemoServices.registry, configuration: .patient())
        let address = try await server.start()
        // An idle cap below the callers' number makes streams close and
        // reopen all along, not only at the end.
        let pool = try ConnectionPool(configuration: .init(connection: .init(mode: mode), maxIdleStreamsPerSession: 24))
        let calls = mode == .plain ? 20_000 : 100_000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<32 {
                group.addTask {
                    for call in stride(from: caller, to: calls, by: 32) {
                        try await Self.echo(pool, address, "\(call)")
                    }
                }
            }
            try await group.waitForAll()
        }
        await pool.shutdown()
        let statistics = pool.statistics
        #expect(statistics.sessions == 0)
        #expect(statistics.openStreams == 0)
        #expect(statistics.connections == 0)
        #expect(statistics.callsInFlight == 0)
        #expect(statistics.streamsOpened == statistics.streamsClosed)
        #expect(await Self.eventually { server.connectionCount == 0 }, "the server still has \(server.connectionCount) connections")
        let port = try #require(address.port)
        #expect(await Self.eventually { Self.openSockets(onPort: port) == 0 }, "sockets left: \(Self.sockets(onPort: port))")
        await server.shutdown()
    }

    @Test("a server killed mid-run: calls fail clearly, then succeed once it is back")
    func serverRestart() async throws {
        let first = MuxRPCServer(services: DemoServices.registry, configuration: .patient(shutdownGracePeriod: .zero))
        let address = try await first.start()
        let pool = try ConnectionPool()
        try await Self.echo(pool, address, "before")
        await first.shutdown()
        // Every call now fails with a typed error, at connect or on the dying session.
        var failures = 0
        for attempt in 0..<20 {
            do {
                try await Self.echo(pool, address, "while down \(attempt)")
            } catch let error as MuxRPCError {
                // Refused at connect: nothing listens any more.
                #expect(error.code == .connectionRefused || error.code == .streamOpenFailed, "\(error)")
                #expect(error.address == address)
                failures += 1
            } catch let error as RPCError {
                #expect(!error.isStreamUsable, "\(error)")
                failures += 1
            }
        }
        #expect(failures == 20)

        var configuration = MuxRPCServer.Configuration.patient()
        configuration.port = address.port!
        let second = MuxRPCServer(services: DemoServices.registry, configuration: configuration)
        try await second.start()
        try await Self.echo(pool, address, "after")
        #expect(second.statistics.connectionsAccepted == 1)
        await pool.shutdown()
        await second.shutdown()
    }

    @Test("calls in flight when the server goes away fail; the pool redials")
    func sessionLostMidCall() async throws {
        let holding = try await HoldingServer(shutdownGracePeriod: .zero)
        let server = holding.server
        let pool = try ConnectionPool()
        let held = await holding.holdCall(through: pool)
        await server.shutdown()
        await #expect(throws: RPCError.self) { _ = try await held.value }
        holding.release.fire()
        #expect(await Self.eventually { pool.statistics.sessions == 0 })
        await pool.shutdown()
    }

    @Test("GoAway drains the session: the call in flight finishes, the session then closes")
    func goAwayDrains() async throws {
        let holding = try await HoldingServer()
        let (server, address) = (holding.server, holding.address)
        let pool = try ConnectionPool()
        let held = await holding.holdCall(through: pool)
        let shutdown = Task { await server.shutdown() }
        #expect(await Self.eventually { pool.statistics.drainingSessions == 1 })
        // A new call does not go to the draining session: it dials, and the
        // server, which closed its listener before sending GoAway, refuses.
        let refused = await #expect(throws: MuxRPCError.self) { try await Self.echo(pool, address, "refused") }
        #expect(refused?.code == .connectionRefused)
        holding.release.fire()
        _ = try await held.value
        await shutdown.value
        #expect(await Self.eventually { pool.statistics.sessions == 0 && pool.statistics.connections == 0 })
        await pool.shutdown()
    }

    @Test("sessions idle for maxIdleTime are closed")
    func idleReaping() async throws {
        let server = MuxRPCServer(services: DemoServices.registry, configuration: .patient())
        let address = try await server.start()
        let pool = try ConnectionPool(configuration: .init(maxIdleTime: .milliseconds(50), reapInterval: .milliseconds(10)))
        try await Self.echo(pool, address, "once")
        #expect(await Self.eventually { pool.statistics.sessionsReaped == 1 })
        #expect(await Self.eventually { server.connectionCount == 0 })
        #expect(pool.statistics.sessions == 0)
        try await Self.echo(pool, address, "again")
        #expect(pool.statistics.dials == 2)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("over the call limit callers wait; the waiter limit and fail-fast refuse the rest")
    func callAndWaiterLimits() async throws {
        let holding = try await HoldingServer()
        let (server, address) = (holding.server, holding.address)
        let pool = try ConnectionPool(configuration: .init(maxConcurrentCallsPerAddress: 1, maxWaitersPerAddress: 1))
        let held = await holding.holdCall(through: pool)
        let waiting = Task { try await Self.echo(pool, address, "waited") }
        #expect(await Self.eventually { pool.statistics.waiters == 1 })
        await #expect {
            try await Self.echo(pool, address, "one too many")
        } throws: { ($0 as? MuxRPCError)?.code == .tooManyWaiters }
        holding.release.fire()
        _ = try await held.value
        try await waiting.value
        await pool.shutdown()

        let failFast = try ConnectionPool(configuration: .init(maxConcurrentCallsPerAddress: 1, whenBusy: .failFast))
        let second = try await HoldingServer()
        let heldSecond = await second.holdCall(through: failFast)
        await #expect {
            try await Self.echo(failFast, second.address, "busy")
        } throws: { ($0 as? MuxRPCError)?.code == .overloaded }
        second.release.fire()
        _ = try await heldSecond.value
        await failFast.shutdown()
        await server.shutdown()
        await second.server.shutdown()
    }

    @Test("a deadline that passes while waiting, and cancellation while waiting")
    func deadlineAndCancellationWhileWaiting() async throws {
        let holding = try await HoldingServer()
        let (server, address) = (holding.server, holding.address)
        let pool = try ConnectionPool(configuration: .init(maxConcurrentCallsPerAddress: 1))
        let held = await holding.holdCall(through: pool)
        await #expect {
            try await Self.echo(pool, address, "late", options: .init(timeout: .milliseconds(20)))
        } throws: { ($0 as? MuxRPCError)?.code == .deadlineExceeded }

        let cancelled = Task { try await Self.echo(pool, address, "cancelled") }
        #expect(await Self.eventually { pool.statistics.waiters == 1 })
        cancelled.cancel()
        await #expect {
            try await cancelled.value
        } throws: { ($0 as? MuxRPCError)?.code == .cancelled }
        #expect(pool.statistics.waiters == 0)

        holding.release.fire()
        _ = try await held.value
        try await Self.echo(pool, address, "after")
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("shutdown fails waiters and new calls at once and lets calls in flight finish")
    func shutdownWithCallsInFlight() async throws {
        let holding = try await HoldingServer()
        let (server, address) = (holding.server, holding.address)
        let pool = try ConnectionPool(configuration: .init(maxConcurrentCallsPerAddress: 1))
        let held = await holding.holdCall(through: pool)
        let waiting = Task { try await Self.echo(pool, address, "waiting") }
        #expect(await Self.eventually { pool.statistics.waiters == 1 })

        let shutdown = Task { await pool.shutdown() }
        await #expect {
            try await waiting.value
        } throws: { ($0 as? MuxRPCError)?.code == .shutDown }
        await #expect {
            try await Self.echo(pool, address, "too late")
        } throws: { ($0 as? MuxRPCError)?.code == .shutDown }
        #expect(pool.statistics.sessions == 1, "the session stays while its call is in flight")

        holding.release.fire()
        _ = try await held.value
        await shutdown.value
        #expect(pool.statistics.sessions == 0)
        #expect(pool.statistics.connections == 0)
        #expect(await Self.eventually { server.connectionCount == 0 })
        await server.shutdown()
    }

    @Test("calls still in flight at the end of the grace period fail", arguments: [ConnectionMode.consulMultiplex, .plain])
    func gracePeriodRunsOut(mode: ConnectionMode) async throws {
        let holding = try await HoldingServer()
        let server = holding.server
        let pool = try ConnectionPool(configuration: .init(connection: .init(mode: mode), shutdownGracePeriod: .milliseconds(20)))
        let held = await holding.holdCall(through: pool)
        await pool.shutdown()
        await #expect {
            _ = try await held.value
        } throws: { error in
            // Closed by the pool, not ended by the call's own deadline.
            (error as? RPCError).map { $0.code != .deadlineExceeded } ?? false
        }
        #expect(pool.statistics.connections == 0)
        holding.release.fire()
        await server.shutdown()
    }

    @Test("TLS sessions are pooled too")
    func tls() async throws {
        var configuration = MuxRPCServer.Configuration.patient()
        configuration.preamble.tls = try await TestCertificates.serverContext()
        configuration.preamble.requireTLS = true
        let server = MuxRPCServer(services: DemoServices.registry, configuration: configuration)
        let address = try await server.start()
        let pool = try ConnectionPool(configuration: .init(
            connection: .init(tls: try await TestCertificates.clientContext(), serverHostname: "localhost")
        ))
        for call in 0..<50 { try await Self.echo(pool, address, "tls \(call)") }
        #expect(server.statistics.connectionsAccepted == 1)
        #expect(pool.statistics.streamsOpened == 1)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("as a Service, the pool shuts down with its service group")
    func service() async throws {
        let server = MuxRPCServer(services: DemoServices.registry, configuration: .patient())
        let address = try await server.start()
        let pool = try ConnectionPool()
        try await testGracefulShutdown { trigger in
            let running = Task { try await pool.run() }
            try await Self.echo(pool, address, "while running")
            #expect(pool.statistics.sessions == 1)
            trigger.triggerGracefulShutdown()
            try await running.value
        }
        #expect(pool.statistics.sessions == 0)
        #expect(pool.statistics.connections == 0)
        await #expect {
            try await Self.echo(pool, address, "after")
        } throws: { ($0 as? MuxRPCError)?.code == .shutDown }
        await server.shutdown()
    }

    @Test("a configuration that cannot work is refused")
    func invalidConfiguration() {
        for configuration: ConnectionPool.Configuration in [.init(maxSessionsPerAddress: 0), .init(maxWaitersPerAddress: 0), .init(maxStreamsPerSession: 100_000)] {
            let error = #expect(throws: MuxRPCError.self) { try ConnectionPool(configuration: configuration) }
            #expect(error?.code == .invalidConfiguration)
            #expect(error?.message.hasPrefix("invalid connection pool configuration: ") == true)
        }
    }
}
