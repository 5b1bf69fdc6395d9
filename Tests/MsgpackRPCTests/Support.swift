import DemoServices
import MessagePack
import MsgpackRPC
import NIOCore
import NIOPosix
import Testing

/// A Swift RPC server on 127.0.0.1:0, one RPC stream per TCP connection.
struct TestServer {
    let channel: any Channel
    var port: Int { channel.localAddress!.port! }

    static func start(
        registry: RPCServiceRegistry = DemoServices.registry,
        configuration: RPCServer.Configuration = .init()
    ) async throws -> TestServer {
        let server = RPCServer(registry: registry, configuration: configuration)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addMsgpackRPCServer(server)
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return TestServer(channel: channel)
    }

    func stop() async throws {
        try await channel.close()
    }
}

/// Connects a raw TCP channel to 127.0.0.1:`port`.
func connect(port: Int) async throws -> any Channel {
    try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .connect(host: "127.0.0.1", port: port)
        .get()
}

/// Connects an RPC client stream to 127.0.0.1:`port`.
func connectClient(port: Int, configuration: RPCClient.Configuration = .init()) async throws -> RPCClient {
    let channel = try await connect(port: port)
    return try await channel.eventLoop.submit {
        try channel.pipeline.syncOperations.addMsgpackRPCClient(configuration: configuration)
    }.get()
}

/// Runs `body` with a server and one client, closing both afterwards.
func withServerAndClient(
    registry: RPCServiceRegistry = DemoServices.registry,
    _ body: (TestServer, RPCClient) async throws -> Void
) async throws {
    let server = try await TestServer.start(registry: registry)
    let client = try await connectClient(port: server.port)
    do {
        try await body(server, client)
    } catch {
        try? await client.close()
        try? await server.stop()
        throw error
    }
    try? await client.close()
    try await server.stop()
}

/// Expects `body` to throw an RPCError and returns it.
func expectRPCError(
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> RPCError? {
    do {
        try await body()
        Issue.record("expected an RPCError, the call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as RPCError {
        return error
    } catch {
        Issue.record("expected an RPCError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

extension ByteBuffer {
    init(hex: String) {
        let digits = hex.split(separator: " ").map { UInt8($0, radix: 16)! }
        self.init(bytes: digits)
    }

    var hex: String {
        readableBytesView.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
            .joined(separator: " ")
    }
}
