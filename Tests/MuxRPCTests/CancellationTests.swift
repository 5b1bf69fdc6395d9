import DemoServices
import Foundation
import MsgpackRPC
import MuxRPC
import NIOConcurrencyHelpers
import NIOCore
import TestSupport
import Testing

/// A cancelled call resets its stream at once, the pool lets the stream go
/// and its counts come back to where they were, and the server (ours or
/// Go's) sees the reset: ours cancels the handler's task.
@Suite("Cancellation reaches the server", .timeLimit(.minutes(5)))
struct CancellationTests {
    /// A server whose `Block.Wait` handler waits until its task is cancelled
    /// and says how it ended.
    final class BlockingServer: Sendable {
        let server: MuxRPCServer
        /// Fired when a `Block.Wait` handler starts waiting.
        let entered = Signal()
        /// Fired when a handler's wait ended by cancellation.
        let cancelled = Signal()
        /// How each handler's wait ended: "cancelled" or something else.
        let endings = NIOLockedValueBox<[String]>([])

        init() {
            var services = DemoServices.registry
            let (entered, cancelled, endings) = (entered, cancelled, endings)
            services.register(service: "Block", method: "Wait") { (_: RPCEmpty, _) -> RPCEmpty in
                entered.fire()
                do {
                    // Ends only by cancellation within the test's time limit.
                    try await Task.sleep(for: .seconds(3600))
                    endings.withLockedValue { $0.append("slept") }
                } catch {
                    let ending = error is CancellationError && Task.isCancelled ? "cancelled" : "\(error)"
                    endings.withLockedValue { $0.append(ending) }
                    cancelled.fire()
                    throw error
                }
                return RPCEmpty()
            }
            server = MuxRPCServer(services: services, configuration: .patient())
        }
    }

    @Test("a cancelled pool call resets its stream; the server's handler is cancelled; the pool's counts return to baseline",
          arguments: [ConnectionMode.consulMultiplex, .nomadMultiplex])
    func cancelledPoolCall(mode: ConnectionMode) async throws {
        let blocking = BlockingServer()
        let address = try await blocking.server.start()
        let pool = try ConnectionPool(configuration: .init(connection: .init(mode: mode)))
        // The cancelled call is the pool's first: it opens the one stream.
        let baseline = pool.statistics
        #expect(baseline.openStreams == 0)

        let call = Task { try await pool.call("Block.Wait", RPCEmpty(), returning: RPCEmpty.self, on: address) }
        await blocking.entered.wait()
        #expect(pool.statistics.busyStreams == 1)
        call.cancel()
        let error = await #expect(throws: RPCError.self) { try await call.value }
        #expect(error?.code == .cancelled)
        #expect(error?.isStreamUsable == false)

        // The handler ended by cancellation: a FIN would have let it run on
        // (a server answers what it was asked before it closes), so the
        // stream was reset.
        await blocking.cancelled.wait()
        #expect(blocking.endings.withLockedValue { $0 } == ["cancelled"])
        // The stream left the pool: not back on the free list, counted closed.
        let after = pool.statistics
        #expect(after.openStreams == baseline.openStreams)
        #expect(after.idleStreams == 0)
        #expect(after.busyStreams == 0 && after.callsInFlight == 0)
        #expect(after.streamsOpened == 1 && after.streamsClosed == 1)
        #expect(after.readySessions == 1)
        // The server frees the reset stream too.
        let freed = await waitUntil { blocking.server.statistics.streamsAlive == 0 }
        #expect(freed, "server streams alive: \(blocking.server.statistics.streamsAlive)")
        // The session serves on, on a new stream: the reset one was not reused.
        _ = try await pool.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self, on: address)
        #expect(pool.statistics.streamsOpened == 2 && pool.statistics.streamsReused == 0)
        #expect(blocking.endings.withLockedValue { $0 } == ["cancelled"])
        await pool.shutdown()
        await blocking.server.shutdown()
    }

    @Test("a cancelled MuxRPCClient call resets its stream and cancels the server's handler")
    func cancelledClientCall() async throws {
        let blocking = BlockingServer()
        let address = try await blocking.server.start()
        let client = try MuxRPCClient(endpoints: [Endpoint(address)])
        let baseline = client.pool.statistics

        let call = Task { try await client.call("Block.Wait", RPCEmpty(), returning: RPCEmpty.self) }
        await blocking.entered.wait()
        call.cancel()
        let error = await #expect(throws: RPCError.self) { try await call.value }
        #expect(error?.code == .cancelled)
        await blocking.cancelled.wait()
        #expect(blocking.endings.withLockedValue { $0 } == ["cancelled"])
        let after = client.pool.statistics
        #expect(after.openStreams == baseline.openStreams)
        #expect(after.idleStreams == 0)
        #expect(after.streamsOpened == 1 && after.streamsClosed == 1)
        #expect(after.callsInFlight == 0)
        // A cancellation says nothing of the endpoint.
        let endpoint = try #require(client.endpointStatistics.first)
        #expect(endpoint.failures == 0 && endpoint.callsInFlight == 0)
        await client.shutdown()
        await blocking.server.shutdown()
    }

    @Test("the handler's task is cancelled when the client's session dies")
    func sessionEndCancelsHandler() async throws {
        let blocking = BlockingServer()
        let address = try await blocking.server.start()
        let connection = try await MuxRPCConnection.connect(to: address)
        let stream = try await connection.openStream()
        let call = Task { try await stream.call("Block.Wait", RPCEmpty(), returning: RPCEmpty.self) }
        await blocking.entered.wait()
        await connection.close()
        await blocking.cancelled.wait()
        #expect(blocking.endings.withLockedValue { $0 } == ["cancelled"])
        let error = await #expect(throws: RPCError.self) { try await call.value }
        #expect(error?.isStreamUsable == false)
        await blocking.server.shutdown()
    }

    @Test("a cancelled call to the Go peer's Test.Sleep resets the stream: Go sees the reset, the pool its baseline")
    func cancelledCallToGo() async throws {
        guard try GoPeer.available() else { return }
        let peer = try await GoPeerProcess.start("rpc-peer", arguments: ["server", "-preamble"])
        defer { peer.terminate() }
        let port = try await peer.listeningPort()
        let client = try MuxRPCClient(
            endpoints: [Endpoint(host: "127.0.0.1", port: port)],
            configuration: .init(mode: .consulMultiplex)
        )
        let baseline = client.pool.statistics

        // Ten minutes: only the reset can end this call within the test.
        let call = Task { try await client.call("Test.Sleep", DemoServices.SleepArgs(ms: 600_000), returning: RPCEmpty.self) }
        _ = try await peer.waitForLine(prefix: "sleep started ms=600000")
        call.cancel()
        let error = await #expect(throws: RPCError.self) { try await call.value }
        #expect(error?.code == .cancelled)
        let after = client.pool.statistics
        #expect(after.openStreams == baseline.openStreams)
        #expect(after.idleStreams == 0)
        #expect(after.streamsOpened == 1 && after.streamsClosed == 1)

        // Go's stream reader saw ErrConnectionReset (a FIN would read as EOF).
        _ = try await peer.waitForLine(prefix: "stream reset")
        struct ResetsArgs: Codable, Sendable { var After: Int64 }
        struct ResetsReply: Codable, Sendable { var Count: Int64 }
        let resets = try await client.call("Test.WaitResets", ResetsArgs(After: 0), returning: ResetsReply.self)
        #expect(resets.Count == 1)
        // That call took a new stream: the reset one was not reused.
        #expect(client.pool.statistics.streamsOpened == 2 && client.pool.statistics.streamsReused == 0)
        await client.shutdown()
    }
}
