import DemoServices
import MessagePack
import MsgpackRPC
import MuxRPC
import NIOCore
import Synchronization
import Testing
import Yamux

/// A server of the demo services and streaming methods, plus the test's own
/// streaming methods.
private func startStreamingServer(
    extra: (inout RPCStreamingRegistry) -> Void = { _ in },
    configure: (inout MuxRPCServer.Configuration) -> Void = { _ in }
) async throws -> (MuxRPCServer, SocketAddress) {
    var streaming = DemoStreamingServices.registry
    extra(&streaming)
    var configuration = MuxRPCServer.Configuration.patient()
    configure(&configuration)
    let server = MuxRPCServer(services: DemoServices.registry, streaming: streaming, configuration: configuration)
    return (server, try await server.start())
}

private typealias CountArgs = DemoStreamingServices.CountArgs
private typealias CountFrame = DemoStreamingServices.CountFrame

/// A map `{"N": n, "Text": "x" * n}`, as any value a caller may stream.
private func echoValue(_ n: Int) -> MessagePackValue {
    .map([(key: .string("N"), value: .int(Int64(n))), (key: .string("Text"), value: .string(String(repeating: "x", count: n)))])
}

private struct SumReply: Codable, Sendable, Equatable {
    var total: Int64
    enum CodingKeys: String, CodingKey { case total = "Total" }
}

@Suite("Streaming calls", .timeLimit(.minutes(5)))
struct StreamingCallTests {
    static let streamingModes: [ConnectionMode] = [.nomadMultiplex, .plain]

