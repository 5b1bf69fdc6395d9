import ArgumentParser
import Foundation
import MuxRPC
import NIOCore
import NIOPosix
import ProgramOptions
import Yamux

/// Bulk transfer over yamux streams on one loopback session.
struct StreamsBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streams",
        abstract: "Yamux bulk transfer: --bytes in total over --streams streams at once, --chunk per write, counted at the receiver."
    )

    @Option(help: "Concurrent streams.")
    var streams = 1

    @Option(help: "Bytes in total, split evenly over the streams.")
    var bytes = 1 << 30

    @Option(help: "Bytes per write.")
    var chunk = 64 << 10

    @Option(help: "How both ends drive their streams: 'async' (YamuxStream.executeThenClose, NIOAsyncChannel, code on Swift's task threads) or 'handlers' (YamuxStream.configurePipeline, ChannelHandlers on the event loop, as MuxRPC's server and client do).")
    var api: StreamAPI = .async

    @OptionGroup var polling: BusyPollingOptions

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard streams > 0, bytes >= streams, chunk > 0 else {
            throw ValidationError("--streams, --bytes and --chunk must be positive, and --bytes at least --streams")
        }
    }

    func run() async throws {
        let pair = try await YamuxLoopbackPair(api: api, busyPolling: try polling.makePollers())
        let perStream = bytes / streams
        let clock = ContinuousClock()
        let start = clock.now
        try await pair.transfer(streams: streams, bytesPerStream: perStream, chunk: chunk)
        let elapsed = clock.now - start
        await pair.close()

        var report = BenchmarkReport()
        report.add("streams", streams)
        report.add("chunk", chunk)
        report.add("bytes", perStream * streams)
        report.add("MBps", Double(perStream * streams) / elapsed.seconds / 1e6)
        report.add("api", api.rawValue)
        report.print(json: output.json)
    }
}

/// The two ways an application drives a yamux stream.
enum StreamAPI: String, ExpressibleByArgument, Sendable {
    /// `YamuxStream.executeThenClose`: `NIOAsyncChannel` inbound sequence and outbound writer,
    /// the application's code on Swift's cooperative threads (a hop per handover).
    case async
    /// `YamuxStream.configurePipeline`: `ChannelHandler`s on the connection's event loop.
    case handlers
}

/// A yamux client session connected over 127.0.0.1 to a server session that
/// reads each stream to its end and answers with the number of bytes it got.
final class YamuxLoopbackPair: Sendable {
    let server: any Channel
    let client: YamuxSession
    let api: StreamAPI

