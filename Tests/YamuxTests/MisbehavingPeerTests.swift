import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import Yamux

/// Peers that break the protocol, written at the frame level over raw TCP.
@Suite(.timeLimit(.minutes(5))) struct MisbehavingPeerTests {
    enum Violation: String, CaseIterable, Sendable {
        case badVersion, unknownType, windowOverrun, duplicateSYN, finTwice, dataAfterFIN

        var expectedCode: YamuxError.Code {
            switch self {
            case .badVersion: .unsupportedVersion
            case .unknownType: .unknownFrameType
            case .windowOverrun: .windowExceeded
            case .duplicateSYN: .duplicateStream
            case .finTwice: .unexpectedFIN
            case .dataAfterFIN: .unexpectedData
            }
        }

        func commit(on peer: RawPeer, stream id: UInt32) async throws {
            switch self {
            case .badVersion:
                try await peer.sendRaw([1, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1])
            case .unknownType:
                try await peer.sendRaw([0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            case .windowOverrun:
                let length = YamuxConfiguration.initialStreamWindow + 1
                try await peer.send(
                    YamuxFrameHeader(type: .data, streamID: id, length: length),
                    payload: ByteBuffer(repeating: 1, count: Int(length))
                )
            case .duplicateSYN:
                try await peer.send(YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: id, length: 0))
            case .finTwice:
                // On a fresh stream, in one write so both land in one read: a legal FIN, then
                // a second one.
                var bytes = ByteBuffer()
                YamuxFrameHeader(type: .windowUpdate, flags: [.syn, .fin], streamID: id + 2, length: 0).write(to: &bytes)
                YamuxFrameHeader(type: .windowUpdate, flags: .fin, streamID: id + 2, length: 0).write(to: &bytes)
                try await peer.channel.writeAndFlush(bytes)
            case .dataAfterFIN:
                var bytes = ByteBuffer()
                YamuxFrameHeader(type: .windowUpdate, flags: [.syn, .fin], streamID: id + 2, length: 0).write(to: &bytes)
                YamuxFrameHeader(type: .data, streamID: id + 2, length: 1).write(to: &bytes)
                bytes.writeInteger(UInt8(1))
                try await peer.channel.writeAndFlush(bytes)
            }
        }
    }

    @Test(arguments: Violation.allCases)
    func protocolErrorGetsGoAwayAndFailsStreams(_ violation: Violation) async throws {
        // The server accepts each stream, says when it has read from it, and
        // records how reading it ended.
        let outcomes = NIOLockedValueBox<[UInt32: Result<Int, YamuxError>]>([:])
        let reading = AsyncStream<Void>.makeStream()
        let server = try await YamuxTestServer { session in
            do {
                for try await stream in session.inboundStreams {
                    Task {
                        do {
                            let count = try await stream.executeThenClose { inbound, _ in
                                var total = 0
                                for try await chunk in inbound {
                                    total += chunk.readableBytes
                                    reading.continuation.yield()
                                }
                                return total
                            }
                            outcomes.withLockedValue { $0[stream.id] = .success(count) }
                        } catch let error as YamuxError {
                            outcomes.withLockedValue { $0[stream.id] = .failure(error) }
                        } catch {}
                    }
                }
            } catch {}
        }
        let peer = try await RawPeer(port: server.port)
        // A healthy stream first, so there is something to fail.
        try await peer.send(YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: 1, length: 0))
        try await peer.send(YamuxFrameHeader(type: .data, streamID: 1, length: 5), payload: ByteBuffer(string: "hello"))
        _ = try await peer.waitForFrame { $0.type == .windowUpdate && $0.flags.contains(.ack) && $0.streamID == 1 }
        // The server's application is reading it: a session that fails
        // earlier drops the stream from its accept backlog unseen.
        for await _ in reading.stream { break }

        try await violation.commit(on: peer, stream: 1)
        let frames = try await peer.waitForClose()
        let last = try #require(frames.last)
        #expect(last.type == .goAway && last.length == YamuxGoAwayCode.protocolError.rawValue, "frames: \(frames)")

        // The stream failed with the protocol error, described clearly.
        while outcomes.withLockedValue({ $0[1] == nil }) { try await Task.sleep(for: .milliseconds(2)) }
        let outcome = try #require(outcomes.withLockedValue { $0[1] })
        guard case .failure(let error) = outcome else {
            Issue.record("stream ended without error: \(outcome)")
            return
        }
        #expect(error.code == violation.expectedCode)
        #expect(error.description.contains("(protocol error): session closed"))
        let session = try await server.firstSession()
        #expect(await session.waitForClose().code == violation.expectedCode)

        // The server keeps serving other connections.
        let client = try await connectYamuxClient(port: server.port)
        #expect(try await client.ping() > .zero)
        await client.close()
        await server.close()
    }

    @Test func windowOverrunErrorMessage() {
        #expect(YamuxError.windowExceeded(streamID: 3).description.hasPrefix("stream window exceeded by peer (protocol error): session closed"))
    }

    @Test func framesForUnknownStreamsAreDiscarded() async throws {
        let server = try await YamuxTestServer()
        let peer = try await RawPeer(port: server.port)
        try await peer.send(YamuxFrameHeader(type: .data, streamID: 99, length: 3), payload: ByteBuffer(string: "abc"))
        try await peer.send(YamuxFrameHeader(type: .windowUpdate, streamID: 77, length: 1000))
        try await peer.send(YamuxFrameHeader(type: .windowUpdate, flags: .fin, streamID: 75, length: 0))
        try await peer.send(YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: 73, length: 12345))
        try await peer.send(YamuxFrameHeader(type: .ping, flags: .syn, streamID: 0, length: 42))
        let pong = try await peer.waitForFrame { $0.type == .ping && $0.flags.contains(.ack) }
        #expect(pong.length == 42)
        #expect(!peer.frames.contains { $0.type == .goAway })
        let session = try await server.firstSession()
        #expect(await session.statistics.framesDiscarded == 4)
        #expect(await !session.isClosed)
        await peer.close()
        await server.close()
    }

    @Test func rstLengthIsIgnored() async throws {
        let server = try await YamuxTestServer { _ in }  // never accepts
        let peer = try await RawPeer(port: server.port)
        try await peer.send(YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: 1, length: 0))
        // libp2p's go-yamux puts an error code in the length of an RST.
        try await peer.send(YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: 1, length: 7))
        try await peer.send(YamuxFrameHeader(type: .ping, flags: .syn, streamID: 0, length: 1))
        _ = try await peer.waitForFrame { $0.type == .ping && $0.flags.contains(.ack) }
        let session = try await server.firstSession()
        #expect(await session.streamCount == 0)
        #expect(await !session.isClosed)
        await peer.close()
        await server.close()
    }

    @Test func pingFloodWithoutReadingStaysBounded() async throws {
        let limit = 200
        let server = try await YamuxTestServer(configuration: testConfiguration { $0.maxBufferedControlFrames = limit }) { _ in }
        let peer = try await RawPeer(port: server.port, reading: false)
        var batch = ByteBuffer()
        for i in 0..<1000 {
            YamuxFrameHeader(type: .ping, flags: .syn, streamID: 0, length: UInt32(i)).write(to: &batch)
        }
        // Flood until the server gives up on us. The bound only guarantees the test ends.
        var sent = 0
        do {
            while sent < 100_000 {
                try await peer.channel.writeAndFlush(batch)
                sent += 1
            }
        } catch {}
        #expect(sent < 100_000, "the server never dropped the flooding peer")
        let session = try await server.firstSession()
        #expect(await session.waitForClose().code == .controlFrameFlood)
        #expect(await session.statistics.maxBufferedControlFrames <= limit + 1)

        // The server keeps serving other connections.
        let client = try await connectYamuxClient(port: server.port)
        #expect(try await client.ping() > .zero)
        await client.close()
        await peer.close()
        await server.close()
    }
}