    @Test("server-streaming: Stream.Count's frames arrive in order, then the sequence ends", arguments: streamingModes)
    func serverStreaming(mode: ConnectionMode) async throws {
        let (server, address) = try await startStreamingServer()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: .init(mode: mode))
        var seen: [Int64] = []
        for try await frame in connection.stream("Stream.Count", CountArgs(count: 500), of: CountFrame.self) {
            seen.append(frame.n)
        }
        #expect(seen == Array(0..<500))
        // An ordinary call on the same connection still works.
        let reply = try await connection.openStream().call("Arith.Add", DemoServices.AddArgs(a: 2, b: 3), returning: DemoServices.AddReply.self)
        #expect(reply.sum == 5)
        await connection.close()
        await server.shutdown()
    }

    @Test("client-streaming: the caller's values reach the handler, whose one reply follows the caller's FIN", arguments: streamingModes)
    func clientStreaming(mode: ConnectionMode) async throws {
        let (server, address) = try await startStreamingServer(extra: { registry in
            registry.register(service: "Test", method: "Sum") {
                (inbound: RPCStreamingInbound<CountFrame>, writer: RPCStreamingWriter<SumReply>, _) in
                var total: Int64 = 0
                for try await frame in inbound { total += frame.n }
                try await writer.write(SumReply(total: total))
            }
        })
        let connection = try await MuxRPCConnection.connect(to: address, configuration: .init(mode: mode))
        let total = try await connection.withStreamingCall("Test.Sum", sending: CountFrame.self, receiving: SumReply.self) { inbound, writer in
            for n in 1...100 { try await writer.write(CountFrame(n: Int64(n))) }
            writer.finish()
            var replies: [SumReply] = []
            for try await reply in inbound { replies.append(reply) }
            return replies
        }
        #expect(total == [SumReply(total: 5050)])
        await connection.close()
        await server.shutdown()
    }

    @Test("bidirectional: Stream.Echo answers each value before the next is sent", arguments: streamingModes)
    func bidirectionalEcho(mode: ConnectionMode) async throws {
        let (server, address) = try await startStreamingServer()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: .init(mode: mode))
        let echoes = try await connection.withStreamingCall("Stream.Echo", sending: MessagePackValue.self, receiving: MessagePackValue.self) { inbound, writer in
            var iterator = inbound.makeAsyncIterator()
            var echoes: [MessagePackValue] = []
            for n in 0..<50 {
                let value = echoValue(n)
                try await writer.write(value)
                guard let echo = try await iterator.next() else { break }
                echoes.append(echo)
            }
            writer.finish()
            #expect(try await iterator.next() == nil)
            return echoes
        }
        #expect(echoes.count == 50)
        #expect(echoes == (0..<50).map(echoValue))
        await connection.close()
        await server.shutdown()
    }

    @Test("an unknown method is refused in the ack with Nomad's text, and the session goes on", arguments: streamingModes)
    func unknownMethod(mode: ConnectionMode) async throws {
        let (server, address) = try await startStreamingServer()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: .init(mode: mode))
        let error = await #expect(throws: RPCError.self) {
            try await connection.withStreamingCall("Stream.Nothing", sending: CountArgs.self, receiving: CountFrame.self) { _, _ in
                Issue.record("the body ran for an unknown method")
            }
        }
        #expect(error?.code == .serverError)
        #expect(error?.message == "Unknown rpc method: \"Stream.Nothing\"")
        var seen = 0
        for try await _ in connection.stream("Stream.Count", CountArgs(count: 3), of: CountFrame.self) { seen += 1 }
        #expect(seen == 3)
        await connection.close()
        await server.shutdown()
    }

    @Test("Consul's mode carries no streaming calls: refused before anything is sent")
    func consulModeRefuses() async throws {
        let (server, address) = try await startStreamingServer()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: .init(mode: .consulMultiplex))
        let error = await #expect(throws: MuxRPCError.self) {
            try await connection.withStreamingCall("Stream.Count", sending: CountArgs.self, receiving: CountFrame.self) { _, _ in }
        }
        #expect(error?.code == .invalidConfiguration)
        await connection.close()
        await server.shutdown()
    }

    @Test("a server without streaming methods closes a 0x05 stream: the call fails, the session lives")
    func serverWithoutStreamingMethods() async throws {
        let server = MuxRPCServer(services: DemoServices.registry, configuration: .patient())
        let address = try await server.start()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: .init(mode: .nomadMultiplex))
        let error = await #expect(throws: RPCError.self) {
            try await connection.withStreamingCall("Stream.Count", sending: CountArgs.self, receiving: CountFrame.self) { _, _ in }
        }
        #expect(error?.code == .connectionClosed)
        let reply = try await connection.openStream().call("Arith.Add", DemoServices.AddArgs(a: 1, b: 1), returning: DemoServices.AddReply.self)
        #expect(reply.sum == 2)
        await connection.close()
        await server.shutdown()
    }

    @Test("cancelling the caller's task resets the stream and cancels the server's handler")
    func cancellationResetsAndCancelsHandler() async throws {
        let handlerEnded = Signal()
        let (server, address) = try await startStreamingServer(extra: { registry in
            registry.register(service: "Test", method: "Forever") {
                (_: RPCStreamingInbound<CountArgs>, writer: RPCStreamingWriter<CountFrame>, _) in
                defer { handlerEnded.fire() }
                var n: Int64 = 0
                while true {
                    try await writer.write(CountFrame(n: n))
                    n += 1
                }
            }
        })
        let connection = try await MuxRPCConnection.connect(to: address, configuration: .init(mode: .nomadMultiplex))
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        let caller = Task {
            var seen: Int64 = 0
            for try await frame in connection.stream("Test.Forever", CountArgs(count: 0), of: CountFrame.self) {
                #expect(frame.n == seen)
                seen += 1
                if seen == 10 { startedContinuation.yield() }
            }
            return seen
        }
        for await _ in started { break }
        caller.cancel()
        _ = try? await caller.value
        // The handler's write loop ends only when its task is cancelled or its
        // stream fails: the reset reached it.
        await handlerEnded.wait()
        var counted = 0
        for try await _ in connection.stream("Stream.Count", CountArgs(count: 5), of: CountFrame.self) { counted += 1 }
        #expect(counted == 5)
        await connection.close()
        await server.shutdown()
    }

    @Test("100 streaming calls at once beside 100 ordinary calls on one session")
    func manyAtOnce() async throws {
        let (server, address) = try await startStreamingServer()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: .init(mode: .nomadMultiplex))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for call in 0..<100 {
                group.addTask {
                    var seen: [Int64] = []
                    for try await frame in connection.stream("Stream.Count", CountArgs(count: Int64(50 + call)), of: CountFrame.self) {
                        seen.append(frame.n)
                    }
                    #expect(seen == Array(0..<Int64(50 + call)))
                }
                group.addTask {
                    let reply = try await connection.openStream().call(
                        "Arith.Add", DemoServices.AddArgs(a: Int64(call), b: 1), returning: DemoServices.AddReply.self
                    )
                    #expect(reply.sum == Int64(call) + 1)
                }
            }
            try await group.waitForAll()
        }
        await connection.close()
        await server.shutdown()
    }

    @Test("a caller that never reads delays no other stream, and what it costs stays within its stream's window")
    func stalledConsumer() async throws {
        let (server, address) = try await startStreamingServer()
        var configuration = MuxRPCConnection.Configuration(mode: .nomadMultiplex)
        // The window stays what it was granted: a reader that never reads
        // would not grow it anyway, and the bound below is then exact.
        configuration.yamux.enableWindowAutoTuning = false
        let connection = try await MuxRPCConnection.connect(to: address, configuration: configuration)
        let session = try #require(connection.session)
        let release = Signal()
        let stalled = Task {
            try await connection.withStreamingCall("Stream.Count", sending: CountArgs.self, receiving: CountFrame.self) { _, writer in
                // Ten million frames asked for, none read.
                try await writer.write(CountArgs(count: 10_000_000))
                await release.wait()
            }
        }
        // Wait until the stalled stream's window is full: the server can
        // send it nothing more.
        let window = Int(YamuxConfiguration.initialStreamWindow)
        var polls = 0
        while await session.statistics.unreadBytes < window / 2 {
            polls += 1
            try #require(polls < 60_000, "the stalled stream never filled its window")
            try await Task.sleep(for: .milliseconds(5))
        }
        // Other streaming calls and ordinary calls on the same session go on.
        for call in 0..<5 {
            var seen = 0
            for try await _ in connection.stream("Stream.Count", CountArgs(count: 200), of: CountFrame.self) { seen += 1 }
            #expect(seen == 200)
            let reply = try await connection.openStream().call("Arith.Add", DemoServices.AddArgs(a: Int64(call), b: 2), returning: DemoServices.AddReply.self)
            #expect(reply.sum == Int64(call) + 2)
        }
        // The caller holds at most its window unread; the server holds at most
        // its stream's write buffer (over the watermark the writer waits), not
        // the ten million frames.
        let statistics = await session.statistics
        #expect(statistics.unreadBytes <= window)
        let highWatermark = YamuxConfiguration().streamWriteBufferWaterMark.high
        #expect(server.statistics.maxSessionBufferedBytes <= window + 2 * highWatermark)
        release.fire()
        stalled.cancel()
        _ = try? await stalled.value
        await connection.close()
        await server.shutdown()
    }
}
