import DemoServices
import MsgpackRPC
import MuxRPC
@testable import MuxRPCTransport
import NIOCore
import NIOPosix
import Testing
import Yamux

/// Busy polling on real connections. Each test has an event loop of its own,
/// so that the loop's poller serves only the test's connections. What the
/// tests look at is the poller's state and counters, read on the loop; the
/// policy's timing-dependent choices are pinned by its parameters (every gap
/// dense, or none), so that no assertion depends on how fast the machine is.
@Suite("Busy polling", .timeLimit(.minutes(5)))
struct BusyPollingTests {
    /// Adaptive, with every gap between traffic counted as dense and a
    /// score no run of misses can use up: the loop engages after its first
    /// few reads and flushes and stays engaged, however slow the machine.
    static func engaging() -> BusyPollers {
        var parameters = BusyPolling.adaptive.spinParameters
        parameters.denseGap = .seconds(3600)
        parameters.initialScore = 1 << 40
        parameters.maximumScore = 1 << 40
        return BusyPollers(.adaptive, spinParameters: parameters)
    }

    /// Adaptive, with no gap counted as dense (the monotonic clock's gaps
    /// are never negative): the loop never engages.
    static func neverEngaging() -> BusyPollers {
        var parameters = BusyPolling.adaptive.spinParameters
        parameters.denseGap = .nanoseconds(-1)
        return BusyPollers(.adaptive, spinParameters: parameters)
    }

    /// A server and a connection to it, both on `loop`, keepalive off so that only calls make traffic.
    private struct Pair {
        let server: MuxRPCServer
        let connection: MuxRPCConnection
        let stream: RPCClient

        init(on loop: any EventLoop, server serverPollers: BusyPollers?, client clientPollers: BusyPollers?) async throws {
            var serverConfiguration = MuxRPCServer.Configuration.patient()
            serverConfiguration.yamux.enableKeepAlive = false
            serverConfiguration.busyPolling = serverPollers
            server = MuxRPCServer(services: DemoServices.registry, configuration: serverConfiguration, group: loop)
            let address = try await server.start()
            var connectionConfiguration = MuxRPCConnection.Configuration(busyPolling: clientPollers)
            connectionConfiguration.yamux.enableKeepAlive = false
            connection = try await MuxRPCConnection.connect(to: address, configuration: connectionConfiguration, group: loop)
            stream = try await connection.openStream()
        }

        func echo() async throws {
            let reply = try await stream.call("Echo.Echo", DemoServices.EchoArgs(msg: [1, 2, 3]), returning: DemoServices.EchoReply.self)
            #expect(reply.msg == [1, 2, 3])
        }

        func close() async {
            await connection.close()
            await server.shutdown()
        }
    }

    /// A loop's poller's state, read on the loop.
    private struct PollerState: Equatable {
        var isPolling: Bool
        var isEngaged: Bool
        var turns: Int
        var spins: Int
        var engagements: Int
        var misses: Int

        init(_ poller: BusyPoller) {
            isPolling = poller.isPolling
            isEngaged = poller.policy.isEngaged
            turns = poller.turns
            spins = poller.policy.spins
            engagements = poller.policy.engagements
            misses = poller.policy.misses
        }
    }

    private func state(of pollers: BusyPollers, on loop: any EventLoop) async throws -> PollerState? {
        try await loop.submit { pollers.existing(on: loop).map(PollerState.init) }.get()
    }

    /// Waits, within a generous bound, until the loop's poller has stopped polling.
    private func quiet(_ pollers: BusyPollers, on loop: any EventLoop) async throws -> PollerState? {
        _ = await waitUntil { (try? await state(of: pollers, on: loop))?.isPolling != true }
        return try await state(of: pollers, on: loop)
    }

