import DemoServices
import MsgpackRPC
@testable import MuxRPC
import NIOCore
import NIOPosix
import Testing
import Yamux

/// Busy polling on real connections. Each test has an event loop of its own,
/// so that the loop's poller serves only the test's connections.
@Suite("Busy polling", .timeLimit(.minutes(5)))
struct BusyPollingTests {
    /// A server and a connection to it, both on `loop`, keepalive off so that only calls make traffic.
    private struct Pair {
        let server: MuxRPCServer
        let connection: MuxRPCConnection
        let stream: RPCClient

        init(on loop: any EventLoop, serverPolling: BusyPolling = .default, clientPolling: BusyPolling = .default) async throws {
            var serverConfiguration = MuxRPCServer.Configuration.patient()
            serverConfiguration.yamux.enableKeepAlive = false
            serverConfiguration.busyPolling = serverPolling
            server = MuxRPCServer(services: DemoServices.registry, configuration: serverConfiguration, group: loop)
            let address = try await server.start()
            var connectionConfiguration = MuxRPCConnection.Configuration(busyPolling: clientPolling)
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

    /// The loop's poller's state, read on the loop.
    private struct PollerState: Equatable {
        var isPolling: Bool
        var turns: Int
    }

    private func state(on loop: any EventLoop) async throws -> PollerState? {
        try await loop.submit { BusyPoller.existing(on: loop).map { PollerState(isPolling: $0.isPolling, turns: $0.turns) } }.get()
    }

    /// Waits, within a generous bound, until the loop's poller has stopped polling.
    private func quiet(on loop: any EventLoop) async throws -> PollerState? {
        _ = await waitUntil { (try? await state(on: loop))?.isPolling != true }
        return try await state(on: loop)
    }

    /// Runs `body` once a `Pair` on an event loop of its own has answered a
    /// call, then closes the pair (again, if `body` did) and the loop.
    private func withPair(
        serverPolling: BusyPolling = .default,
        clientPolling: BusyPolling = .default,
        _ body: (Pair, any EventLoop) async throws -> Void
    ) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let pair = try await Pair(on: loop, serverPolling: serverPolling, clientPolling: clientPolling)
        try await pair.echo()
        try await body(pair, loop)
        await pair.close()
        try await group.shutdownGracefully()
    }

    @Test func pollsAfterTrafficThenSleepsUntilTheNext() async throws {
        try await withPair { pair, loop in
            // Polling ends once the window passes with no traffic...
            let idle = try #require(try await quiet(on: loop))
            #expect(!idle.isPolling)
            #expect(idle.turns > 0)
            // ...and stays ended while the loop runs other work.
            for _ in 0..<100 { try await loop.submit {}.get() }
            try await Task.sleep(for: .milliseconds(20))
            #expect(try await state(on: loop) == idle)

            // The next call polls again.
            try await pair.echo()
            let after = try #require(try await quiet(on: loop))
            #expect(after.turns > idle.turns)
        }
    }

    @Test func theLastConnectionGoneClosesThePoller() async throws {
        try await withPair { pair, loop in
            let poller = try #require(try await loop.submit { BusyPoller.existing(on: loop) }.get())

            await pair.close()
            // The eventfd is closed and the loop has no poller any more.
            #expect(await waitUntil { poller.isClosed })
            #expect(try await loop.submit { BusyPoller.existing(on: loop) }.get() == nil)
        }
    }

    @Test func disabledOnBothEndsMeansNoPoller() async throws {
        try await withPair(serverPolling: .disabled, clientPolling: .disabled) { _, loop in
            let state = try await state(on: loop)
            #expect(state == nil)
        }
    }

    @Test func oneEndPollingIsEnough() async throws {
        try await withPair(serverPolling: .disabled, clientPolling: .default) { _, loop in
            let state = try #require(try await quiet(on: loop))
            #expect(state.turns > 0)
        }
    }

    @Test func shuttingTheLoopDownWithConnectionsOpenClosesThePoller() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let pair = try await Pair(on: loop)
        try await pair.echo()
        let poller = try #require(try await loop.submit { BusyPoller.existing(on: loop) }.get())

        try await group.shutdownGracefully()
        #expect(await waitUntil { poller.isClosed })
        #expect(BusyPoller.existing(on: loop) == nil)
        withExtendedLifetime(pair) {}
    }

    @Test(arguments: [Duration.microseconds(-1), BusyPolling.maximumWindow + .nanoseconds(1)])
    func windowsOutOfRangeAreRefused(window: Duration) async throws {
        let polling = BusyPolling(window: window)
        #expect(throws: BusyPollingConfigurationError.self) { try polling.validate() }
        try await expectRefusedEverywhere(polling, with: BusyPollingConfigurationError.self, server: \.busyPolling, connection: \.busyPolling)
    }

    @Test func windowsInRangeAreAccepted() throws {
        for window in [Duration.zero, .microseconds(50), BusyPolling.maximumWindow] {
            try BusyPolling(window: window).validate()
        }
        #expect(!BusyPolling.disabled.isEnabled)
        #expect(BusyPolling.default.isEnabled)
    }
}
