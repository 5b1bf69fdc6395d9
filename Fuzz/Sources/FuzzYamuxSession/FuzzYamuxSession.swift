// A yamux session (YamuxSession.configure on an EmbeddedChannel) fed
// arbitrary bytes as if from the peer, in pieces (see FuzzInput), with the
// application doing things between pieces: accepting and opening streams,
// writing, half-closing, closing and resetting them, pinging, going away,
// letting time pass (keepalive, ping, open and close timeouts), turning the
// connection unwritable, asking for a graceful shutdown.
//
// Streams are accepted through the session handler's accept path (internal:
// @testable import, which the debug fuzz build allows), as YamuxSession's
// async accept() does.
//
// Findings besides crashes and leaks (fuzzCheck):
// - once the session has ended, the connection closes;
// - closing the connection ends the session and every stream;
// - what the session writes is well-formed yamux: known types, version 0,
//   stream 0 only for ping, GoAway and refusing a SYN for stream 0, SYNs with our parity only and never
//   after our GoAway, no data after our FIN or RST on a stream.
//
// Mode byte bits: 0 client (else server), 1 keepalive, 2 window auto-tuning,
// 3 small limits (backlog 2, 3 streams, 4 buffered control frames),
// 4 accept four streams up front, 5 streams echo and allow half-closure,
// 6 no early flushes, 7 streams start with autoRead off.
//
// Action byte after each piece: low 4 bits pick the action, high 4 bits are
// its argument (which stream, how much, how long).

import FuzzSupport
import NIOCore
import NIOEmbedded
@testable import Yamux

