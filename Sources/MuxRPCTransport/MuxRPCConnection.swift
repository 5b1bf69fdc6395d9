public import MsgpackRPC
public import NIOCore
import NIOPosix
#if TLS
public import NIOSSL
#endif
public import Yamux

/// A client's connection to one RPC server, in the mode it chose with its
/// preamble, handing out RPC streams: in the multiplexed modes each stream
/// is a yamux stream of one session (Nomad's streams start with 0x01); in
/// plain mode each stream is its own TCP connection, since a plain
/// connection carries exactly one.
///
///     let connection = try await MuxRPCConnection.connect(to: address)
///     let stream = try await connection.openStream()
///     let reply = try await stream.call("Echo.Echo", args, returning: EchoReply.self)
///
/// A stream carries one call at a time; open several for concurrency. The
/// connection pool (built on this) keeps and reuses them.
public final class MuxRPCConnection: Sendable {
    /// How to reach the server.
    public struct Configuration: Sendable {
        /// The preamble mode. Default: Consul's multiplexed mode.
        public var mode: ConnectionMode
        #if TLS
        /// TLS, sent as Consul does (0x03, handshake, mode byte inside); `nil` for none.
        /// TLS wraps whichever ``mode`` is chosen.
        public var tls: NIOSSLContext?
        /// The name the server's certificate must carry, with TLS.
        public var serverHostname: String?
        #endif
        /// The yamux session, in the multiplexed modes.
        public var yamux: YamuxConfiguration
        /// Each stream's RPC client.
        public var rpc: RPCClient.Configuration
        /// How long a TCP connect may take. Default 10 seconds (Consul's dial timeout).
        public var connectTimeout: Duration
        /// How the connection's event loop polls after its traffic instead
        /// of sleeping at once (see ``BusyPolling``). Default: a
        /// ``BusyPollers`` of this configuration's own, adaptive, which
        /// spins only while traffic is dense, and which every connection
        /// made with this configuration (a pool's, say) shares; give the
        /// servers and connections that share an event loop group one
        /// object, so that each loop has one poller; nil turns busy polling off.
        public var busyPolling: BusyPollers?
        /// How much the connection reads at a time, at most. Default
        /// ``SocketReads/default`` (256 KiB).
        public var socketReads: SocketReads
        /// Streaming calls: limits on the values received and how many wait
        /// unread (see ``MuxRPCConnection/withStreamingCall(_:sending:receiving:_:)``).
        public var streaming: RPCStreamingConfiguration = .init()
        /// The net/rpc methods the server may call on this client over the
        /// session the client dialled, as Nomad's servers call their nodes
        /// (each such stream starts with 0x01). Nomad's mode only. Default
        /// nil: the client serves nothing. In Nomad's mode a connection then
        /// resets each stream the server opens, so the server's call fails
        /// at once rather than waiting for an answer that will not come.
        /// The session's limits (accept backlog, concurrent streams, windows)
        /// bound what the server may open.
        public var services: RPCServiceRegistry?
        /// The streaming methods the server may call on this client (streams
        /// starting with 0x05), as ``services``; nil refuses them.
        public var streamingServices: RPCStreamingRegistry?
        /// How the server's calls to this client are served (limits, codec,
        /// where handlers run), with ``services``; the values of its
        /// streaming calls are bounded by ``streaming``.
        public var serving: RPCServer.Configuration = .init()

        /// A configuration with every default but those given; no TLS.
        public init(
            mode: ConnectionMode = .consulMultiplex,
            yamux: YamuxConfiguration = .init(),
            rpc: RPCClient.Configuration = .init(),
            connectTimeout: Duration = .seconds(10),
            busyPolling: BusyPollers? = BusyPollers(.adaptive),
            socketReads: SocketReads = .default
        ) {
            self.mode = mode
            self.yamux = yamux
            self.rpc = rpc
            self.connectTimeout = connectTimeout
            self.busyPolling = busyPolling
            self.socketReads = socketReads
        }
    }

    /// The server's address.
    public let address: SocketAddress
    /// The settings the connection was made with.
    public let configuration: Configuration
    let group: any EventLoopGroup
    /// The yamux session, in the multiplexed modes; nil in plain mode.
    public let session: YamuxSession?

    private init(address: SocketAddress, configuration: Configuration, group: any EventLoopGroup, session: YamuxSession?) {
        self.address = address
        self.configuration = configuration
        self.group = group
        self.session = session
    }

    /// Connects to `address` and sends the preamble. In the multiplexed
    /// modes the yamux session starts at once.
    ///
    /// - Throws: a ``MuxRPCError``: ``MuxRPCError/Code/connectionRefused``,
    ///   ``MuxRPCError/Code/unreachable``, ``MuxRPCError/Code/connectTimeout``
    ///   or ``MuxRPCError/Code/connectFailed`` when the TCP connection could
    ///   not be made (NIO's error is the `cause`),
    ///   ``MuxRPCError/Code/invalidConfiguration`` for settings that cannot
    ///   work; a `YamuxError` with code `.invalidConfiguration` for yamux
    ///   settings that cannot work.
    public static func connect(
        to address: SocketAddress,
        configuration: Configuration = .init(),
        group: (any EventLoopGroup)? = nil
    ) async throws -> MuxRPCConnection {
        let group = group ?? MultiThreadedEventLoopGroup.singleton
        try configuration.yamux.validate()
        try configuration.busyPolling?.validate()
        try configuration.socketReads.validate()
        guard configuration.mode != .plain else {
            return MuxRPCConnection(address: address, configuration: configuration, group: group, session: nil)
        }
        let channel = try await dial(address, configuration: configuration, group: group)
        let session = try await channel.eventLoop.submit {
            try configuration.sendPreamble(on: channel, mode: configuration.mode)
            return try YamuxSession.configure(on: channel, role: .client, configuration: configuration.yamux)
        }.get()
        if configuration.mode == .nomadMultiplex {
            serveInbound(of: session, configuration: configuration)
        }
        return MuxRPCConnection(address: address, configuration: configuration, group: group, session: session)
    }

