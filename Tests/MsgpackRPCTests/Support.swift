import DemoServices
import MessagePack
import MsgpackRPC
import NIOCore
import Testing
import TestSupport

/// An RPC-layer test server: a Swift `RPCServer` on 127.0.0.1:0, one RPC
/// stream per TCP connection (net/rpc straight on TCP, no yamux).
///
/// Not shared with YamuxTests' `YamuxTestServer`, which serves yamux
/// sessions: the two serve different layers, and one type for both would
/// make YamuxTests import MsgpackRPC. What they do share, the loopback
/// listener, is TestSupport's `bindLoopback`.
struct RPCTestServer {
    let channel: any Channel
    var port: Int { channel.localAddress!.port! }

    static func start(
        registry: RPCServiceRegistry = DemoServices.registry,
        configuration: RPCServer.Configuration = .init()
    ) async throws -> RPCTestServer {
        let server = RPCServer(registry: registry, configuration: configuration)
        let channel = try await bindLoopback { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addMsgpackRPCServer(server)
            }
        }
        return RPCTestServer(channel: channel)
    }

    func stop() async throws {
        try await channel.close()
    }
}

/// Connects an RPC client stream (net/rpc on TCP) to 127.0.0.1:`port`.
func connectRPCClient(port: Int, configuration: RPCClient.Configuration = .init()) async throws -> RPCClient {
    let channel = try await connectLoopback(port: port)
    return try await channel.eventLoop.submit {
        try channel.pipeline.syncOperations.addMsgpackRPCClient(configuration: configuration)
    }.get()
}

/// Runs `body` with a server and one client, closing both afterwards.
func withServerAndClient(
    registry: RPCServiceRegistry = DemoServices.registry,
    _ body: (RPCTestServer, RPCClient) async throws -> Void
) async throws {
    let server = try await RPCTestServer.start(registry: registry)
    let client = try await connectRPCClient(port: server.port)
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