    /// `busyPolling` defaults to what the program's flags default to: adaptive.
    init(api: StreamAPI = .async, maxConcurrentStreams: Int? = nil, busyPolling: BusyPollers? = BusyPollers(.adaptive)) async throws {
        self.api = api
        var configuration = YamuxConfiguration()
        configuration.enableKeepAlive = false
        if let maxConcurrentStreams { configuration.maxConcurrentStreams = maxConcurrentStreams }
        let serverConfiguration = configuration
        server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addBusyPolling(busyPolling)
                    let session = try YamuxSession.configure(on: channel, role: .server, configuration: serverConfiguration)
                    Task { await Self.serve(session, api: api) }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let clientChannel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addBusyPolling(busyPolling) }
            }
            .connect(host: "127.0.0.1", port: server.localAddress!.port!).get()
        client = try await YamuxSession.install(on: clientChannel, role: .client, configuration: configuration).get()
    }

    static func serve(_ session: YamuxSession, api: StreamAPI) async {
        await withTaskGroup(of: Void.self) { group in
            do {
                for try await stream in session.inboundStreams {
                    if api == .handlers {
                        _ = try? await stream.configurePipeline { channel in
                            try channel.pipeline.syncOperations.addHandler(CountingReceiver())
                        }
                        continue
                    }
                    group.addTask {
                        try? await stream.executeThenClose { inbound, outbound in
                            var received: UInt64 = 0
                            for try await chunk in inbound { received += UInt64(chunk.readableBytes) }
                            try await outbound.write(ByteBuffer(integer: received))
                        }
                    }
                }
            } catch {}
        }
    }

    /// Sends `bytesPerStream` on each of `streams` streams at once; checks the
    /// server's count for each.
    func transfer(streams: Int, bytesPerStream: Int, chunk: Int) async throws {
        let payload = ByteBuffer(repeating: 0x5a, count: chunk)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<streams {
                group.addTask {
                    let stream = try await self.client.openStream()
                    if self.api == .handlers {
                        let done = try await stream.configurePipeline { channel in
                            let promise = channel.eventLoop.makePromise(of: UInt64.self)
                            try channel.pipeline.syncOperations.addHandler(
                                StreamSender(total: bytesPerStream, chunk: payload, answer: promise)
                            )
                            return promise.futureResult
                        }
                        guard try await done.get() == UInt64(bytesPerStream) else {
                            throw ValidationError("the server counted a different number of bytes")
                        }
                        return
                    }
                    try await stream.executeThenClose { inbound, outbound in
                        var sent = 0
                        while sent < bytesPerStream {
                            let size = min(chunk, bytesPerStream - sent)
                            try await outbound.write(size == chunk ? payload : payload.getSlice(at: 0, length: size)!)
                            sent += size
                        }
                        outbound.finish()
                        var answer = ByteBuffer()
                        for try await part in inbound { answer.writeImmutableBuffer(part) }
                        guard answer.readInteger(as: UInt64.self) == UInt64(bytesPerStream) else {
                            throw ValidationError("the server counted a different number of bytes")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Opens a stream and installs one handler on it (a stream a pool holds idle).
    func openIdleStream() async throws -> YamuxStream {
        let stream = try await self.client.openStream()
        try await stream.configurePipeline { channel in
            try channel.pipeline.syncOperations.addHandler(IdleHandler())
        }
        return stream
    }

    func close() async {
        await client.close()
        try? await server.close()
    }
}

/// Stream open and close, one after another on one session.
struct StreamOpenBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream-open",
        abstract: "Yamux stream open+close rate: --count streams, one at a time (open, FIN, the server's answer, close)."
    )

    @Option(help: "Streams to open and close.")
    var count = 10_000

    @OptionGroup var output: OutputOptions

    func run() async throws {
        let pair = try await YamuxLoopbackPair()
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<count {
            try await pair.transfer(streams: 1, bytesPerStream: 0, chunk: 1)
        }
        let elapsed = clock.now - start
        await pair.close()

        var report = BenchmarkReport()
        report.add("streams", count)
        report.add("opens_per_s", Double(count) / elapsed.seconds)
        report.print(json: output.json)
    }
}

/// The handler-API sender: writes `total` bytes on its stream from the event loop while the
/// stream is writable (one flush per batch, as NIO's own bulk writers do), then half-closes
/// and waits for the server's 8-byte count.
final class StreamSender: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let total: Int
    private let chunk: ByteBuffer
    private let answer: EventLoopPromise<UInt64>
    private var sent = 0
    private var received = ByteBuffer()

    init(total: Int, chunk: ByteBuffer, answer: EventLoopPromise<UInt64>) {
        self.total = total
        self.chunk = chunk
        self.answer = answer
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // configurePipeline runs on an active stream: start at once.
        self.writeWhileWritable(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.writeWhileWritable(context: context)
        context.fireChannelWritabilityChanged()
    }

    private func writeWhileWritable(context: ChannelHandlerContext) {
        guard self.sent < self.total || self.total == 0 else { return }
        while context.channel.isWritable && self.sent < self.total {
            let size = min(self.chunk.readableBytes, self.total - self.sent)
            self.sent += size
            context.write(self.wrapOutboundOut(size == self.chunk.readableBytes ? self.chunk : self.chunk.getSlice(at: 0, length: size)!), promise: nil)
        }
        context.flush()
        if self.sent == self.total {
            self.sent += 1  // only once
            context.close(mode: .output, promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var part = self.unwrapInboundIn(data)
        self.received.writeBuffer(&part)
        if let count = self.received.getInteger(at: self.received.readerIndex, as: UInt64.self) {
            self.answer.succeed(count)
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.answer.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.answer.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}

/// The handler-API receiver: counts bytes on the event loop; at the peer's FIN answers with
/// the count and closes.
final class CountingReceiver: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var received: UInt64 = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.received += UInt64(self.unwrapInboundIn(data).readableBytes)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent {
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(integer: self.received)), promise: nil)
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// Memory of open, idle streams: opens --count streams on one session (the server
/// accepts each and installs one handler), then reports the growth of the process's
/// resident memory per stream. Both ends of every stream live in this process, so the
/// figure covers a client stream and a server stream together.
struct StreamMemoryBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream-memory",
        abstract: "Resident memory of --count open idle yamux streams on one session (both ends in this process)."
    )

    @Option(help: "Streams to open and keep open.")
    var count = 10_000

    @OptionGroup var output: OutputOptions

    func run() async throws {
        let pair = try await YamuxLoopbackPair(api: .handlers, maxConcurrentStreams: count + 16)
        // Warm up allocator and metadata caches with a few streams first.
        var streams: [YamuxStream] = []
        for _ in 0..<16 { streams.append(try await pair.openIdleStream()) }
        let before = residentBytes()
        for _ in 0..<count { streams.append(try await pair.openIdleStream()) }
        // Let the server accept and ACK the last ones.
        try await Task.sleep(for: .milliseconds(200))
        let after = residentBytes()
        let open = await pair.client.streamCount
        withExtendedLifetime(streams) {}
        await pair.close()

        var report = BenchmarkReport()
        report.add("streams", count)
        report.add("open", open)
        report.add("rss_mib", Double(after - before) / 1_048_576)
        report.add("bytes_per_stream", Double(after - before) / Double(count))
        report.print(json: output.json)
    }
}

/// The process's resident set, from /proc/self/statm.
func residentBytes() -> Int {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = statm.split(separator: " ")
    return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Does nothing: the one handler an idle stream carries in `stream-memory`.
final class IdleHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
}
