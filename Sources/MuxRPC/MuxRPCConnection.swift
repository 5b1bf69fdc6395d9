public import MsgpackRPC
public import NIOCore
import NIOPosix
public import NIOSSL
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
        /// TLS, sent as Consul does (0x03, handshake, mode byte inside); `nil` for none.
        public var tls: NIOSSLContext?
        /// The name the server's certificate must carry, with TLS.
        public var serverHostname: String?
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

        public init(
            mode: ConnectionMode = .consulMultiplex,
            tls: NIOSSLContext? = nil,
            serverHostname: String? = nil,
            yamux: YamuxConfiguration = .init(),
            rpc: RPCClient.Configuration = .init(),
            connectTimeout: Duration = .seconds(10),
            busyPolling: BusyPollers? = BusyPollers(.adaptive),
            socketReads: SocketReads = .default
        ) {
            self.mode = mode
            self.tls = tls
            self.serverHostname = serverHostname
            self.yamux = yamux
            self.rpc = rpc
            self.connectTimeout = connectTimeout
            self.busyPolling = busyPolling
            self.socketReads = socketReads
        }
    }

    public let address: SocketAddress
    public let configuration: Configuration
    private let group: any EventLoopGroup
    /// The session, in the multiplexed modes.
    public let session: YamuxSession?

    private init(address: SocketAddress, configuration: Configuration, group: any EventLoopGroup, session: YamuxSession?) {
        self.address = address
        self.configuration = configuration
        self.group = group
        self.session = session
    }

    /// Connects to `address` and sends the preamble. In the multiplexed
    /// modes the yamux session starts at once.
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
            try ConnectionPreambleClient.configure(
                channel, mode: configuration.mode, tls: configuration.tls, serverHostname: configuration.serverHostname
            )
            return try YamuxSession.configure(on: channel, role: .client, configuration: configuration.yamux)
        }.get()
        return MuxRPCConnection(address: address, configuration: configuration, group: group, session: session)
    }

    private static func dial(
        _ address: SocketAddress,
        configuration: Configuration,
        group: any EventLoopGroup
    ) async throws -> any Channel {
        try await ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: configuration.socketReads.allocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addBusyPolling(configuration.busyPolling)
                }
            }
            .connect(to: address).get()
    }

    /// Opens a new RPC stream.
    public func openStream() async throws -> RPCClient {
        let configuration = self.configuration
        guard let session else {
            let channel = try await Self.dial(address, configuration: configuration, group: group)
            return try await channel.eventLoop.submit {
                try ConnectionPreambleClient.configure(
                    channel, mode: .plain, tls: configuration.tls, serverHostname: configuration.serverHostname
                )
                return try channel.pipeline.syncOperations.addMsgpackRPCClient(configuration: configuration.rpc)
            }.get()
        }
        let stream = try await session.openStream()
        let nomad = configuration.mode == .nomadMultiplex
        return try await stream.configurePipeline { channel in
            if nomad {
                channel.writeAndFlush(ByteBuffer(integer: NomadStreamType.rpc), promise: nil)
            }
            return try channel.pipeline.syncOperations.addMsgpackRPCClient(configuration: configuration.rpc)
        }
    }

    /// Closes the session (multiplexed modes); plain streams close one by one.
    public func close() async {
        await session?.close()
    }
}
