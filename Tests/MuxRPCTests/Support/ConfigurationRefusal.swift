import DemoServices
import MsgpackRPC
import MuxRPC
import NIOCore
import Testing

/// Expects `value`, set at `server` and at `connection`, to be refused with
/// a `Failure` for which `matches` holds, everywhere MuxRPC takes it: a
/// server's `start()`, a connection's `connect`, and a pool's configuration
/// check (the pool's connections take the connection's settings). Nothing
/// listens or dials: the checks come first.
func expectRefusedEverywhere<Value, Failure: Error>(
    _ value: Value,
    with failure: Failure.Type,
    server: WritableKeyPath<MuxRPCServer.Configuration, Value>,
    connection: WritableKeyPath<MuxRPCConnection.Configuration, Value>,
    sourceLocation: SourceLocation = #_sourceLocation,
    matching matches: (Failure) -> Bool = { _ in true }
) async throws {
    var serverConfiguration = MuxRPCServer.Configuration()
    serverConfiguration[keyPath: server] = value
    let serverError = await #expect(throws: failure, sourceLocation: sourceLocation) {
        try await MuxRPCServer(services: DemoServices.registry, configuration: serverConfiguration).start()
    }
    #expect(serverError.map(matches) == true, "server: \(String(describing: serverError))", sourceLocation: sourceLocation)
    var connectionConfiguration = MuxRPCConnection.Configuration()
    connectionConfiguration[keyPath: connection] = value
    let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
    let connectionError = await #expect(throws: failure, sourceLocation: sourceLocation) {
        _ = try await MuxRPCConnection.connect(to: address, configuration: connectionConfiguration)
    }
    #expect(connectionError.map(matches) == true, "connection: \(String(describing: connectionError))", sourceLocation: sourceLocation)
    var poolConfiguration = ConnectionPool.Configuration()
    poolConfiguration.connection = connectionConfiguration
    let poolError = #expect(throws: failure, sourceLocation: sourceLocation) { try poolConfiguration.validate() }
    #expect(poolError.map(matches) == true, "pool: \(String(describing: poolError))", sourceLocation: sourceLocation)
}
