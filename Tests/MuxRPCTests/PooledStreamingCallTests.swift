import DemoServices
import MsgpackRPC
import MuxRPC
import NIOCore
import Testing

private typealias CountArgs = DemoStreamingServices.CountArgs
private typealias CountFrame = DemoStreamingServices.CountFrame

/// A Nomad-mode server of the demo services and the demo streaming methods.
private func startServer() async throws -> (MuxRPCServer, SocketAddress) {
    let server = MuxRPCServer(
        services: DemoServices.registry, streaming: DemoStreamingServices.registry, configuration: .patient()
    )
    return (server, try await server.start())
}

@Suite("Streaming calls through the pool and the client", .timeLimit(.minutes(5)))
struct PooledStreamingCallTests {
    @Test("a pool's streaming call opens its own stream beside an idle one, counts as in flight, and pools nothing")
    func poolStreamingCall() async throws {
        let (server, address) = try await startServer()
        let pool = try ConnectionPool(configuration: .init(connection: .init(mode: .nomadMultiplex)))
        // One ordinary call first, so the session has an idle stream: the
        // streaming call is granted it, puts it back, and opens its own.
        let sum = try await pool.call("Arith.Add", DemoServices.AddArgs(a: 2, b: 3), returning: DemoServices.AddReply.self, on: address)
        #expect(sum.sum == 5)
        #expect(pool.statistics.idleStreams == 1)

        var seen: [Int64] = []
        var inFlightDuringCall = 0
        for try await frame in pool.stream(to: address, "Stream.Count", CountArgs(count: 300), of: CountFrame.self) {
            if seen.isEmpty { inFlightDuringCall = pool.statistics.callsInFlight }
            seen.append(frame.n)
        }
        #expect(seen == Array(0..<300))
        #expect(inFlightDuringCall == 1)

        let after = pool.statistics
        #expect(after.callsInFlight == 0)
        // The idle stream is still there for ordinary calls, and the streaming
        // call's own stream was counted opened and closed, never pooled.
        #expect(after.idleStreams == 1)
        #expect(after.busyStreams == 0)
        #expect(after.streamsOpened == 2)
        #expect(after.streamsClosed == 1)
        let again = try await pool.call("Arith.Add", DemoServices.AddArgs(a: 1, b: 1), returning: DemoServices.AddReply.self, on: address)
        #expect(again.sum == 2)
        #expect(pool.statistics.streamsReused == 1)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("a running streaming call takes one of the address's call slots: with failFast, an ordinary call is refused as overloaded")
    func streamingCallHoldsASlot() async throws {
        let (server, address) = try await startServer()
        let pool = try ConnectionPool(configuration: .init(
            connection: .init(mode: .nomadMultiplex), maxConcurrentCallsPerAddress: 1, whenBusy: .failFast
        ))
        try await pool.withStreamingCall(to: address, "Stream.Echo", sending: CountArgs.self, receiving: CountArgs.self) { inbound, writer in
            try await writer.write(CountArgs(count: 7))
            var values = inbound.makeAsyncIterator()
            #expect(try await values.next() == CountArgs(count: 7))
            let refusal = await #expect(throws: MuxRPCError.self) {
                try await pool.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self, on: address)
            }
            #expect(refusal?.code == .overloaded)
        }
        #expect(pool.statistics.callsInFlight == 0)
        // The slot is free again.
        _ = try await pool.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self, on: address)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("a streaming call in Consul's mode is refused before anything is sent, and its lease ends")
    func consulModeRefusedAndLeaseEnds() async throws {
        let (server, address) = try await startServer()
        let pool = try ConnectionPool(configuration: .init(connection: .init(mode: .consulMultiplex)))
        let error = await #expect(throws: MuxRPCError.self) {
            try await pool.withStreamingCall(to: address, "Stream.Count", sending: CountArgs.self, receiving: CountFrame.self) { _, _ in }
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(pool.statistics.callsInFlight == 0)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("MuxRPCClient streams through its balancer and books the endpoint; an unknown method fails and leaves nothing in flight")
    func clientStreamingCall() async throws {
        let (server, address) = try await startServer()
        let client = try MuxRPCClient(
            endpoints: [Endpoint(host: "127.0.0.1", port: address.port!)],
            configuration: .init(mode: .nomadMultiplex)
        )
        var seen: [Int64] = []
        for try await frame in client.stream("Stream.Count", CountArgs(count: 100), of: CountFrame.self) {
            seen.append(frame.n)
        }
        #expect(seen == Array(0..<100))
        let books = try #require(client.endpointStatistics.first)
        #expect(books.calls == 1)
        #expect(books.failures == 0)
        #expect(books.callsInFlight == 0)

        await #expect(throws: (any Error).self) {
            for try await _ in client.stream("Stream.Nope", CountArgs(count: 1), of: CountFrame.self) {}
        }
        let afterRefusal = try #require(client.endpointStatistics.first)
        #expect(afterRefusal.callsInFlight == 0)
        #expect(afterRefusal.calls == 2)
        // The server answered (with a refusal): not the endpoint's failure.
        #expect(afterRefusal.failures == 0)
        await client.shutdown()
        await server.shutdown()
    }
}
