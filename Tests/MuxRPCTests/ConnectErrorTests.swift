import Glibc
import MsgpackRPC
import MuxRPC
@testable import MuxRPCTransport
import NIOCore
import NIOPosix
import Testing

/// Connections that cannot be made fail with a `MuxRPCError` that says so in
/// plain words and names the server.
@Suite("Connect errors", .timeLimit(.minutes(5)))
struct ConnectErrorTests {
    /// A port on 127.0.0.1 that was just bound and closed: nothing listens.
    static func closedPort() async throws -> SocketAddress {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let address = try #require(channel.localAddress)
        try await channel.close()
        return address
    }

    /// Expects `error` to say that `address` refused the connection.
    static func expectRefused(_ error: MuxRPCError?, by address: SocketAddress, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let error else { return }
        #expect(error.code == .connectionRefused, sourceLocation: sourceLocation)
        #expect(error.description == "connection refused: 127.0.0.1:\(address.port!)", sourceLocation: sourceLocation)
        #expect(error.address == address, sourceLocation: sourceLocation)
        #expect((error.cause as? IOError)?.errnoCode == ECONNREFUSED, "NIO's error is kept: \(String(describing: error.cause))", sourceLocation: sourceLocation)
        #expect(!error.requestWasSent && error.isRetrySafe, sourceLocation: sourceLocation)
    }

    @Test("a closed port: connect says \"connection refused\" with the address", arguments: [ConnectionMode.consulMultiplex, .nomadMultiplex])
    func refused(mode: ConnectionMode) async throws {
        let address = try await Self.closedPort()
        let error = await #expect(throws: MuxRPCError.self) {
            _ = try await MuxRPCConnection.connect(to: address, configuration: .init(mode: mode))
        }
        Self.expectRefused(error, by: address)
    }

    @Test("an endpoint by name: the name is resolved, and a closed port behind it is refused as by address")
    func refusedByName() async throws {
        let address = try await Self.closedPort()
        let error = await #expect(throws: MuxRPCError.self) {
            _ = try await MuxRPCConnection.connect(to: Endpoint(host: "localhost", port: address.port!))
        }
        #expect(error?.code == .connectionRefused)
        #expect(error?.address?.port == address.port)
    }

    @Test("an endpoint whose name does not resolve, or that is not host:port, fails before any dial")
    func unresolvableOrMalformed() async throws {
        let unresolved = await #expect(throws: MuxRPCError.self) {
            _ = try await MuxRPCConnection.connect(to: Endpoint(host: "no-such-host.invalid", port: 8300))
        }
        #expect(unresolved?.code == .unreachable)
        #expect(unresolved?.description.contains("could not resolve no-such-host.invalid") == true)
        #expect(unresolved?.requestWasSent == false)
        let malformed = await #expect(throws: MuxRPCError.self) {
            _ = try await MuxRPCConnection.connect(to: "no-port")
        }
        #expect(malformed?.code == .invalidConfiguration)
    }

    @Test("a closed port in plain mode: each stream is a connection, and its open says \"connection refused\"")
    func refusedPlain() async throws {
        let address = try await Self.closedPort()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: .init(mode: .plain))
        let error = await #expect(throws: MuxRPCError.self) { _ = try await connection.openStream() }
        Self.expectRefused(error, by: address)
    }

    @Test("a closed port through the pool, in every mode: the call fails with the same refusal", arguments: [
        ConnectionMode.plain, .consulMultiplex, .nomadMultiplex,
    ])
    func refusedThroughPool(mode: ConnectionMode) async throws {
        let address = try await Self.closedPort()
        let pool = try ConnectionPool(configuration: .init(connection: .init(mode: mode)))
        let error = await #expect(throws: MuxRPCError.self) {
            _ = try await pool.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self, on: address)
        }
        Self.expectRefused(error, by: address)
        #expect(pool.statistics.sessions == 0)
        await pool.shutdown()
    }

    @Test("a server that never completes the handshake: connect times out with .connectTimeout")
    func connectTimeout() async throws {
        // A listener with a backlog of 0 that never accepts: the kernel
        // completes one handshake into its accept queue, which is then full,
        // and drops every later SYN, so a second connect hangs until our
        // timeout ends it.
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 0)
            .serverChannelOption(.autoRead, value: false)
            .bind(host: "127.0.0.1", port: 0).get()
        let address = try #require(listener.localAddress)
        let filler = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: address).get()

        let error = await #expect(throws: MuxRPCError.self) {
            _ = try await MuxRPCConnection.connect(to: address, configuration: .init(connectTimeout: .milliseconds(200)))
        }
        #expect(error?.code == .connectTimeout)
        #expect(error?.description == "connect timed out after 0.2 seconds: 127.0.0.1:\(address.port!)")
        #expect(error?.address == address)
        #expect(error?.cause is ChannelError)
        #expect(error?.isRetrySafe == true)
        try await filler.close()
        try await listener.close()
    }

    @Test("NIO's errno decides the code: unreachable hosts and networks, the kernel's own timeout, anything else")
    func errnoMapping() throws {
        let address = try SocketAddress(ipAddress: "10.0.0.5", port: 8300)
        func mapped(_ errno: CInt) -> MuxRPCError {
            MuxRPCError.connectFailure(IOError(errnoCode: errno, reason: "connection reset (error set)"), to: address, timeout: .seconds(10))
        }
        #expect(mapped(ECONNREFUSED).description == "connection refused: 10.0.0.5:8300")
        #expect(mapped(EHOSTUNREACH).code == .unreachable)
        #expect(mapped(EHOSTUNREACH).description == "host unreachable: 10.0.0.5:8300")
        #expect(mapped(ENETUNREACH).code == .unreachable)
        #expect(mapped(ENETUNREACH).description == "network unreachable: 10.0.0.5:8300")
        #expect(mapped(ETIMEDOUT).code == .connectTimeout)
        let other = mapped(EACCES)
        #expect(other.code == .connectFailed)
        #expect(other.description.hasPrefix("connect failed ("))
        #expect(other.description.hasSuffix("): 10.0.0.5:8300"))
        #expect(other.cause is IOError)
        #expect(mapped(EHOSTUNREACH).isRetrySafe && other.isRetrySafe)
    }
}
