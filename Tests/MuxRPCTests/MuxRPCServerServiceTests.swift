import DemoServices
import MsgpackRPC
import MuxRPC
import NIOCore
import ServiceLifecycleTestKit
import Testing
import Yamux

/// `MuxRPCServer.run()`: the server in a service group, against real TCP
/// clients.
@Suite("MuxRPC server as a Service", .timeLimit(.minutes(5)))
struct MuxRPCServerServiceTests {
    @Test("run() binds, serves until graceful shutdown, lets the call in flight finish, refuses new connections, then returns")
    func gracefulShutdown() async throws {
        let entered = Signal()
        let release = Signal()
        // Longer than the test takes when all is well, so a call cut off at
        // the grace period's end shows in the statistics.
        let server = MuxRPCServer(
            services: servicesHoldingACall(entered: entered, release: release),
            configuration: .patient(shutdownGracePeriod: .seconds(600))
        )
        try await testGracefulShutdown { trigger in
            let running = Task { try await server.run() }
            // run() binds the server itself: its address appears once bound.
            #expect(await waitUntil { server.localAddress != nil })
            let address = try #require(server.localAddress)

            let connection = try await MuxRPCConnection.connect(to: address)
            let goAway = Signal()
            connection.session?.onRemoteGoAway { goAway.fire() }
            let stream = try await connection.openStream()
            _ = try await stream.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
            let held = Task { try await stream.call("Hold.Call", RPCEmpty(), returning: RPCEmpty.self) }
            await entered.wait()

            trigger.triggerGracefulShutdown()
            // The server closes its listener before it sends GoAway: once the
            // session has heard GoAway, a new connection finds no listener.
            await goAway.wait()
            let refused = await #expect(throws: MuxRPCError.self) { _ = try await MuxRPCConnection.connect(to: address) }
            #expect(refused?.code == .connectionRefused)

            release.fire()
            _ = try await held.value  // the call in flight completes normally
            try await running.value  // and run() returns once the server has drained
            #expect(server.connectionCount == 0)
            #expect(server.statistics.connectionsClosedAtGracePeriodEnd == 0)
            await connection.close()
        }
    }

    @Test("run() on a started server serves it; cancellation (a forced shutdown) closes its connections at once")
    func cancelled() async throws {
        let entered = Signal()
        let release = Signal()
        let server = MuxRPCServer(
            services: servicesHoldingACall(entered: entered, release: release),
            configuration: .patient(shutdownGracePeriod: .seconds(600))
        )
        let address = try await server.start()
        try await testGracefulShutdown { _ in
            let running = Task { try await server.run() }
            let client = try await dialPlain(address)
            let held = Task { try await client.call("Hold.Call", RPCEmpty(), returning: RPCEmpty.self) }
            await entered.wait()
            #expect(server.localAddress == address, "run() kept the server start() bound")

            running.cancel()
            try await running.value
            // The grace period was not waited for: the call was cut off.
            await #expect(throws: RPCError.self) { _ = try await held.value }
            #expect(server.connectionCount == 0)
            #expect(server.statistics.connectionsClosedAtGracePeriodEnd == 1)
            release.fire()
        }
    }

    @Test("run() on a server already shut down returns at once")
    func afterShutdown() async throws {
        let server = MuxRPCServer(services: DemoServices.registry, configuration: .patient())
        try await server.start()
        await server.shutdown()
        try await testGracefulShutdown { _ in
            try await server.run()
        }
    }
}
