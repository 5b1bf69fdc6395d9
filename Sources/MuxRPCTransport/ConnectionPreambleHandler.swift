public import NIOCore
#if TLS
public import NIOSSL
#endif

/// Why a server refused a connection before it carried any RPC; reported
/// as a ``MuxRPCError``.
enum PreambleRefusal: Hashable, Sendable {
    /// The first byte asks for nothing this server speaks.
    case unknownPreamble(UInt8)
    /// The client asked for TLS (0x03) but this server has no TLS configured.
    case tlsNotOffered
    /// The server requires TLS and the client asked for a plaintext mode.
    case tlsRequired(ConnectionMode)
    /// The server requires TLS and the client asked for a streaming call
    /// (0x05) in plaintext.
    case tlsRequiredForStreaming
    /// No preamble arrived within the handshake timeout.
    case handshakeTimeout(TimeAmount)
    /// The connection closed before its preamble arrived.
    case closedBeforePreamble
    /// The server began a graceful shutdown before the preamble arrived.
    case serverShuttingDown

    /// The error `onRefused` hears, naming the client at `peer`.
    func error(peer: SocketAddress?) -> MuxRPCError {
        let (code, message): (MuxRPCError.Code, String) = switch self {
        case .unknownPreamble(let byte):
            (.preambleRefused, "connection refused: first byte 0x\(String(byte, radix: 16)) asks for no RPC mode this server speaks (0x00, 0x03, 0x04, 0x06)")
        case .tlsNotOffered:
            (.preambleRefused, "connection refused: the client asked for TLS (0x03) but the server has no TLS configured")
        case .tlsRequired(let mode):
            (.preambleRefused, "connection refused: the server requires TLS and the client asked for \(mode) in plaintext")
        case .tlsRequiredForStreaming:
            (.preambleRefused, "connection refused: the server requires TLS and the client asked for a streaming call (0x05) in plaintext")
        case .handshakeTimeout(let timeout):
            (.handshakeTimeout, "connection closed: no preamble within the handshake timeout of \(timeout.nanoseconds / 1_000_000) ms")
        case .closedBeforePreamble:
            (.closedBeforePreamble, "connection closed before its preamble arrived")
        case .serverShuttingDown:
            (.shutDown, "connection closed: the server began shutting down before the preamble arrived")
        }
        return MuxRPCError(code: code, message: message, address: peer)
    }
}

/// How a server treats the start of each connection.
public struct ConnectionPreambleConfiguration: Sendable {
    #if TLS
    /// TLS offered to clients that send 0x03; `nil` offers none.
    public var tls: NIOSSLContext?
    #endif
    /// Refuse plaintext modes: every client must send 0x03 first.
    public var requireTLS: Bool
    /// How long a client has to send its preamble (and, with TLS, to finish
    /// the handshake and send the inner byte). Default 5 s, as Consul's
    /// `RPCHandshakeTimeout`: a connection that says nothing is closed.
    public var handshakeTimeout: TimeAmount

    /// A server that offers no TLS.
    public init(requireTLS: Bool = false, handshakeTimeout: TimeAmount = .seconds(5)) {
        self.requireTLS = requireTLS
        self.handshakeTimeout = handshakeTimeout
    }

    #if TLS
    /// A server that offers TLS to clients that send 0x03 (all of them, with `requireTLS`).
    public init(tls: NIOSSLContext?, requireTLS: Bool = false, handshakeTimeout: TimeAmount = .seconds(5)) {
        self.init(requireTLS: requireTLS, handshakeTimeout: handshakeTimeout)
        self.tls = tls
    }
    #endif

    /// The TLS handler for a client that sent 0x03, or nil when this
    /// server offers none (or was built without the TLS trait).
    func makeTLSHandler() -> (any ChannelHandler)? {
        #if TLS
        return tls.map { NIOSSLServerHandler(context: $0) }
        #else
        return nil
        #endif
    }
}

