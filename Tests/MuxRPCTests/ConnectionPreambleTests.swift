import MuxRPC
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOSSL
import Synchronization
import Testing

/// Answers a connection, once its mode is known, with the mode's byte and
/// whether it is inside TLS (1 or 0), then echoes what it reads.
private final class ModeEchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let mode: ConnectionMode
    let isTLS: Bool

    init(mode: ConnectionMode, isTLS: Bool) {
        self.mode = mode
        self.isTLS = isTLS
    }

    func handlerAdded(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [mode.preambleByte, isTLS ? 1 : 0])), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// What a server refused, in order.
private final class RefusalLog: Sendable {
    private let errors = Mutex<[MuxRPCError]>([])
    func append(_ error: MuxRPCError) { errors.withLock { $0.append(error) } }
    var all: [MuxRPCError] { errors.withLock { $0 } }
    var codes: [MuxRPCError.Code] { all.map(\.code) }
}

/// A server whose connections go through a `ConnectionPreambleHandler`.
private final class PreambleServer: Sendable {
    let channel: any Channel
    let refusals = RefusalLog()

    init(_ configuration: ConnectionPreambleConfiguration) async throws {
        let refusals = self.refusals
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = ConnectionPreambleHandler(
                        configuration: configuration,
                        onRefused: { error in refusals.append(error) }
                    ) { mode, isTLS, channel in
                        try channel.pipeline.syncOperations.addHandler(ModeEchoHandler(mode: mode, isTLS: isTLS))
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    var port: Int { channel.localAddress!.port! }

    /// Connects, lets `prepare` write the preamble (on the event loop), sends
    /// `payload`, and returns everything received until the server closes
    /// or `expecting` bytes arrived.
    func exchange(
        payload: [UInt8] = [],
        expecting: Int = .max,
        prepare: @escaping @Sendable (any Channel) throws -> Void
    ) async throws -> [UInt8] {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        let asyncChannel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            asyncChannel = try await channel.eventLoop.submit {
                try prepare(channel)
                return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }.get()
        } catch ChannelError.ioOnClosedChannel {
            // The server closed the connection before we got to read from it
            // (a short handshake timeout on a busy machine): nothing came.
            return []
        }
        return try await asyncChannel.executeThenClose { inbound, outbound in
            var received: [UInt8] = []
            do {
                // Writing fails when the server has closed already; reading then ends at once.
                if !payload.isEmpty { try await outbound.write(ByteBuffer(bytes: payload)) }
                for try await chunk in inbound {
                    received += chunk.readableBytesView
                    if received.count >= expecting { break }
                }
            } catch {
                // A refused TLS handshake ends in an error rather than EOF; either way nothing more comes.
            }
            return received
        }
    }

    func close() async throws { try await channel.close() }
}

extension ConnectionPreambleConfiguration {
    /// For tests whose subject is not the handshake timeout: a busy machine
    /// (other tests running) must not turn into a refused connection.
    static func patient(tls: NIOSSLContext? = nil, requireTLS: Bool = false) -> ConnectionPreambleConfiguration {
        ConnectionPreambleConfiguration(tls: tls, requireTLS: requireTLS, handshakeTimeout: .minutes(10))
    }
}

/// Counts the graceful-shutdown events that reach it.
private final class QuiesceCounter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var count = 0

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent { count += 1 }
        context.fireUserInboundEventTriggered(event)
    }
}

@Suite("Connection preambles", .timeLimit(.minutes(5)))
struct ConnectionPreambleTests {
    @Test("a graceful shutdown before the preamble closes the connection; after it, the mode's handlers hear of it")
    func quiesce() throws {
        let refusals = RefusalLog()
        let counter = QuiesceCounter()
        func connection() throws -> EmbeddedChannel {
            let channel = EmbeddedChannel()
            let handler = ConnectionPreambleHandler(configuration: .patient(), onRefused: { refusals.append($0) }) { _, _, channel in
                try channel.pipeline.syncOperations.addHandler(counter)
            }
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            return channel
        }

        let silent = try connection()
        silent.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!silent.isActive)
        #expect(refusals.codes == [.shutDown])

