import NIOCore
import NIOPosix
import Testing
@testable import Yamux

/// The ways hashicorp/yamux has been seen to fail, each tried against the Swift session:
/// every one must end in a clear outcome (an answer, or a typed error), never a hang or
/// unbounded memory.
@Suite("hashicorp/yamux failure modes", .timeLimit(.minutes(5)))
struct HashicorpFailureModeTests {
    /// With a peer that stops answering (no FIN, no RST, nothing), reads must not
    /// hang forever: keepalive notices and fails them.
    @Test func readsFromADeadPeerEndWithKeepalive() async throws {
        let silent = try await SilentServer()
        let session = try await connectYamuxClient(port: silent.port, configuration: testConfiguration {
            $0.enableKeepAlive = true
            $0.keepAliveInterval = .milliseconds(100)
            $0.connectionWriteTimeout = .milliseconds(300)
        })
        // The open itself may already fail, on a machine slow enough for keepalive to
        // end the session first: either way the outcome is the keepalive's error.
        let error = await #expect(throws: YamuxError.self) {
            let stream = try await session.openStream()
            try await stream.executeThenClose { inbound, _ in
                for try await _ in inbound {}
            }
        }
        #expect(error?.code == .keepAliveTimeout)
        await silent.close()
    }

    /// Once the peer has half-closed, our writes still flow, however much they
    /// need window updates; and writes after our own FIN fail at once rather than stall.
    @Test func writesOnAHalfClosedStreamFlowAndWritesAfterOurFINFail() async throws {
        let server = try await YamuxTestServer()
        let session = try await connectYamuxClient(port: server.port)
        let count = 3 * 1024 * 1024
        let stream = try await session.openStream()
        let received = try await stream.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "sendaftereof \(count) 7\n"))
            outbound.finish()
            var reader = StreamReader(inbound)
            return try await reader.readPattern(seed: 7)
        }
        #expect(received == count)

        let other = try await session.openStream()
        try await other.executeThenClose { _, outbound in
            outbound.finish()
            await #expect(throws: (any Error).self) { try await outbound.write(ByteBuffer(string: "late")) }
        }
        await server.close()
    }

    /// A receiver that does not read holds at most the window it offered, and a
    /// sender that ignores the window is a protocol error, not a bigger buffer.
    @Test func unreadDataIsBoundedByTheWindow() async throws {
        let server = try await YamuxTestServer(configuration: testConfiguration { $0.enableWindowAutoTuning = false }) { session in
            await holdWithoutReading(session)
        }
        let session = try await connectYamuxClient(port: server.port)
        let writer = Task {
            let stream = try await session.openStream()
            try await stream.executeThenClose { _, outbound in
                for _ in 0..<64 { try await outbound.write(ByteBuffer(repeating: 1, count: 64 * 1024)) }
            }
        }
        let serverSession = try await server.firstSession()
        let windowFull = await waitFor { await serverSession.statistics.bufferedBytes == Int(YamuxConfiguration.initialStreamWindow) }
        #expect(windowFull)
        #expect(await serverSession.statistics.maxBufferedBytes == Int(YamuxConfiguration.initialStreamWindow))
        writer.cancel()
        _ = await writer.result
        await server.close()
    }

    /// An accept waiting when the session sends GoAway, or when it closes, returns.
    @Test func acceptReturnsOnGoAwayAndOnClose() async throws {
        let server = try await YamuxTestServer { _ in }
        let client = try await connectYamuxClient(port: server.port)
        _ = try await client.ping()
        let session = try await server.firstSession()
        let waiting = Task { try await session.accept() }
        await session.goAway()
        #expect(try await waiting.value == nil)

        let server2 = try await YamuxTestServer { _ in }
        let client2 = try await connectYamuxClient(port: server2.port)
        _ = try await client2.ping()
        let session2 = try await server2.firstSession()
        let waiting2 = Task { try await session2.accept() }
        await client2.close()
        #expect(try await waiting2.value == nil)
        await server.close()
        await server2.close()
    }

    /// An open that waits for an in-flight SYN slot fails when the peer never
    /// acknowledges, instead of waiting forever.
    @Test func anOpenWaitingForAPeerThatNeverAcknowledgesFails() async throws {
        let silent = try await SilentServer()
        let session = try await connectYamuxClient(port: silent.port, configuration: testConfiguration {
            $0.acceptBacklog = 2
            $0.streamOpenTimeout = .milliseconds(300)
        })
        // Two opens take both SYN slots and the third waits, until the open timeout ends
        // the session. (On a slow machine the timeout may come before the second: the
        // outcome is the same error.) The streams are kept: one dropped unused is reset,
        // which would free its slot.
        let error = await #expect(throws: YamuxError.self) {
            var held: [YamuxStream] = []
            for _ in 0..<3 { held.append(try await session.openStream()) }
        }
        #expect(error?.code == .streamOpenTimeout)
        // And an open on the ended session fails at once.
        await #expect(throws: YamuxError.self) { _ = try await session.openStream() }
        await silent.close()
    }

    /// A read waiting on a stream ends when the session is closed locally.
    @Test func readsEndWhenTheSessionCloses() async throws {
        let server = try await YamuxTestServer { session in await holdWithoutReading(session) }
        let session = try await connectYamuxClient(port: server.port)
        let stream = try await session.openStream()
        let reading = AsyncStream<Void>.makeStream()
        let reader = Task {
            try await stream.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(string: "hello"))
                reading.continuation.yield()
                for try await _ in inbound {}
            }
        }
        for await _ in reading.stream { break }
        await session.close()
        let result = await reader.result
        let error = #expect(throws: YamuxError.self) { try result.get() }
        #expect(error?.code == .sessionClosed)
        await server.close()
    }

    /// Head-of-line: one stream writing 1 GiB to a reader that has stalled takes its own
    /// window and no more; another stream's small echoes go on. (Their latency is
    /// measured by `muxrpc-bench head-of-line`, not here.)
    @Test func aStalledStreamDoesNotBlockAnother() async throws {
        let server = try await YamuxTestServer { session in
            // The first stream stalls; the others echo.
            var first = true
            do {
                for try await stream in session.inboundStreams {
                    if first {
                        first = false
                        try? await stream.configurePipeline { try $0.pipeline.syncOperations.addHandler(ReadSwallower()) }
                    } else {
                        Task { try? await serveCommandStream(stream, session: session) }
                    }
                }
            } catch {}
        }
        let session = try await connectYamuxClient(port: server.port)
        // Opened first, so it is the server's first stream (SYNs are accepted in order).
        let stream = try await session.openStream()
        let bulk = Task {
            try await stream.executeThenClose { _, outbound in
                let chunk = ByteBuffer(repeating: 0xab, count: 64 * 1024)
                for _ in 0..<(1024 * 1024 * 1024 / chunk.readableBytes) { try await outbound.write(chunk) }
            }
        }
        for round in 0..<100 {
            try await echoCheck(session, count: 1024, seed: round)
        }
        bulk.cancel()
        _ = await bulk.result
        await server.close()
    }
}

/// Accepts every stream and never reads from it.
private func holdWithoutReading(_ session: YamuxSession) async {
    do {
        for try await stream in session.inboundStreams {
            try? await stream.configurePipeline { try $0.pipeline.syncOperations.addHandler(ReadSwallower()) }
        }
    } catch {}
}

/// Swallows the pipeline's read requests: the stream never reads, so its window is
/// never credited.
private final class ReadSwallower: ChannelOutboundHandler, Sendable {
    typealias OutboundIn = Never
    func read(context: ChannelHandlerContext) {}
}

/// Waits, yielding, until `condition` holds, for at most a minute.
private func waitFor(_ condition: () async -> Bool) async -> Bool {
    let end = ContinuousClock.now + .seconds(60)
    while ContinuousClock.now < end {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return await condition()
}