/// The application side of a stream: counts what arrives, echoes it if asked.
final class StreamApp: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let echo: Bool
    init(echo: Bool) { self.echo = echo }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if echo { context.write(data, promise: nil) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if echo { context.flush() }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if echo, case .inputClosed = event as? ChannelEvent {
            context.close(mode: .output, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

/// Checks the frames the session writes, as a peer would see them.
struct OutboundChecker {
    let role: YamuxRole
    var bytes = ByteBuffer()
    /// Streams we sent FIN or RST on: no data may follow (until the id is opened anew).
    var ended: Set<UInt32> = []
    var sentGoAway = false

    mutating func take(_ buffer: ByteBuffer) {
        var buffer = buffer
        bytes.writeBuffer(&buffer)
        while bytes.readableBytes >= YamuxFrameHeader.size {
            let header: YamuxFrameHeader
            do {
                guard let parsed = try YamuxFrameHeader.read(from: &bytes) else { return }
                header = parsed
            } catch {
                fuzzCheck(false, "the session wrote an invalid frame header: \(error)")
                return
            }
            let id = header.streamID
            switch header.type {
            case .ping, .goAway:
                fuzzCheck(id == 0, "\(header.type) on stream \(id)")
                if header.type == .goAway { sentGoAway = true }
            case .data, .windowUpdate:
                // Stream 0 only in the RST that refuses a peer's SYN for it.
                fuzzCheck(id != 0 || (header.type == .windowUpdate && header.flags == .rst), "\(header.type) \(header.flags) on stream 0")
                if header.flags.contains(.syn) {
                    fuzzCheck(id % 2 == (role == .client ? 1 : 0), "a SYN for stream \(id) with the peer's parity")
                    fuzzCheck(!sentGoAway, "a SYN for stream \(id) after our GoAway")
                    ended.remove(id)
                }
                if header.flags.contains(.ack) { ended.remove(id) }
                if header.type == .data, header.length > 0 {
                    fuzzCheck(!ended.contains(id), "data on stream \(id) after our FIN or RST")
                }
                if header.flags.contains(.fin) || header.flags.contains(.rst) { ended.insert(id) }
            }
            if header.type == .data {
                // The payload follows; it may not all be here yet.
                let skip = min(Int(header.length), bytes.readableBytes)
                bytes.moveReaderIndex(forwardBy: skip)
                if skip < Int(header.length) {
                    pendingPayload = Int(header.length) - skip
                    return
                }
            }
        }
    }

    var pendingPayload = 0

    mutating func write(_ buffer: ByteBuffer) {
        var buffer = buffer
        if pendingPayload > 0 {
            let skip = min(pendingPayload, buffer.readableBytes)
            buffer.moveReaderIndex(forwardBy: skip)
            pendingPayload -= skip
            if pendingPayload > 0 { return }
        }
        take(buffer)
    }
}

/// Everything runs on the fuzzer's one thread, the embedded loop's.
final class Harness: @unchecked Sendable {
    let mode: UInt8
    let channel = EmbeddedChannel()
    let handler: YamuxSessionHandler
    let session: YamuxSession
    var checker: OutboundChecker
    var closeReason: YamuxError?
    var streams: [YamuxStreamChannel] = []
    var closedStreams: [Bool] = []
    var nextToken = 0

    init(mode: UInt8) throws {
        self.mode = mode
        var configuration = YamuxConfiguration()
        configuration.enableKeepAlive = mode & 2 != 0
        configuration.enableWindowAutoTuning = mode & 4 != 0
        if mode & 8 != 0 {
            configuration.acceptBacklog = 2
            configuration.maxConcurrentStreams = 3
            configuration.maxBufferedControlFrames = 4
        }
        if mode & 64 != 0 {
            configuration.flushesEarly = false
        } else {
            configuration.maxFramesPerFlush = 1
        }
        let role: YamuxRole = mode & 1 != 0 ? .client : .server
        checker = OutboundChecker(role: role)
        session = try YamuxSession.configure(on: channel, role: role, configuration: configuration)
        handler = try channel.pipeline.syncOperations.handler(type: YamuxSessionHandler.self)
        handler.onClose { [unowned self] reason in self.closeReason = reason }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        if mode & 16 != 0 {
            for _ in 0..<4 { accept() }
        }
        settle()
    }

    /// Sets up a stream the session handed over, as an application would.
    func attach(_ result: Result<YamuxStreamChannel?, any Error>) {
        guard case .success(let stream?) = result else { return }
        let index = streams.count
        streams.append(stream)
        closedStreams.append(false)
        stream.closeFuture.whenComplete { [unowned self] _ in self.closedStreams[index] = true }
        let echo = mode & 32 != 0
        try? stream.pipeline.syncOperations.addHandler(StreamApp(echo: echo))
        try? stream.syncOptions?.setOption(.allowRemoteHalfClosure, value: echo)
        if mode & 128 != 0 { try? stream.syncOptions?.setOption(.autoRead, value: false) }
    }

    func accept() {
        nextToken += 1
        handler.accept(token: nextToken) { [unowned self] result in self.attach(result) }
    }

    /// Runs what is due on the loop and takes what the session wrote.
    func settle() {
        channel.embeddedEventLoop.run()
        while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
            checker.write(buffer)
        }
        if closeReason != nil {
            fuzzCheck(!channel.isActive, "the session ended (\(closeReason!)) but the connection is open")
        }
    }

    func stream(_ argument: Int) -> YamuxStreamChannel? {
        streams.isEmpty ? nil : streams[argument % streams.count]
    }

    func perform(_ action: UInt8) {
        let argument = Int(action >> 4)
        switch action & 15 {
        case 1:
            accept()
        case 2:
            handler.openStream { [unowned self] result in self.attach(result.map { $0 }) }
        case 3:
            stream(argument)?.writeAndFlush(ByteBuffer(repeating: UInt8(argument), count: 1 + argument * 37), promise: nil)
        case 4:
            // Past the initial 256 KiB window, so that writes wait for window updates.
            stream(argument)?.writeAndFlush(ByteBuffer(repeating: 0x55, count: (argument + 1) * 20 * 1024), promise: nil)
        case 5:
            stream(argument)?.close(mode: .output, promise: nil)
        case 6:
            stream(argument)?.close(promise: nil)
        case 7:
            stream(argument)?.triggerUserOutboundEvent(YamuxStreamResetEvent(), promise: nil)
        case 8:
            if let stream = stream(argument) {
                try? stream.syncOptions?.setOption(.autoRead, value: argument & 1 == 0)
                stream.read()
            }
        case 9:
            handler.sendPing(callback: nil)
            handler.flushIfNeeded()
        case 10:
            handler.goAway()
        case 11:
            let seconds: [Int64] = [1, 5, 11, 31, 76, 301]
            channel.embeddedEventLoop.advanceTime(by: .seconds(seconds[argument % seconds.count]))
        case 12:
            channel.isWritable.toggle()
            channel.pipeline.fireChannelWritabilityChanged()
        case 13:
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        case 14:
            handler.closeSession(error: .sessionClosed, goAway: argument & 1 == 0 ? .normal : nil)
        default:
            break
        }
    }

    /// Closes everything and checks that everything ended.
    func tearDown() {
        settle()
        channel.close(promise: nil)
        settle()
        fuzzCheck(closeReason != nil, "the connection closed but the session did not end")
        // Timers left behind must do nothing harmful once the session is gone.
        channel.embeddedEventLoop.advanceTime(by: .seconds(3600))
        // The application closes what it holds (a stream whose peer had sent
        // FIN stays open for the application to read until it closes it).
        for stream in streams { stream.close(promise: nil) }
        settle()
        for (index, closed) in closedStreams.enumerated() {
            fuzzCheck(closed, "stream \(streams[index].streamID) still open after the connection closed")
        }
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    let harness: Harness
    do {
        harness = try Harness(mode: input.mode)
    } catch {
        fatalError("could not set up a session: \(error)")
    }
    input.forEachPiece { piece, action in
        if harness.channel.isActive {
            _ = try? harness.channel.writeInbound(ByteBuffer(bytes: piece))
        }
        harness.settle()
        harness.perform(action)
        harness.settle()
    }
    harness.tearDown()
    return 0
}
