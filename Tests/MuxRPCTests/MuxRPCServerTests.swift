import DemoServices
import MsgpackRPC
import MuxRPC
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization
import Testing
import Yamux

/// Opens a plain (0x00) RPC connection to `address` and returns its client.
func dialPlain(_ address: SocketAddress) async throws -> RPCClient {
    try await MuxRPCConnection.connect(to: address, configuration: .init(mode: .plain)).openStream()
}

/// The demo services plus Hold.Call, which signals `entered` and answers
/// once `release` fires: a call that stays in flight as long as a test needs.
func servicesHoldingACall(entered: Signal, release: Signal) -> RPCServiceRegistry {
    var services = DemoServices.registry
    services.register(service: "Hold", method: "Call") { (_: RPCEmpty, _) -> RPCEmpty in
        entered.fire()
        await release.wait()
        return RPCEmpty()
    }
    return services
}

/// A server of the demo services plus Hold.Call, started on loopback.
struct HoldingServer {
    let server: MuxRPCServer
    let address: SocketAddress
    let entered = Signal()
    let release = Signal()

    init(shutdownGracePeriod: Duration = .seconds(10)) async throws {
        server = MuxRPCServer(
            services: servicesHoldingACall(entered: entered, release: release),
            configuration: .patient(shutdownGracePeriod: shutdownGracePeriod)
        )
        address = try await server.start()
    }

    /// Starts a Hold.Call through `pool` and returns once the server is in it.
    /// The call gives up after a minute, so that a regression fails a test
    /// rather than hanging it.
    func holdCall(through pool: ConnectionPool) async -> Task<RPCEmpty, any Error> {
        let address = self.address
        let held = Task {
            try await pool.call("Hold.Call", RPCEmpty(), returning: RPCEmpty.self, on: address, options: .init(timeout: .seconds(60)))
        }
        await entered.wait()
        return held
    }
}

/// Opens new streams (or connections) with `open` until one is refused,
/// at open or on its first call; false if 1,000 attempts all got through.
func eventuallyRefused(_ open: () async throws -> RPCClient) async -> Bool {
    for _ in 0..<1_000 {
        do {
            let late = try await open()
            let ping = try? await late.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self, options: .init(timeout: .seconds(30)))
            if ping == nil { return true }
        } catch {
            return true
        }
    }
    return false
}

/// Completes `completed` when the TLS handshake before it in the pipeline
/// finishes.
private final class HandshakeWatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let completed: EventLoopPromise<Void>

    init(completed: EventLoopPromise<Void>) { self.completed = completed }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { completed.succeed() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        completed.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}

/// A one-shot signal a test can wait for. A cancelled wait (a test over its
/// time limit) returns at once, so that the test ends with its failure
/// instead of hanging the run.
final class Signal: Sendable {
    private struct State {
        var fired = false
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    func fire() {
        let waiters = state.withLock { state in
            state.fired = true
            defer { state.waiters = [:] }
            return state.waiters.values
        }
        waiters.forEach { $0.resume() }
    }

    func wait() async {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    if state.fired || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}

extension MuxRPCServer.Configuration {
    /// For tests whose subject is not the handshake timeout: a busy machine
    /// must not turn into refused connections.
    static func patient(maxConnections: Int = 10_000, shutdownGracePeriod: Duration = .seconds(10)) -> Self {
        .init(
            preamble: .init(handshakeTimeout: .minutes(10)),
            maxConnections: maxConnections,
            shutdownGracePeriod: shutdownGracePeriod
        )
    }
}

@Suite("MuxRPC server", .timeLimit(.minutes(5)))
struct MuxRPCServerTests {
    static let modes: [ConnectionMode] = [.plain, .consulMultiplex, .nomadMultiplex]

    @Test("a yamux configuration that cannot work is refused before anything listens or dials")
    func unworkableYamuxConfigurationIsRefused() async throws {
        var yamux = YamuxConfiguration()
        yamux.maxStreamWindowSize = YamuxConfiguration.initialStreamWindow - 1
        try await expectRefusedEverywhere(yamux, with: YamuxError.self, server: \.yamux, connection: \.yamux) { $0.code == .invalidConfiguration }
    }