    /// Runs `body` once a `Pair` on an event loop of its own has answered a
    /// call, then closes the pair (again, if `body` did) and the loop.
    private func withPair(
        server: BusyPollers?,
        client: BusyPollers?,
        _ body: (Pair, any EventLoop) async throws -> Void
    ) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let pair = try await Pair(on: loop, server: server, client: client)
        try await pair.echo()
        try await body(pair, loop)
        await pair.close()
        try await group.shutdownGracefully()
    }

    @Test func denseTrafficEngagesAndTheLoopSleepsOnceItStops() async throws {
        let pollers = Self.engaging()
        try await withPair(server: pollers, client: pollers) { pair, loop in
            for _ in 0..<20 { try await pair.echo() }
            // Polling ends once a window passes with no traffic: one miss...
            let idle = try #require(try await quiet(pollers, on: loop))
            #expect(!idle.isPolling)
            #expect(idle.engagements == 1)
            #expect(idle.spins > 0)
            #expect(idle.turns > 0)
            #expect(idle.misses >= 1)
            // ...and the loop stays asleep while it runs other work: no turn is spun.
            for _ in 0..<100 { try await loop.submit {}.get() }
            #expect(try await state(of: pollers, on: loop) == idle)

            // The next call polls again.
            try await pair.echo()
            let after = try #require(try await quiet(pollers, on: loop))
            #expect(after.spins > idle.spins)
            #expect(after.turns > idle.turns)
        }
    }

    @Test func sparseTrafficNeverSpins() async throws {
        let pollers = Self.neverEngaging()
        try await withPair(server: pollers, client: pollers) { pair, loop in
            for _ in 0..<50 { try await pair.echo() }
            let state = try #require(try await state(of: pollers, on: loop))
            #expect(!state.isPolling)
            #expect(!state.isEngaged)
            #expect(state.spins == 0)
            #expect(state.turns == 0)
        }
    }

    @Test func aFixedWindowPollsAfterEveryCall() async throws {
        let pollers = BusyPollers(.fixedWindow(.microseconds(50)))
        try await withPair(server: pollers, client: pollers) { pair, loop in
            let first = try #require(try await quiet(pollers, on: loop))
            #expect(first.isEngaged)
            #expect(first.spins > 0)
            try await pair.echo()
            let second = try #require(try await quiet(pollers, on: loop))
            #expect(second.spins > first.spins)
            #expect(second.misses > first.misses)
        }
    }

    @Test func theLastConnectionGoneClosesThePoller() async throws {
        let pollers = Self.engaging()
        try await withPair(server: pollers, client: pollers) { pair, loop in
            let poller = try #require(try await loop.submit { pollers.existing(on: loop) }.get())

            await pair.close()
            // The eventfd is closed and the loop has no poller any more.
            #expect(await waitUntil { poller.isClosed })
            #expect(try await loop.submit { pollers.existing(on: loop) }.get() == nil)
        }
    }

    @Test func noPollersOrADisabledSettingMeansNoPoller() async throws {
        let disabled = BusyPollers(.disabled)
        try await withPair(server: disabled, client: nil) { _, loop in
            let state = try await state(of: disabled, on: loop)
            #expect(state == nil)
        }
    }

    @Test func oneEndPollingIsEnough() async throws {
        let pollers = Self.engaging()
        try await withPair(server: nil, client: pollers) { pair, loop in
            for _ in 0..<20 { try await pair.echo() }
            let state = try #require(try await quiet(pollers, on: loop))
            #expect(state.engagements == 1)
            #expect(state.turns > 0)
        }
    }

    @Test func eachPollersObjectHasItsOwnPollerOnALoop() async throws {
        // Nothing is shared beyond the object: the server's and the
        // client's objects each poll the loop for their own connections.
        let serverPollers = Self.engaging()
        let clientPollers = Self.neverEngaging()
        try await withPair(server: serverPollers, client: clientPollers) { pair, loop in
            for _ in 0..<20 { try await pair.echo() }
            let pollers = try await loop.submit { (serverPollers.existing(on: loop), clientPollers.existing(on: loop)) }.get()
            let server = try #require(pollers.0)
            let client = try #require(pollers.1)
            #expect(server !== client)
            let serverState = try #require(try await quiet(serverPollers, on: loop))
            let clientState = try #require(try await state(of: clientPollers, on: loop))
            #expect(serverState.engagements == 1)
            #expect(clientState.spins == 0)
        }
    }

    @Test func shuttingTheLoopDownWithConnectionsOpenClosesThePoller() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let pollers = Self.engaging()
        let pair = try await Pair(on: loop, server: pollers, client: pollers)
        try await pair.echo()
        let poller = try #require(try await loop.submit { pollers.existing(on: loop) }.get())

        try await group.shutdownGracefully()
        #expect(await waitUntil { poller.isClosed })
        #expect(pollers.existing(on: loop) == nil)
        withExtendedLifetime(pair) {}
    }

    @Test(arguments: [Duration.microseconds(-1), BusyPolling.maximumWindow + .nanoseconds(1)])
    func windowsOutOfRangeAreRefused(window: Duration) async throws {
        for polling in [BusyPolling(window: window), .fixedWindow(window)] {
            let error = #expect(throws: MuxRPCError.self) { try polling.validate() }
            #expect(error?.code == .invalidConfiguration)
            #expect(error?.description.contains("busy polling window") == true)
            try await expectRefusedEverywhere(
                BusyPollers(polling), with: MuxRPCError.self, server: \.busyPolling, connection: \.busyPolling
            )
        }
    }

    @Test func windowsInRangeAreAccepted() throws {
        for window in [Duration.zero, .microseconds(50), BusyPolling.maximumWindow] {
            try BusyPolling(window: window).validate()
            try BusyPolling.fixedWindow(window).validate()
        }
        #expect(!BusyPolling.disabled.isEnabled)
        #expect(BusyPolling.adaptive.isEnabled)
        #expect(BusyPolling.adaptive.isAdaptive)
        #expect(!BusyPolling.fixedWindow(.microseconds(50)).isAdaptive)
    }

    @Test func byDefaultEachConfigurationPollsAdaptivelyWithAnObjectOfItsOwn() throws {
        let server = try #require(MuxRPCServer.Configuration().busyPolling)
        let connection = try #require(MuxRPCConnection.Configuration().busyPolling)
        #expect(server.setting == .adaptive)
        #expect(connection.setting == .adaptive)
        // Nothing process-wide: each configuration made has its own object.
        #expect(server !== connection)
        let anotherServer = try #require(MuxRPCServer.Configuration().busyPolling)
        let poolConnection = try #require(ConnectionPool.Configuration().connection.busyPolling)
        #expect(anotherServer !== server)
        #expect(poolConnection !== connection)
    }
}
