import DemoServices
import MessagePack
import MsgpackRPC
import MuxRPC
import NIOCore
import Testing
import Yamux

private typealias CountArgs = DemoStreamingServices.CountArgs
private typealias CountFrame = DemoStreamingServices.CountFrame
private typealias AddArgs = DemoServices.AddArgs
private typealias AddReply = DemoServices.AddReply

/// A server whose peers (one for each Nomad-mode session) arrive on the
/// returned stream, and whose `Relay.Add` calls `Arith.Add` back on the
/// node behind the caller's own session.
private func startServer() async throws -> (MuxRPCServer, SocketAddress, AsyncStream<MuxRPCPeer>) {
    let (peers, continuation) = AsyncStream.makeStream(of: MuxRPCPeer.self)
    var services = DemoServices.registry
    services.register(service: "Relay", method: "Add") { (args: AddArgs, context) in
        guard let node = context.peer else {
            throw RPCError(code: .serverError, message: "no peer", isStreamUsable: true)
        }
        return try await node.call("Arith.Add", args, returning: AddReply.self)
    }
    var configuration = MuxRPCServer.Configuration.patient()
    configuration.onPeerConnected = { continuation.yield($0) }
    let server = MuxRPCServer(services: services, streaming: DemoStreamingServices.registry, configuration: configuration)
    return (server, try await server.start(), peers)
}

/// A Nomad-mode client configuration that serves the demo services (and
/// streaming methods) to its server.
private func nodeConfiguration(services: Bool = true, streaming: Bool = true) -> MuxRPCConnection.Configuration {
    var configuration = MuxRPCConnection.Configuration(mode: .nomadMultiplex)
    if services { configuration.services = DemoServices.registry }
    if streaming { configuration.streamingServices = DemoStreamingServices.registry }
    return configuration
}

/// What a reset stream fails a call with, by when the reset lands: during
/// the call, the stream failing (`.transportFailure`); before the call is
/// written, the stream already failed (`.streamUnusable`) or closed
/// (`.connectionClosed`).
private let refusalCodes: Set<RPCError.Code> = [.transportFailure, .streamUnusable, .connectionClosed]

private func firstPeer(_ peers: AsyncStream<MuxRPCPeer>) async throws -> MuxRPCPeer {
    var iterator = peers.makeAsyncIterator()
    return try #require(await iterator.next())
}