    @Test("serves every demo service in every mode, with and without TLS", arguments: modes, [false, true])
    func everyMode(mode: ConnectionMode, tls: Bool) async throws {
        let serverTLS = tls ? try await TestCertificates.serverContext() : nil
        var configuration = MuxRPCServer.Configuration.patient()
        configuration.preamble.tls = serverTLS
        configuration.preamble.requireTLS = tls
        let server = MuxRPCServer(services: DemoServices.registry, configuration: configuration)
        let address = try await server.start()
        let connection = try await MuxRPCConnection.connect(
            to: address,
            configuration: .init(mode: mode, tls: tls ? try await TestCertificates.clientContext() : nil, serverHostname: "localhost")
        )
        let client = try await connection.openStream()
        _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        let echo = try await client.call("Echo.Echo", DemoServices.EchoArgs(msg: [1, 2, 3]), returning: DemoServices.EchoReply.self)
        #expect(echo.msg == [1, 2, 3])
        let sum = try await client.call("Arith.Add", DemoServices.AddArgs(a: .max, b: .min), returning: DemoServices.AddReply.self)
        #expect(sum.sum == -1)
        await #expect(throws: RPCError.self) {
            _ = try await client.call("Test.Fail", DemoServices.FailArgs(message: "no"), returning: RPCEmpty.self)
        }
        #expect(client.isUsable)

