import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import Yamux

/// Swift client ↔ Swift server over real TCP, following hashicorp's session_test.go.
@Suite(.timeLimit(.minutes(5))) struct SessionTests {
    @Test func pingMeasuresRTT() async throws {
        let server = try await YamuxTestServer()
        let client = try await connectYamuxClient(port: server.port)
        let rtt = try await client.ping()
        #expect(rtt > .zero)
        #expect(await client.lastRTT != nil)
        await client.close()
        await server.close()
    }

    @Test func pingTimesOut() async throws {
        let silent = try await SilentServer()
        let client = try await connectYamuxClient(port: silent.port, configuration: testConfiguration {
            $0.connectionWriteTimeout = .milliseconds(100)
        })
        let error = await #expect(throws: YamuxError.self) { _ = try await client.ping() }
        #expect(error?.code == .pingTimeout)
        #expect(await !client.isClosed)  // a ping timeout alone does not end the session
        await client.close()
        await silent.close()
    }

    @Test func echoOneStream() async throws {
        let server = try await YamuxTestServer()
        let client = try await connectYamuxClient(port: server.port)
        try await echoCheck(client, count: 100_000, seed: 3)
        await client.close()
        await server.close()
    }

    @Test func serverOpensStreamsToo() async throws {
        let opened = NIOLockedValueBox<String?>(nil)
        let server = try await YamuxTestServer { session in
            do {
                let stream = try await session.openStream()
                #expect(stream.id % 2 == 0)
                let answer = try await stream.executeThenClose { inbound, outbound in
                    try await outbound.write(ByteBuffer(string: "from server"))
                    outbound.finish()
                    var all = ByteBuffer()
                    for try await var chunk in inbound { all.writeBuffer(&chunk) }
                    return String(buffer: all)
                }
                opened.withLockedValue { $0 = answer }
            } catch {
                opened.withLockedValue { $0 = "error \(error)" }
            }
        }
        let client = try await connectYamuxClient(port: server.port)
        for try await stream in client.inboundStreams {
            #expect(stream.id == 2)
            try await stream.executeThenClose { inbound, outbound in
                var reader = StreamReader(inbound)
                let count = try await reader.drain()
                try await outbound.write(ByteBuffer(string: "got \(count)"))
            }
            break
        }
        while opened.withLockedValue({ $0 }) == nil { try await Task.sleep(for: .milliseconds(2)) }
        #expect(opened.withLockedValue { $0 } == "got 11")
        await client.close()
        await server.close()
    }

    @Test func halfCloseThenRead() async throws {
        let server = try await YamuxTestServer()
        let client = try await connectYamuxClient(port: server.port)
        let answer = try await runCommand(client, "halfclose", payload: ByteBuffer(repeating: 1, count: 12345))
        #expect(String(buffer: answer) == "after-eof 12345\n")
        await client.close()
        await server.close()
    }

    /// A stream opened and half-closed at once, with no data: the server must
    /// still see it, read EOF, and be able to answer (the FIN can arrive
    /// before the application has taken the stream from the accept queue).
    @Test func streamClosedBeforeAnyDataIsStillServed() async throws {
        let server = try await YamuxTestServer { session in
            do {
                for try await stream in session.inboundStreams {
                    try? await stream.executeThenClose { inbound, outbound in
                        var received = 0
                        for try await chunk in inbound { received += chunk.readableBytes }
                        try await outbound.write(ByteBuffer(string: "got \(received)"))
                    }
                }
            } catch {}
        }
        let client = try await connectYamuxClient(port: server.port)
        for _ in 0..<20 {
            let stream = try await client.openStream()
            let answer = try await stream.executeThenClose { inbound, outbound in
                outbound.finish()
                var answer = ByteBuffer()
                for try await chunk in inbound { answer.writeImmutableBuffer(chunk) }
                return String(buffer: answer)
            }
            #expect(answer == "got 0")
        }
        await client.close()
        await server.close()
    }

    @Test func manyStreams() async throws {
        let server = try await YamuxTestServer()
        let client = try await connectYamuxClient(port: server.port)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<300 {
                group.addTask { try await echoCheck(client, count: 16 * 1024, seed: i) }
            }
            try await group.waitForAll()
        }
        while await client.streamCount > 0 { try await Task.sleep(for: .milliseconds(2)) }
        await client.close()
        await server.close()
    }

    @Test func largeTransfersBothWays() async throws {
        let server = try await YamuxTestServer()
        let client = try await connectYamuxClient(port: server.port)
        let count = 8 * 1024 * 1024
        let stream = try await client.openStream()
        let received = try await stream.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "send \(count) 17\n"))
            outbound.finish()
            var reader = StreamReader(inbound)
            return try await reader.readPattern(seed: 17)
        }
        #expect(received == count)
        let answer = try await runCommand(client, "sink", payload: pattern(count, seed: 2))
        #expect(String(buffer: answer) == "count \(count)\n")
        await client.close()
        await server.close()
    }

    @Test func goAwayStopsNewStreamsButNotOpenOnes() async throws {
        let server = try await YamuxTestServer()
        let client = try await connectYamuxClient(port: server.port)
        // A stream that stays open across the GoAway.
        let open = try await client.openStream()
        let answer = try await runCommand(client, "goaway")
        #expect(String(buffer: answer) == "ok\n")
        let error = await #expect(throws: YamuxError.self) { _ = try await client.openStream() }
        #expect(error?.code == .remoteGoAway)
        let echoed = try await open.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "echo\nstill here"))
            outbound.finish()
            var all = ByteBuffer()
            for try await var chunk in inbound { all.writeBuffer(&chunk) }
            return String(buffer: all)
        }
        #expect(echoed == "still here")
        await client.close()
        await server.close()
    }

    @Test func localGoAwayRefusesNewStreamsAndEndsAccepting() async throws {
        let server = try await YamuxTestServer { _ in }
        let client = try await connectYamuxClient(port: server.port)
        let serverSession = try await server.firstSession()
        await serverSession.goAway()
        // No more inbound streams will come: the sequence ends.
        var iterator = serverSession.inboundStreams.makeAsyncIterator()
        #expect(try await iterator.next() == nil)
        // Once the GoAway has arrived (a ping round trip orders it), opens fail locally;
        // a SYN that raced it is refused with RST.
        _ = try await client.ping()
        let error = await #expect(throws: YamuxError.self) { _ = try await client.openStream() }
        #expect(error?.code == .remoteGoAway)
        await client.close()
        await server.close()
    }

    @Test func acceptBacklogExceededResetsStream() async throws {
        // The server never accepts; its backlog holds 2 streams.
        let server = try await YamuxTestServer(configuration: testConfiguration { $0.acceptBacklog = 2 }) { _ in }
        let client = try await connectYamuxClient(port: server.port)
        var streams: [YamuxStream] = []
        for _ in 0..<3 { streams.append(try await client.openStream()) }
        let third = streams[2]
        let error = await #expect(throws: YamuxError.self) {
            try await third.executeThenClose { inbound, _ in
                for try await _ in inbound {}
            }
        }
        #expect(error?.code == .streamReset)
        let session = try await server.firstSession()
        #expect(await session.statistics.streamsRefused == 1)
        await client.close()
        await server.close()
    }

    @Test func concurrentStreamLimit() async throws {
        let server = try await YamuxTestServer(configuration: testConfiguration { $0.maxConcurrentStreams = 2 })
        // Inbound side: the third stream is refused with RST.
        let client = try await connectYamuxClient(port: server.port)
        let a = try await client.openStream()
        let b = try await client.openStream()
        let c = try await client.openStream()
        let error = await #expect(throws: YamuxError.self) {
            try await c.executeThenClose { inbound, _ in for try await _ in inbound {} }
        }
        #expect(error?.code == .streamReset)
        a.reset()
        b.reset()
        // Outbound side: opening beyond the local limit fails at once.
        let limited = try await connectYamuxClient(port: server.port, configuration: testConfiguration { $0.maxConcurrentStreams = 1 })
        let held = try await limited.openStream()
        let localError = await #expect(throws: YamuxError.self) { _ = try await limited.openStream() }
        #expect(localError?.code == .tooManyStreams)
        held.reset()
        await limited.close()
        await client.close()
        await server.close()
    }

    @Test func keepAlive() async throws {
        let server = try await YamuxTestServer()
        let client = try await connectYamuxClient(port: server.port, configuration: testConfiguration {
            $0.enableKeepAlive = true
            $0.keepAliveInterval = .milliseconds(5)
        })
        while await client.statistics.pongsReceived < 5 {
            try #require(await !client.isClosed, "the session closed before five pongs")
            try await Task.sleep(for: .milliseconds(2))
        }
        await client.close()
        await server.close()
    }

    @Test func keepAliveTimeoutClosesSession() async throws {
        let silent = try await SilentServer()
        let client = try await connectYamuxClient(port: silent.port, configuration: testConfiguration {
            $0.enableKeepAlive = true
            $0.keepAliveInterval = .milliseconds(10)
            $0.connectionWriteTimeout = .milliseconds(50)
        })
        // (The keepalive may fire before the open completes; then the open fails the same way.)
        let stream = try? await client.openStream()
        #expect(await client.waitForClose().code == .keepAliveTimeout)
        // Open streams fail with the reason.
        if let stream {
            let error = await #expect(throws: YamuxError.self) {
                try await stream.executeThenClose { inbound, _ in for try await _ in inbound {} }
            }
            #expect(error?.code == .keepAliveTimeout)
        }
        await silent.close()
    }

    @Test func slowReaderSlowsOnlyItsOwnStream() async throws {
        let server = try await YamuxTestServer()
        let client = try await connectYamuxClient(port: server.port)
        let count = 4 * 1024 * 1024
        let slow = try await client.openStream()
        try await slow.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "send \(count) 4\n"))
            outbound.finish()
            var reader = StreamReader(inbound)
            // Read a little, then stall: the server can send at most about one window ahead.
            var got = 0
            while got < 100_000, let chunk = try await reader.next() { got += chunk.readableBytes }
            // Meanwhile other streams run at full speed.
            try await echoCheck(client, count: 2 * 1024 * 1024, seed: 8)
            // Window updates follow the partial reads; the whole transfer completes.
            while let chunk = try await reader.next() {
                if let bad = firstPatternMismatch(chunk, seed: 4, offset: got) { throw TestFailure("mismatch at \(bad)") }
                got += chunk.readableBytes
            }
            #expect(got == count)
        }
        #expect(await client.statistics.windowUpdatesSent > 0)
        await client.close()
        await server.close()
    }

    @Test func connectionWriteTimeout() async throws {
        // A peer that never reads: our writes pile up until the connection write timeout.
        let silent = try await SilentServer(reading: false)
        let client = try await connectYamuxClient(port: silent.port, configuration: testConfiguration {
            $0.connectionWriteTimeout = .milliseconds(100)
        })
        var streams: [YamuxStream] = []
        do {
            for _ in 0..<64 {
                let stream = try await client.openStream()
                streams.append(stream)
                stream.channel.writeAndFlush(ByteBuffer(repeating: 0, count: 256 * 1024), promise: nil)
            }
        } catch let error as YamuxError {
            // The timeout may already have fired while we were still opening.
            #expect(error.code == .connectionWriteTimeout)
        }
        #expect(await client.waitForClose().code == .connectionWriteTimeout)
        withExtendedLifetime(streams) {}
        await silent.close()
    }

    @Test func streamOpenTimeout() async throws {
        let silent = try await SilentServer()
        let client = try await connectYamuxClient(port: silent.port, configuration: testConfiguration {
            $0.streamOpenTimeout = .milliseconds(50)
        })
        let stream = try await client.openStream()
        #expect(await client.waitForClose().code == .streamOpenTimeout)
        withExtendedLifetime(stream) {}
        await silent.close()
    }

    @Test func closeBeforeAck() async throws {
        // The server accepts only when told to; the client writes and closes before that.
        let gate = AsyncStream<Void>.makeStream()
        let received = NIOLockedValueBox<String?>(nil)
        let server = try await YamuxTestServer { session in
            for await _ in gate.stream { break }
            do {
                for try await stream in session.inboundStreams {
                    let text = try await stream.executeThenClose { inbound, _ in
                        var all = ByteBuffer()
                        for try await var chunk in inbound { all.writeBuffer(&chunk) }
                        return String(buffer: all)
                    }
                    received.withLockedValue { $0 = text }
                    break
                }
            } catch {}
        }
        let client = try await connectYamuxClient(port: server.port)
        let stream = try await client.openStream()
        try await stream.executeThenClose { _, outbound in
            try await outbound.write(ByteBuffer(string: "before ack"))
        }
        gate.continuation.yield()
        while received.withLockedValue({ $0 }) == nil { try await Task.sleep(for: .milliseconds(2)) }
        #expect(received.withLockedValue { $0 } == "before ack")
        // Both sides closed: the stream is gone from both maps.
        while await client.streamCount > 0 { try await Task.sleep(for: .milliseconds(2)) }
        await client.close()
        await server.close()
    }

    @Test func streamCloseTimeoutResetsLingeringStream() async throws {
        // The client closes only once the server reads the stream: a stream
        // reset while it still waits in the accept backlog is never seen by
        // the server, and a busy machine can take longer than the 50 ms close
        // timeout to get the server's loop to it.
        let reading = AsyncStream<Void>.makeStream()
        // What the server's stream ended with, and the server session's stream
        // count once it had ended.
        let serverSaw = AsyncStream<(error: YamuxError?, streamsLeft: Int)>.makeStream()
        let server = try await YamuxTestServer { session in
            do {
                for try await stream in session.inboundStreams {
                    // Read to EOF but never close our side: the client's close timeout fires.
                    try? await stream.executeThenClose { inbound, _ in
                        for try await _ in inbound { reading.continuation.yield() }
                        try await stream.channel.closeFuture.get()
                    }
                    let channel = stream.channel
                    let why = try? await channel.eventLoop.submit {
                        (channel as? YamuxStreamChannel)?.terminationError
                    }.get()
                    serverSaw.continuation.yield((why ?? nil, await session.streamCount))
                    break
                }
            } catch {}
            serverSaw.continuation.finish()
        }
        let client = try await connectYamuxClient(port: server.port, configuration: testConfiguration {
            $0.streamCloseTimeout = .milliseconds(50)
        })
        let stream = try await client.openStream()
        try await stream.executeThenClose { _, outbound in
            try await outbound.write(ByteBuffer(string: "x"))
            for await _ in reading.stream { break }
        }
        // The server's stream was closed by the client's RST, not by a FIN or
        // the session ending, and is gone from both sessions' maps.
        var outcomes = serverSaw.stream.makeAsyncIterator()
        let outcome = await outcomes.next()
        #expect(outcome != nil, "the server never saw its stream end")
        #expect(outcome?.error?.code == .streamReset)
        #expect(outcome?.streamsLeft == 0)
        #expect(await client.streamCount == 0)
        await client.close()
        await server.close()
    }

    @Test func cancellingTheTaskResetsTheStream() async throws {
        // The server says when it is reading the stream, and how reading
        // ended. Cancelling only after that matters: a stream reset while it
        // still waits in the accept backlog leaves the session unseen.
        let reading = AsyncStream<Void>.makeStream()
        let ended = AsyncStream<(any Error)?>.makeStream()
        let server = try await YamuxTestServer { session in
            do {
                for try await stream in session.inboundStreams {
                    do {
                        try await stream.executeThenClose { inbound, _ in
                            for try await _ in inbound { reading.continuation.yield() }
                        }
                        ended.continuation.yield(nil)
                    } catch {
                        ended.continuation.yield(error)
                    }
                    break
                }
            } catch {}
        }
        let client = try await connectYamuxClient(port: server.port)
        let stream = try await client.openStream()
        let task = Task {
            try await stream.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(string: "hello"))
                for try await _ in inbound {}  // the server never answers
            }
        }
        for await _ in reading.stream { break }
        task.cancel()
        _ = await task.result
        var serverError: (any Error)?? = nil
        for await error in ended.stream {
            serverError = error
            break
        }
        #expect((serverError as? YamuxError)?.code == .streamReset, "the server's read ended with \(String(describing: serverError))")
        await client.close()
        await server.close()
    }

    @Test func explicitResetAndThrowingBodyReset() async throws {
        let errors = NIOLockedValueBox<[YamuxError]>([])
        let accepted = NIOLockedValueBox(0)
        let server = try await YamuxTestServer { session in
            await withTaskGroup(of: Void.self) { group in
                do {
                    for try await stream in session.inboundStreams {
                        group.addTask {
                            do {
                                try await stream.executeThenClose { inbound, _ in
                                    for try await _ in inbound { accepted.withLockedValue { $0 += 1 } }
                                }
                            } catch let error as YamuxError {
                                errors.withLockedValue { $0.append(error) }
                            } catch {}
                        }
                    }
                } catch {}
            }
        }
        let client = try await connectYamuxClient(port: server.port)
        // Reset a stream the server is reading (a reset before it is accepted just removes it).
        let first = try await client.openStream()
        first.channel.writeAndFlush(ByteBuffer(string: "x"), promise: nil)
        while accepted.withLockedValue({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(2)) }
        first.reset()
        while errors.withLockedValue({ $0.count }) < 1 { try await Task.sleep(for: .milliseconds(2)) }
        // A body that throws resets its stream too.
        let second = try await client.openStream()
        await #expect(throws: TestFailure.self) {
            try await second.executeThenClose { _, outbound in
                try await outbound.write(ByteBuffer(string: "x"))
                while accepted.withLockedValue({ $0 }) < 2 { try await Task.sleep(for: .milliseconds(2)) }
                throw TestFailure("body failed")
            }
        }
        while errors.withLockedValue({ $0.count }) < 2 { try await Task.sleep(for: .milliseconds(2)) }
        #expect(errors.withLockedValue { $0.allSatisfy { $0.code == .streamReset } })
        await client.close()
        await server.close()
    }

    @Test func closingTheSessionFailsStreamsAndEndsAccepting() async throws {
        let server = try await YamuxTestServer { _ in }
        let client = try await connectYamuxClient(port: server.port)
        let stream = try await client.openStream()
        let serverSession = try await server.firstSession()
        let accepted = try #require(try await serverSession.accept())
        await client.close()
        let error = await #expect(throws: YamuxError.self) {
            try await stream.executeThenClose { inbound, _ in for try await _ in inbound {} }
        }
        #expect(error?.code == .sessionClosed)
        // The server side sees the connection end: its stream fails, accepting ends.
        #expect(try await serverSession.accept() == nil)
        await #expect(throws: YamuxError.self) {
            try await accepted.executeThenClose { inbound, _ in for try await _ in inbound {} }
        }
        await server.close()
    }
}