    /// Serves the server's calls to this client on a Nomad-mode session
    /// (or resets them when the client serves nothing) until it ends.
    private static func serveInbound(of session: YamuxSession, configuration: Configuration) {
        let rpcServer = configuration.services.map { RPCServer(registry: $0, configuration: configuration.serving) }
        let streaming = configuration.streamingServices.map { StreamingServer(registry: $0, configuration: configuration.streaming) }
        let peer = MuxRPCPeer(session: session, rpc: configuration.rpc, streaming: configuration.streaming)
        Task {
            await NomadSessionStreams.serveInbound(
                of: session, rpcServer: rpcServer, streaming: streaming, peer: peer, resetsUnknownStreams: true
            )
        }
    }

    /// A TCP connection to `address`; a failure is a ``MuxRPCError`` that
    /// says what happened in plain words.
    static func dial(
        _ address: SocketAddress,
        configuration: Configuration,
        group: any EventLoopGroup
    ) async throws(MuxRPCError) -> any Channel {
        do {
            return try await ClientBootstrap(group: group)
                .connectTimeout(TimeAmount(configuration.connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.recvAllocator, value: configuration.socketReads.allocator)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addBusyPolling(configuration.busyPolling)
                    }
                }
                .connect(to: address).get()
        } catch {
            throw MuxRPCError.connectFailure(error, to: address, timeout: configuration.connectTimeout)
        }
    }

    /// Opens a new RPC stream.
    ///
    /// - Throws: in plain mode, where each stream is a TCP connection of its
    ///   own, what ``connect(to:configuration:group:)-(SocketAddress,_,_)`` throws for the
    ///   connection; in the multiplexed modes a `YamuxError` (the session is
    ///   closed, has sent or received GoAway, or has too many streams).
    public func openStream() async throws -> RPCClient {
        let configuration = self.configuration
        guard let session else {
            let channel = try await Self.dial(address, configuration: configuration, group: group)
            return try await channel.eventLoop.submit {
                try configuration.sendPreamble(on: channel, mode: .plain)
                return try channel.pipeline.syncOperations.addMsgpackRPCClient(configuration: configuration.rpc)
            }.get()
        }
        if configuration.mode == .nomadMultiplex {
            return try await NomadSessionStreams.openRPC(on: session, configuration: configuration.rpc)
        }
        let stream = try await session.openStream()
        return try await stream.configurePipeline { channel in
            try channel.pipeline.syncOperations.addMsgpackRPCClient(configuration: configuration.rpc)
        }
    }

    /// Closes the session (multiplexed modes); plain streams close one by one.
    public func close() async {
        await session?.close()
    }
}

extension MuxRPCConnection.Configuration {
    #if TLS
    /// A connection in `mode` inside TLS: 0x03, the handshake, then the
    /// mode's byte, as Consul's clients do.
    public init(mode: ConnectionMode = .consulMultiplex, tls: NIOSSLContext?, serverHostname: String? = nil) {
        self.init(mode: mode)
        self.tls = tls
        self.serverHostname = serverHostname
    }
    #endif

    /// The connection's first bytes: the mode's preamble, inside TLS when
    /// TLS is configured.
    func sendPreamble(on channel: any Channel, mode: ConnectionMode) throws {
        try sendPreamble(on: channel, byte: mode.preambleByte)
    }

    /// The connection's first bytes for `byte`, inside TLS when configured.
    func sendPreamble(on channel: any Channel, byte: UInt8) throws {
        #if TLS
        try ConnectionPreambleClient.configure(channel, byte: byte, tls: tls, serverHostname: serverHostname)
        #else
        try ConnectionPreambleClient.configure(channel, byte: byte)
        #endif
    }
}

extension MuxRPCConnection {
    /// Connects to `endpoint` (`"10.0.0.5:8300"`, or a DNS name and port)
    /// and sends the preamble; a DNS name is resolved first, and the first
    /// address it yields is dialled.
    ///
    /// - Throws: ``MuxRPCError`` with code ``MuxRPCError/Code/invalidConfiguration``
    ///   for an endpoint that is not `host:port`, ``MuxRPCError/Code/unreachable``
    ///   for a name that does not resolve, and what ``connect(to:configuration:group:)-(SocketAddress,_,_)``
    ///   throws for the address.
    public static func connect(
        to endpoint: Endpoint,
        configuration: Configuration = .init(),
        group: (any EventLoopGroup)? = nil
    ) async throws -> MuxRPCConnection {
        if let problem = endpoint.problem { throw MuxRPCError.invalidConfiguration("connection", problem) }
        guard let address = try await endpoint.resolvedAddresses().first else {
            throw MuxRPCError(code: .unreachable, message: "could not resolve \(endpoint.host)")
        }
        return try await connect(to: address, configuration: configuration, group: group)
    }
}