        // 16 streams at once, each with its own calls.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<16 {
                group.addTask {
                    let stream = try await connection.openStream()
                    for call in 0..<10 {
                        let message = [UInt8](repeating: UInt8(lane), count: call * 100)
                        let reply = try await stream.call("Echo.Echo", DemoServices.EchoArgs(msg: message), returning: DemoServices.EchoReply.self)
                        #expect(reply.msg == message)
                    }
                    try await stream.close()
                }
            }
            try await group.waitForAll()
        }
        try await client.close()
        await connection.close()
        await server.shutdown()
    }

    @Test("Nomad mode closes streams of a kind other than RPC")
    func nomadNonRPCStream() async throws {
        let server = MuxRPCServer(services: DemoServices.registry, configuration: .patient())
        let address = try await server.start()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: .init(mode: .nomadMultiplex))
        let stream = try await connection.session!.openStream()
        let received = try await stream.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: [NomadStreamType.streaming, 0x80]))
            var received = 0
            for try await chunk in inbound { received += chunk.readableBytes }
            return received
        }
        #expect(received == 0)
        // The session itself still serves RPC streams.
        let client = try await connection.openStream()
        _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        await connection.close()
        await server.shutdown()
    }

    @Test("graceful shutdown of a multiplexed connection: GoAway, the call in flight finishes, then the session closes")
    func gracefulShutdownMultiplexed() async throws {
        let entered = Signal()
        let release = Signal()
        let services = servicesHoldingACall(entered: entered, release: release)
        let server = MuxRPCServer(services: services, configuration: .patient(shutdownGracePeriod: .seconds(600)))
        let address = try await server.start()
        let connection = try await MuxRPCConnection.connect(to: address)
        let idle = try await connection.openStream()
        _ = try await idle.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        let busy = try await connection.openStream()
        let held = Task { try await busy.call("Hold.Call", RPCEmpty(), returning: RPCEmpty.self) }
        await entered.wait()

        let shutdown = Task { await server.shutdown() }
        // After GoAway the session refuses new streams.
        let refused = await eventuallyRefused { try await connection.openStream() }
        #expect(refused, "the server still took new work after shutdown began")
        release.fire()
        _ = try await held.value  // the call in flight completes normally
        await shutdown.value
        _ = await connection.session!.waitForClose()  // returns once the server closed the session
        #expect(server.connectionCount == 0)
    }

    @Test("graceful shutdown: no new connections, the call in flight finishes, then the connection closes")
    func gracefulShutdown() async throws {
        let entered = Signal()
        let release = Signal()
        let services = servicesHoldingACall(entered: entered, release: release)
        // Longer than the test takes when all is well, so a connection left
        // to the grace period's end shows in the statistics.
        let server = MuxRPCServer(services: services, configuration: .patient(shutdownGracePeriod: .seconds(30)))
        let address = try await server.start()
        let client = try await dialPlain(address)

        async let held = client.call("Hold.Call", RPCEmpty(), returning: RPCEmpty.self, options: .init(timeout: .seconds(60)))
        await entered.wait()
        async let shutdown: Void = server.shutdown()

        // The listener goes away: new connections are refused (or closed at once).
        let refused = await eventuallyRefused { try await dialPlain(address) }

        #expect(refused, "the server still took new connections after shutdown began")
        release.fire()
        _ = try await held  // the call in flight completes normally
        await shutdown
        try await client.channel.closeFuture.get()  // and then its connection closes
        #expect(server.connectionCount == 0)
        // Every connection closed by the graceful path, the ones dialled
        // while the shutdown began among them.
        #expect(server.statistics.connectionsClosedAtGracePeriodEnd == 0)
    }

    @Test("a connection that has not sent its preamble when shutdown begins is closed at once", arguments: [false, true])
    func shutdownClosesConnectionsBeforeTheirPreamble(tls: Bool) async throws {
        var configuration = MuxRPCServer.Configuration.patient(shutdownGracePeriod: .seconds(30))
        if tls { configuration.preamble.tls = try await TestCertificates.serverContext() }
        let server = MuxRPCServer(services: DemoServices.registry, configuration: configuration)
        let address = try await server.start()
        // Connected, and silent; with TLS it has asked for TLS (0x03) and
        // finished the handshake, but not sent the mode's byte inside it.
        let silent = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: address).get()
        if tls {
            let context = try await TestCertificates.clientContext()
            let handshake = silent.eventLoop.makePromise(of: Void.self)
            try await silent.eventLoop.submit {
                silent.writeAndFlush(ByteBuffer(integer: ConnectionPreambleByte.tls), promise: nil)
                try silent.pipeline.syncOperations.addHandlers(
                    try NIOSSLClientHandler(context: context, serverHostname: "localhost"),
                    HandshakeWatcher(completed: handshake)
                )
            }.get()
            try await handshake.futureResult.get()
        }
        #expect(await ConnectionPoolTests.eventually { server.connectionCount == 1 })

        await server.shutdown()
        try await silent.closeFuture.get()
        #expect(server.statistics.connectionsClosedAtGracePeriodEnd == 0, "the silent connection held the shutdown to its grace period")
    }

    @Test("a shutdown whose calls outlast the grace period closes them")
    func gracePeriodRunsOut() async throws {
        let entered = Signal()
        var services = DemoServices.registry
        services.register(service: "Hold", method: "Forever") { (_: RPCEmpty, _) -> RPCEmpty in
            entered.fire()
            try await Task.sleep(for: .seconds(3600))
            return RPCEmpty()
        }
        let server = MuxRPCServer(services: services, configuration: .patient(shutdownGracePeriod: .milliseconds(50)))
        let address = try await server.start()
        let client = try await dialPlain(address)
        let held = Task { try await client.call("Hold.Forever", RPCEmpty(), returning: RPCEmpty.self) }
        await entered.wait()
        await server.shutdown()
        await #expect(throws: RPCError.self) { _ = try await held.value }
        #expect(server.connectionCount == 0)
        #expect(server.statistics.connectionsClosedAtGracePeriodEnd == 1)
    }

    @Test("connections over the limit are closed at once")
    func connectionLimit() async throws {
        let server = MuxRPCServer(services: DemoServices.registry, configuration: .patient(maxConnections: 1))
        let address = try await server.start()
        let first = try await dialPlain(address)
        _ = try await first.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        // The server closes the second connection at once: the client sees it
        // while setting up or on its first call.
        await #expect(throws: (any Error).self) {
            let second = try await dialPlain(address)
            _ = try await second.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        }
        _ = try await first.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        await server.shutdown()
    }
}
