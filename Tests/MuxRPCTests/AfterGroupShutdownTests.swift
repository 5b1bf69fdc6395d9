import DemoServices
import MsgpackRPC
import MuxRPC
import NIOCore
import NIOPosix
import Testing
import Yamux

/// Closing MuxRPC's objects after their event loop group has shut down is a
/// misuse (NIO drops work for a dead loop, so nothing scheduled there runs,
/// and no future of it completes off the loop), but a common one in
/// teardown code. Each close and shutdown must return at once.
@Suite(.timeLimit(.minutes(1))) struct AfterGroupShutdownTests {
    @Test(arguments: [ConnectionMode.consulMultiplex, .nomadMultiplex, .plain])
    func closingAfterTheGroupShutDownReturns(mode: ConnectionMode) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = MuxRPCServer(services: DemoServices.registry, group: group)
        let address = try await server.start()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: .init(mode: mode), group: group)
        let stream = try await connection.openStream()
        let reply = try await stream.call("Echo.Echo", DemoServices.EchoArgs(msg: [1, 2, 3]), returning: DemoServices.EchoReply.self)
        #expect(reply.msg == [1, 2, 3])
        var poolConfiguration = ConnectionPool.Configuration()
        poolConfiguration.connection.mode = mode
        // Its session fails as the group goes; a replacement dialled then, on
        // a dying group, could never complete (NIO cannot run it, and its
        // debug builds stop on the promise left behind).
        poolConfiguration.sessionReplacementInterval = nil
        poolConfiguration.healthCheckInterval = nil
        let client = try MuxRPCClient(endpoints: [Endpoint(address)], configuration: .init(pool: poolConfiguration), group: group)
        let viaClient = try await client.call("Echo.Echo", DemoServices.EchoArgs(msg: [4]), returning: DemoServices.EchoReply.self)
        #expect(viaClient.msg == [4])

        try await group.shutdownGracefully()

        await connection.close()
        await server.shutdown()
        await client.shutdown()
        // And what is left answers without the loop: the session's end, the
        // client's shutdown.
        if mode != .plain {
            await #expect(throws: YamuxError.self) { _ = try await connection.openStream() }
            #expect(await connection.session?.waitForClose() != nil)
        }
        await #expect(throws: (any Error).self) {
            _ = try await client.call("Echo.Echo", DemoServices.EchoArgs(msg: [5]), returning: DemoServices.EchoReply.self)
        }
    }
}