/// Reads a connection's first byte and hands the connection to the mode it
/// asks for, as Consul's and Nomad's RPC ports do.
///
/// Put it first in a server connection's pipeline. When the mode is known,
/// `installMode` runs on the event loop to append that mode's handlers; any
/// bytes that came with the preamble are then passed on to them, and this
/// handler leaves the pipeline. For 0x03 it puts a TLS handler in its place,
/// followed by a new preamble handler that reads the real byte inside TLS.
/// Anything else closes the connection, and `onRefused` hears why: a
/// ``MuxRPCError`` with code ``MuxRPCError/Code/preambleRefused``,
/// ``MuxRPCError/Code/handshakeTimeout``,
/// ``MuxRPCError/Code/closedBeforePreamble`` or ``MuxRPCError/Code/shutDown``,
/// whose address is the client's.
///
/// A graceful shutdown (`ChannelShouldQuiesceEvent`) that finds the preamble
/// not yet read closes the connection: nothing on it has been accepted, and
/// without this the mode installed later would never hear of the shutdown
/// and would keep the server waiting for its whole grace period.
package final class ConnectionPreambleHandler: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer

    /// Appends the handlers for `mode` to `channel`'s pipeline. `isTLS` says
    /// whether the connection is inside TLS.
    package typealias ModeInstaller = (_ mode: ConnectionMode, _ isTLS: Bool, _ channel: any Channel) throws -> Void
    /// Appends the handlers that serve one streaming call on the whole
    /// connection (Nomad's 0x05 connection byte).
    package typealias StreamingCallInstaller = (_ isTLS: Bool, _ channel: any Channel) throws -> Void

    private let configuration: ConnectionPreambleConfiguration
    private let installMode: ModeInstaller
    /// Installs the server of one streaming call (Nomad's 0x05 connection
    /// byte); nil refuses 0x05 as an unknown byte.
    private let installStreamingCall: StreamingCallInstaller?
    private let onRefused: ((MuxRPCError) -> Void)?
    private let insideTLS: Bool
    private var timeout: Scheduled<Void>?
    private var done = false

    package convenience init(
        configuration: ConnectionPreambleConfiguration,
        onRefused: ((MuxRPCError) -> Void)? = nil,
        installStreamingCall: StreamingCallInstaller? = nil,
        installMode: @escaping ModeInstaller
    ) {
        self.init(
            configuration: configuration, insideTLS: false, onRefused: onRefused,
            installStreamingCall: installStreamingCall, installMode: installMode
        )
    }

    private init(
        configuration: ConnectionPreambleConfiguration,
        insideTLS: Bool,
        onRefused: ((MuxRPCError) -> Void)?,
        installStreamingCall: StreamingCallInstaller?,
        installMode: @escaping ModeInstaller
    ) {
        self.configuration = configuration
        self.insideTLS = insideTLS
        self.onRefused = onRefused
        self.installStreamingCall = installStreamingCall
        self.installMode = installMode
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startTimer(context: context) }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        timeout = nil
    }

    package func channelActive(context: ChannelHandlerContext) {
        startTimer(context: context)
        context.fireChannelActive()
    }

    private func startTimer(context: ChannelHandlerContext) {
        guard timeout == nil, !done else { return }
        let limit = configuration.handshakeTimeout
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: limit) {
            let (handler, context) = loopBound.value
            handler.refuse(.handshakeTimeout(limit), context: context)
        }
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else {
            context.fireChannelRead(data)
            return
        }
        var bytes = unwrapInboundIn(data)
        guard let first = bytes.readInteger(as: UInt8.self) else { return }

        if first == ConnectionPreambleByte.tls && !insideTLS {
            guard let tlsHandler = configuration.makeTLSHandler() else {
                refuse(.tlsNotOffered, context: context)
                return
            }
            let inner = ConnectionPreambleHandler(
                configuration: configuration, insideTLS: true, onRefused: onRefused,
                installStreamingCall: installStreamingCall, installMode: installMode
            )
            handOver(context: context, remaining: bytes) {
                try context.pipeline.syncOperations.addHandlers(
                    [tlsHandler, inner],
                    position: .after(self)
                )
            }
            return
        }

        if first == ConnectionPreambleByte.nomadStreaming, let installStreamingCall {
            if configuration.requireTLS && !insideTLS {
                refuse(.tlsRequiredForStreaming, context: context)
                return
            }
            let channel = context.channel
            let isTLS = insideTLS
            handOver(context: context, remaining: bytes) {
                try installStreamingCall(isTLS, channel)
            }
            return
        }
        guard let mode = ConnectionMode(preambleByte: first) else {
            refuse(.unknownPreamble(first), context: context)
            return
        }
        if configuration.requireTLS && !insideTLS {
            refuse(.tlsRequired(mode), context: context)
            return
        }
        let channel = context.channel
        let isTLS = insideTLS
        handOver(context: context, remaining: bytes) {
            try self.installMode(mode, isTLS, channel)
        }
    }

    /// Installs the next handlers, passes them the bytes that followed the
    /// preamble, and leaves the pipeline.
    private func handOver(context: ChannelHandlerContext, remaining: ByteBuffer, install: () throws -> Void) {
        done = true
        timeout?.cancel()
        timeout = nil
        context.replaceHandler(installing: install, forwarding: remaining)
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, !done {
            refuse(.serverShuttingDown, context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            timeout?.cancel()
            onRefused?(PreambleRefusal.closedBeforePreamble.error(peer: context.channel.remoteAddress))
        }
        context.fireChannelInactive()
    }

    private func refuse(_ refusal: PreambleRefusal, context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        timeout?.cancel()
        timeout = nil
        onRefused?(refusal.error(peer: context.channel.remoteAddress))
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension ConnectionPreambleHandler: Sendable {}

extension ChannelHandlerContext {
    /// For a handler that only reads what comes first (a preamble, a stream
    /// type): installs what serves the rest, hands it the bytes already
    /// read past that point, and removes the handler. A failed install
    /// closes the channel.
    func replaceHandler(installing install: () throws -> Void, forwarding remaining: ByteBuffer) {
        do {
            try install()
        } catch {
            fireErrorCaught(error)
            close(promise: nil)
            return
        }
        if remaining.readableBytes > 0 {
            fireChannelRead(NIOAny(remaining))
        }
        pipeline.syncOperations.removeHandler(context: self, promise: nil)
    }
}