@Suite("Calls from server to client", .timeLimit(.minutes(5)))
struct ServerToClientTests {
    @Test("the server calls the node over the session the node dialled (0x01)")
    func plainCall() async throws {
        let (server, address, peers) = try await startServer()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: nodeConfiguration())
        let peer = try await firstPeer(peers)
        let reply = try await peer.call("Arith.Add", AddArgs(a: 40, b: 2), returning: AddReply.self)
        #expect(reply.sum == 42)
        // Several at once, each on a stream of its own.
        let sums = try await withThrowingTaskGroup(of: Int64.self) { group in
            for n in 0..<8 {
                group.addTask { try await peer.call("Arith.Add", AddArgs(a: Int64(n), b: 100), returning: AddReply.self).sum }
            }
            return try await group.reduce(into: Set<Int64>()) { $0.insert($1) }
        }
        #expect(sums == Set((0..<8).map { Int64($0) + 100 }))
        await connection.close()
        await server.shutdown()
    }

    @Test("a handler calls back the node behind its own call's session (context.peer)")
    func handlerCallsBack() async throws {
        let (server, address, _) = try await startServer()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: nodeConfiguration())
        let reply = try await connection.openStream().call("Relay.Add", AddArgs(a: 3, b: 4), returning: AddReply.self)
        #expect(reply.sum == 7)
        await connection.close()
        await server.shutdown()
    }

    @Test("the server makes a streaming call to the node (0x05)")
    func streamingCall() async throws {
        let (server, address, peers) = try await startServer()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: nodeConfiguration())
        let peer = try await firstPeer(peers)
        var seen: [Int64] = []
        for try await frame in peer.stream("Stream.Count", CountArgs(count: 200), of: CountFrame.self) {
            seen.append(frame.n)
        }
        #expect(seen == Array(0..<200))
        let echoed = try await peer.withStreamingCall("Stream.Echo", sending: CountFrame.self, receiving: CountFrame.self) { inbound, writer in
            var values = inbound.makeAsyncIterator()
            var echoed: [Int64] = []
            for n in 0..<5 {
                try await writer.write(CountFrame(n: Int64(n)))
                echoed.append(try #require(try await values.next()).n)
            }
            return echoed
        }
        #expect(echoed == Array(0..<5))
        await connection.close()
        await server.shutdown()
    }

    @Test("a node with no services refuses: the server's call fails with a typed error, and the session goes on")
    func nodeWithoutServicesRefuses() async throws {
        let (server, address, peers) = try await startServer()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: nodeConfiguration(services: false, streaming: false))
        let peer = try await firstPeer(peers)
        let callError = await #expect(throws: RPCError.self) {
            try await peer.call("Arith.Add", AddArgs(a: 1, b: 2), returning: AddReply.self)
        }
        #expect(callError.map { refusalCodes.contains($0.code) } == true, "\(String(describing: callError))")
        let streamError = await #expect(throws: RPCError.self) {
            for try await _ in peer.stream("Stream.Count", CountArgs(count: 3), of: CountFrame.self) {}
        }
        #expect(streamError.map { refusalCodes.contains($0.code) } == true)
        // The node's own calls on the session are untouched.
        let reply = try await connection.openStream().call("Arith.Add", AddArgs(a: 1, b: 2), returning: AddReply.self)
        #expect(reply.sum == 3)
        await connection.close()
        await server.shutdown()
    }

    @Test("a node that serves only net/rpc refuses the server's streaming calls, and the other way round")
    func nodeServesOneKind() async throws {
        let (server, address, peers) = try await startServer()
        let plainOnly = try await MuxRPCConnection.connect(to: address, configuration: nodeConfiguration(streaming: false))
        let plainPeer = try await firstPeer(peers)
        await #expect(throws: RPCError.self) {
            for try await _ in plainPeer.stream("Stream.Count", CountArgs(count: 3), of: CountFrame.self) {}
        }
        #expect(try await plainPeer.call("Arith.Add", AddArgs(a: 1, b: 1), returning: AddReply.self).sum == 2)
        await plainOnly.close()
        await server.shutdown()
    }

    @Test("hostile: a stream with an unknown type byte from the server is reset; the session's other calls go on")
    func unknownStreamByteIsReset() async throws {
        let (server, address, peers) = try await startServer()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: nodeConfiguration())
        let peer = try await firstPeer(peers)
        let stream = try await peer.session.openStream()
        try await stream.channel.writeAndFlush(ByteBuffer(bytes: [0x07, 0x01, 0x02]))
        // The node resets it: the stream's channel closes without the server closing it.
        try await stream.channel.closeFuture.get()
        #expect(await !peer.isClosed)
        #expect(try await peer.call("Arith.Add", AddArgs(a: 5, b: 6), returning: AddReply.self).sum == 11)
        let reply = try await connection.openStream().call("Arith.Add", AddArgs(a: 1, b: 2), returning: AddReply.self)
        #expect(reply.sum == 3)
        await connection.close()
        await server.shutdown()
    }

    @Test("the node's session limits bound what its server opens: a stream beyond maxConcurrentStreams is refused, the next one after it is served")
    func sessionLimitsApply() async throws {
        let (server, address, peers) = try await startServer()
        var configuration = nodeConfiguration()
        configuration.yamux.maxConcurrentStreams = 1
        let connection = try await MuxRPCConnection.connect(to: address, configuration: configuration)
        let peer = try await firstPeer(peers)
        // One streaming call holds the node's only stream while a second call is made.
        try await peer.withStreamingCall("Stream.Echo", sending: CountFrame.self, receiving: CountFrame.self) { inbound, writer in
            var values = inbound.makeAsyncIterator()
            try await writer.write(CountFrame(n: 1))
            #expect(try await values.next()?.n == 1)
            let error = await #expect(throws: RPCError.self) {
                try await peer.call("Arith.Add", AddArgs(a: 1, b: 2), returning: AddReply.self)
            }
            #expect(error.map { refusalCodes.contains($0.code) } == true, "\(String(describing: error))")
            // Both sides close: the node's FIN comes after it has let the stream go.
            writer.finish()
            while try await values.next() != nil {}
        }
        let sum = try await peer.call("Arith.Add", AddArgs(a: 1, b: 2), returning: AddReply.self).sum
        #expect(sum == 3)
        await connection.close()
        await server.shutdown()
    }

    @Test("a pooled session serves its server's calls too")
    func pooledSessionServes() async throws {
        let (server, address, peers) = try await startServer()
        let pool = try ConnectionPool(configuration: .init(connection: nodeConfiguration()))
        #expect(try await pool.call("Relay.Add", AddArgs(a: 20, b: 22), returning: AddReply.self, on: address).sum == 42)
        let peer = try await firstPeer(peers)
        #expect(try await peer.call("Arith.Add", AddArgs(a: 2, b: 2), returning: AddReply.self).sum == 4)
        await pool.shutdown()
        await server.shutdown()
    }
}