        let served = try connection()
        try served.writeInbound(ByteBuffer(integer: ConnectionMode.plain.preambleByte))
        served.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(served.isActive, "closing a served connection is its mode's job")
        #expect(counter.count == 1)
        #expect(refusals.codes == [.shutDown])
        _ = try served.finish()
    }

    @Test("each mode's byte installs that mode, and bytes sent with the preamble reach it", arguments: [
        ConnectionMode.plain, .consulMultiplex, .nomadMultiplex,
    ])
    func modes(mode: ConnectionMode) async throws {
        let server = try await PreambleServer(.patient())
        // The preamble and the first bytes in one write, so they arrive together.
        let received = try await server.exchange(payload: [mode.preambleByte] + Array("hello".utf8), expecting: 7) { _ in }
        #expect(received == [mode.preambleByte, 0] + Array("hello".utf8))
        try await server.close()
    }

    @Test("the client side writes the preamble the server expects")
    func clientPreamble() async throws {
        let server = try await PreambleServer(.patient())
        let received = try await server.exchange(payload: Array("hi".utf8), expecting: 4) { channel in
            try ConnectionPreambleClient.configure(channel, mode: .nomadMultiplex)
        }
        #expect(received == [0x06, 0] + Array("hi".utf8))
        try await server.close()
    }

    @Test("an unknown first byte closes the connection", arguments: [UInt8(0x01), 0x05, 0x07, 0x08, 0xff])
    func unknownByte(byte: UInt8) async throws {
        let server = try await PreambleServer(.patient())
        let received = try await server.exchange(payload: [byte, 1, 2, 3]) { _ in }
        #expect(received.isEmpty)
        #expect(server.refusals.codes == [.preambleRefused])
        let refusal = try #require(server.refusals.all.first)
        #expect(refusal.message.contains("first byte 0x\(String(byte, radix: 16)) asks for no RPC mode"), "\(refusal)")
        #expect(refusal.address?.ipAddress == "127.0.0.1", "the refusal names the client")
        try await server.close()
    }

    @Test("a connection that sends nothing is closed after the handshake timeout")
    func silentClient() async throws {
        let timeout = TimeAmount.milliseconds(50)
        let server = try await PreambleServer(ConnectionPreambleConfiguration(handshakeTimeout: timeout))
        let received = try await server.exchange { _ in }
        #expect(received.isEmpty)
        #expect(server.refusals.codes == [.handshakeTimeout])
        #expect(server.refusals.all.first?.message.contains("handshake timeout of 50 ms") == true)
        try await server.close()
    }

    @Test("TLS as Consul does it: 0x03, the handshake, then the mode's byte inside TLS", arguments: [
        ConnectionMode.plain, .consulMultiplex, .nomadMultiplex,
    ])
    func tls(mode: ConnectionMode) async throws {
        let server = try await PreambleServer(.patient(tls: try await TestCertificates.serverContext(), requireTLS: true))
        let client = try await TestCertificates.clientContext()
        let received = try await server.exchange(payload: Array("secret".utf8), expecting: 8) { channel in
            try ConnectionPreambleClient.configure(channel, mode: mode, tls: client, serverHostname: "localhost")
        }
        #expect(received == [mode.preambleByte, 1] + Array("secret".utf8))
        #expect(server.refusals.all.isEmpty)
        try await server.close()
    }

    @Test("a client that does not trust the server's certificate gets nothing through")
    func untrustedServer() async throws {
        let server = try await PreambleServer(.patient(tls: try await TestCertificates.serverContext()))
        let untrusting = try NIOSSLContext(configuration: .makeClientConfiguration())  // system roots only
        let received = try await server.exchange(payload: Array("secret".utf8)) { channel in
            try ConnectionPreambleClient.configure(channel, mode: .consulMultiplex, tls: untrusting, serverHostname: "localhost")
        }
        #expect(received.isEmpty)
        try await server.close()
    }

    @Test("asking for TLS where none is offered closes the connection")
    func tlsNotOffered() async throws {
        let server = try await PreambleServer(.patient())
        let received = try await server.exchange(payload: [0x03, 0x16, 0x03, 0x01]) { _ in }
        #expect(received.isEmpty)
        #expect(server.refusals.codes == [.preambleRefused])
        #expect(server.refusals.all.first?.message.contains("asked for TLS (0x03) but the server has no TLS configured") == true)
        try await server.close()
    }

    @Test("a server that requires TLS refuses plaintext modes")
    func plaintextRefused() async throws {
        let server = try await PreambleServer(.patient(tls: try await TestCertificates.serverContext(), requireTLS: true))
        let received = try await server.exchange(payload: [0x04, 1, 2]) { _ in }
        #expect(received.isEmpty)
        #expect(server.refusals.codes == [.preambleRefused])
        #expect(server.refusals.all.first?.message.contains("requires TLS and the client asked for \(ConnectionMode.consulMultiplex) in plaintext") == true)
        try await server.close()
    }
}
