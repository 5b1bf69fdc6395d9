import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing
import TestSupport
@testable import Yamux

/// Byte i of a test pattern: (i + seed) % 251, the same rule the Go peer uses.
func pattern(_ count: Int, seed: Int) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.reserveCapacity(count)
    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
        for i in 0..<count { raw[i] = UInt8((i + seed) % 251) }
        return count
    }
    return buffer
}

/// Checks `buffer` against the pattern starting at `offset`; returns the first bad index.
func firstPatternMismatch(_ buffer: ByteBuffer, seed: Int, offset: Int) -> Int? {
    buffer.withUnsafeReadableBytes { raw in
        for i in 0..<raw.count where raw[i] != UInt8((offset + i + seed) % 251) { return offset + i }
        return nil
    }
}

/// The group RawPeer and SilentServer run on: the one TestSupport's servers and clients use.
let testGroup = loopbackGroup

/// Every session the tests create, so a watchdog can dump the ones that hang.
let allTestSessions = NIOLockedValueBox<[YamuxSession]>([])
func debugPrint(_ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

let watchdog: Void = {
    allTestSessions.withLockedValue { _ in }
    if getenv("YAMUX_WATCHDOG") != nil {
        Task.detached {
            try? await Task.sleep(for: .seconds(15))
            let sessions = allTestSessions.withLockedValue({ $0 })
            debugPrint("WATCHDOG: \(sessions.count) sessions")
            for (i, session) in sessions.enumerated() {
                let state = try? await session.channel.eventLoop.submit { () -> String in "" }.get()
                if state == nil { debugPrint("WATCHDOG \(i): event loop dead") }
                let dump = await session.debugState
                if !dump.contains("state=closed") { debugPrint("WATCHDOG \(i) \(session.channel.eventLoop):\n" + dump) }
            }
            debugPrint("WATCHDOG done")
        }
    }
}()

func register(_ session: YamuxSession) {
    _ = watchdog
    allTestSessions.withLockedValue { $0.append(session) }
}

/// A configuration for tests: keepalive off unless asked for, so nothing fires by surprise.
func testConfiguration(_ modify: (inout YamuxConfiguration) -> Void = { _ in }) -> YamuxConfiguration {
    var configuration = YamuxConfiguration()
    configuration.enableKeepAlive = false
    modify(&configuration)
    return configuration
}

/// One read's worth of data frames: a 5-byte message for each of the streams `ids`.
func messageBatch(_ ids: [UInt32]) -> ByteBuffer {
    var batch = ByteBuffer()
    for id in ids {
        YamuxFrameHeader(type: .data, streamID: id, length: 5).write(to: &batch)
        batch.writeString("hello")
    }
    return batch
}

/// Makes the inbound streams `ids` of a session on an `EmbeddedChannel` its busy streams, as
/// early flushes count them (``EarlyFlushPolicy``): an epoch of read batches, each carrying a
/// 5-byte message for every stream. Whatever the session writes meanwhile is dropped.
func makeStreamsBusy(_ ids: [UInt32], on channel: EmbeddedChannel) throws {
    for _ in 0..<EarlyFlushPolicy.turnsPerEpoch {
        try channel.writeInbound(messageBatch(ids))
        channel.embeddedEventLoop.run()
    }
    while try channel.readOutbound(as: ByteBuffer.self) != nil {}
}

/// A yamux-layer test server: Swift yamux sessions on 127.0.0.1:0, each
/// served by `serve` (the Go peer's command protocol by default).
///
/// Not shared with MsgpackRPCTests' `RPCTestServer`, which serves net/rpc on
/// TCP: the two serve different layers, and one type for both would make
/// YamuxTests import MsgpackRPC. What they do share, the loopback listener, is
/// TestSupport's `bindLoopback`.
final class YamuxTestServer: Sendable {
    let channel: any Channel
    let port: Int
    private let sessions = NIOLockedValueBox<[YamuxSession]>([])

    init(
        configuration: YamuxConfiguration = testConfiguration(),
        serve: @escaping @Sendable (YamuxSession) async -> Void = { await serveCommands($0) }
    ) async throws {
        let sessions = self.sessions
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Void> = { channel in
            do {
                let session = try YamuxSession.configure(on: channel, role: .server, configuration: configuration)
                sessions.withLockedValue { $0.append(session) }
                register(session)
                Task { await serve(session) }
                return channel.eventLoop.makeSucceededVoidFuture()
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }
        let channel: any Channel = try await bindLoopback(childChannelInitializer: initializer)
        self.channel = channel
        self.port = self.channel.localAddress!.port!
    }

    var allSessions: [YamuxSession] { self.sessions.withLockedValue { $0 } }

    /// The first session, once the server has set it up.
    func firstSession() async throws -> YamuxSession {
        while true {
            if let session = self.allSessions.first { return session }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    func close() async {
        for session in self.allSessions { await session.close() }
        try? await self.channel.close()
    }
}

/// Connects a Swift yamux client session to 127.0.0.1:port.
func connectYamuxClient(port: Int, configuration: YamuxConfiguration = testConfiguration()) async throws -> YamuxSession {
    let session = try await connectLoopback(port: port) { channel in
        channel.eventLoop.makeCompletedFuture(
            Result { try YamuxSession.configure(on: channel, role: .client, configuration: configuration) }
        )
    }
    register(session)
    return session
}

/// Reads from an inbound stream, keeping leftovers, for line-oriented test protocols.
struct StreamReader {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    var buffer = ByteBuffer()

    init(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>) {
        self.iterator = inbound.makeAsyncIterator()
    }

    /// The next line without its newline; nil at EOF.
    mutating func readLine() async throws -> String? {
        while true {
            if let index = self.buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                let length = index - self.buffer.readerIndex
                let line = self.buffer.readString(length: length)!
                self.buffer.moveReaderIndex(forwardBy: 1)
                return line
            }
            guard var next = try await self.iterator.next() else {
                return self.buffer.readableBytes > 0 ? self.buffer.readString(length: self.buffer.readableBytes) : nil
            }
            self.buffer.writeBuffer(&next)
        }
    }

    /// The next chunk: leftovers first, then whatever the stream delivers; nil at EOF.
    mutating func next() async throws -> ByteBuffer? {
        if self.buffer.readableBytes > 0 {
            defer { self.buffer.clear() }
            return self.buffer
        }
        return try await self.iterator.next()
    }

    /// Reads until EOF, checking the pattern; returns the byte count.
    mutating func readPattern(seed: Int) async throws -> Int {
        var total = 0
        while let chunk = try await self.next() {
            if let bad = firstPatternMismatch(chunk, seed: seed, offset: total) {
                throw TestFailure("pattern mismatch at byte \(bad)")
            }
            total += chunk.readableBytes
        }
        return total
    }

    /// Reads and discards until EOF; returns the byte count.
    mutating func drain() async throws -> Int {
        var total = 0
        while let chunk = try await self.next() { total += chunk.readableBytes }
        return total
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The Swift side of the Go peer's command protocol (see Tests/GoPeers/yamux-peer/main.go):
/// every stream starts with one command line.
func serveCommands(_ session: YamuxSession) async {
    await withTaskGroup(of: Void.self) { group in
        do {
            for try await stream in session.inboundStreams {
                group.addTask { try? await serveCommandStream(stream, session: session) }
            }
        } catch {}
    }
}

func serveCommandStream(_ stream: YamuxStream, session: YamuxSession) async throws {
    try await stream.executeThenClose { inbound, outbound in
        var reader = StreamReader(inbound)
        guard let line = try await reader.readLine() else { return }
        let fields = line.split(separator: " ")
        switch fields.first {
        case "echo":
            while let chunk = try await reader.next() { try await outbound.write(chunk) }
        case "echon":
            var remaining = Int(fields[1])!
            while remaining > 0, var chunk = try await reader.next() {
                if chunk.readableBytes > remaining {
                    reader.buffer.writeBuffer(&chunk)  // not ours; keep it (never happens in tests)
                    break
                }
                remaining -= chunk.readableBytes
                try await outbound.write(chunk)
            }
        case "sinkn":
            let want = Int(fields[1])!
            var count = 0
            while count < want, let chunk = try await reader.next() { count += chunk.readableBytes }
            try await outbound.write(ByteBuffer(string: "count \(count)\n"))
        case "finfirst":
            // Half-close first, then keep reading what the peer still sends.
            try await outbound.write(ByteBuffer(string: "bye\n"))
            outbound.finish()
            let count = try await reader.drain()
            finFirstCounts.withLockedValue { $0.append(count) }
        case "sink":
            let count = try await reader.drain()
            try await outbound.write(ByteBuffer(string: "count \(count)\n"))
        case "send":
            try await writePattern(count: Int(fields[1])!, seed: Int(fields[2])!, to: outbound)
        case "halfclose":
            let count = try await reader.drain()
            try await outbound.write(ByteBuffer(string: "after-eof \(count)\n"))
        case "sendaftereof":
            // Writes on a stream the peer has half-closed, more than one window's worth.
            _ = try await reader.drain()
            try await writePattern(count: Int(fields[1])!, seed: Int(fields[2])!, to: outbound)
        case "goaway":
            await session.goAway()
            try await outbound.write(ByteBuffer(string: "ok\n"))
        case "ping":
            do {
                _ = try await session.ping()
                try await outbound.write(ByteBuffer(string: "rtt ok\n"))
            } catch {
                try await outbound.write(ByteBuffer(string: "rtt error \(error)\n"))
            }
        case "streams":
            let count = await session.streamCount - 1
            try await outbound.write(ByteBuffer(string: "streams \(count)\n"))
        case "closesession":
            await session.close()
        default:
            break
        }
    }
}

/// Writes `count` pattern bytes in 64 KiB writes, the pattern aligned to the offset.
func writePattern(count: Int, seed: Int, to outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws {
    var offset = 0
    while offset < count {
        let n = min(64 * 1024, count - offset)
        var part = pattern(n + offset % 251, seed: seed)  // realign the pattern to `offset`
        part.moveReaderIndex(forwardBy: offset % 251)
        try await outbound.write(part)
        offset += n
    }
}

/// Parses every frame header `channel` wrote (payloads skipped), once its loop has turned.
func outboundFrames(_ channel: EmbeddedChannel) throws -> [YamuxFrameHeader] {
    channel.embeddedEventLoop.run()
    var all = ByteBuffer()
    while var buffer = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&buffer) }
    var frames: [YamuxFrameHeader] = []
    while let header = try YamuxFrameHeader.read(from: &all) {
        frames.append(header)
        if header.type == .data { all.moveReaderIndex(forwardBy: Int(header.length)) }
    }
    return frames
}

/// Bytes received after our FIN by each "finfirst" stream, for the half-close tests.
let finFirstCounts = NIOLockedValueBox<[Int]>([])

/// Client side of the command protocol: sends `command`, then `payload`, half-closes, and
/// returns everything the server answered.
func runCommand(_ session: YamuxSession, _ command: String, payload: ByteBuffer? = nil) async throws -> ByteBuffer {
    let stream = try await session.openStream()
    return try await stream.executeThenClose { inbound, outbound in
        try await outbound.write(ByteBuffer(string: command + "\n"))
        if let payload { try await outbound.write(payload) }
        outbound.finish()
        var result = ByteBuffer()
        for try await var chunk in inbound { result.writeBuffer(&chunk) }
        return result
    }
}

/// Echo of `count` pattern bytes through the command protocol, checked.
func echoCheck(_ session: YamuxSession, count: Int, seed: Int) async throws {
    let stream = try await session.openStream()
    try await stream.executeThenClose { inbound, outbound in
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await outbound.write(ByteBuffer(string: "echo\n"))
                try await writePattern(count: count, seed: seed, to: outbound)
                outbound.finish()
            }
            var reader = StreamReader(inbound)
            let received = try await reader.readPattern(seed: seed)
            #expect(received == count)
            try await group.waitForAll()
        }
    }
}
