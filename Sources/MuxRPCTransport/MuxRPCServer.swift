public import MsgpackRPC
public import NIOCore
import NIOPosix
import Synchronization
public import Yamux

/// An RPC server as Consul's and Nomad's RPC ports are: one TCP port that
/// serves net/rpc over msgpack in every mode a client asks for with its
/// first byte (plain, Consul multiplex, Nomad multiplex; with TLS first when
/// configured).
///
///     var services = RPCServiceRegistry()
///     services.register(service: "Echo", method: "Echo") { (args: EchoArgs, _) in EchoReply(msg: args.msg) }
///     let server = MuxRPCServer(services: services)
///     let address = try await server.start()
///     …
///     await server.shutdown()  // graceful
///
/// Or run it in a `ServiceGroup`: ``run()`` starts it if need be, serves,
/// and shuts it down gracefully with the group.
public final class MuxRPCServer: Sendable {
    /// How the server listens and serves.
    public struct Configuration: Sendable {
        /// Address to listen on. Default 127.0.0.1.
        public var host: String
        /// Port to listen on; 0 picks a free one. Default 0.
        public var port: Int
        /// TLS, and how long a client has to send its preamble.
        public var preamble: ConnectionPreambleConfiguration
        /// How each RPC stream is served (limits, codec, where handlers run).
        public var rpc: RPCServer.Configuration
        /// Yamux sessions in the multiplexed modes (windows, keepalive, limits).
        public var yamux: YamuxConfiguration
        /// Most connections served at once; beyond it a new connection is
        /// closed at once. Default 10,000.
        public var maxConnections: Int
        /// How long a graceful shutdown lets calls in flight finish before
        /// closing what is left. Default 10 s.
        public var shutdownGracePeriod: Duration
        /// How the server's event loops poll after a connection's traffic
        /// instead of sleeping at once (see ``BusyPolling``). Default: a
        /// ``BusyPollers`` of this configuration's own, adaptive, which
        /// spins only while traffic is dense; give the servers and
        /// connections that share an event loop group one object, so that
        /// each loop has one poller; nil turns busy polling off.
        public var busyPolling: BusyPollers?
        /// How much each connection reads at a time, at most. Default
        /// ``SocketReads/default`` (256 KiB).
        public var socketReads: SocketReads
        /// How streaming calls are served: limits on the values they carry
        /// and how many wait unread. Matters only with streaming methods
        /// (``MuxRPCServer/init(services:streaming:configuration:group:)``).
        public var streaming: RPCStreamingConfiguration = .init()
        /// How the server's own calls to its clients are made, over the
        /// Nomad-mode sessions they dialled (see ``MuxRPCPeer``).
        public var peerCalls: RPCClient.Configuration = .init()
        /// Hears of each Nomad-mode session as it starts, with the
        /// ``MuxRPCPeer`` that calls the client behind it; the peer's calls
        /// fail once the session has ended (``MuxRPCPeer/isClosed``). Runs on
        /// the connection's event loop: do not block in it. Default nil.
        /// A handler reaches its own session's peer as `context.peer`.
        public var onPeerConnected: (@Sendable (MuxRPCPeer) -> Void)?

        /// A configuration with every default but those given: loopback
        /// only, on a free port, no TLS.
        public init(
            host: String = "127.0.0.1",
            port: Int = 0,
            preamble: ConnectionPreambleConfiguration = .init(),
            rpc: RPCServer.Configuration = .init(),
            yamux: YamuxConfiguration = .init(),
            maxConnections: Int = 10_000,
            shutdownGracePeriod: Duration = .seconds(10),
            busyPolling: BusyPollers? = BusyPollers(.adaptive),
            socketReads: SocketReads = .default
        ) {
            self.host = host
            self.port = port
            self.preamble = preamble
            self.rpc = rpc
            self.yamux = yamux
            self.maxConnections = maxConnections
            self.shutdownGracePeriod = shutdownGracePeriod
            self.busyPolling = busyPolling
            self.socketReads = socketReads
        }
    }

    /// The settings the server was made with.
    public let configuration: Configuration
    private let rpcServer: RPCServer
    /// The streaming methods; nil when there are none (0x05 is refused).
    private let streamingServer: StreamingServer?
    private let group: any EventLoopGroup
    private let state = Mutex(State())
    /// The yamux sessions and streams of every connection, counted while alive.
    private let liveObjects = YamuxLiveObjects()

    private struct State {
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var shuttingDown = false
        var statistics = Statistics()
    }

    /// What the server has done since it started.
    public struct Statistics: Sendable, Hashable {
        /// TCP connections admitted.
        public var connectionsAccepted = 0
        /// TCP connections closed at once: over ``Configuration/maxConnections``
        /// or during shutdown.
        public var connectionsRefused = 0
        /// Yamux streams accepted, over all sessions.
        public var streamsAccepted = 0
        /// Connections still open when a shutdown's grace period ran out,
        /// and closed then with whatever they had in flight.
        public var connectionsClosedAtGracePeriodEnd = 0
        /// Yamux sessions whose memory is still held: it comes back down
        /// as sessions end. A count that stays up after its connections
        /// closed is a leak.
        public var sessionsAlive = 0
        /// Yamux streams whose memory is still held, over all sessions:
        /// open streams, streams waiting to be accepted, and streams that
        /// ended a moment ago and are being torn down. Back at zero once
        /// every session has ended.
        public var streamsAlive = 0
        /// The most bytes any one session has buffered at once: received
        /// and not yet served, or written and not yet sent (see
        /// `YamuxSessionStatistics.bufferedBytes`).
        public var maxSessionBufferedBytes = 0
    }

    /// A server for `services`. `group` defaults to NIO's shared
    /// `MultiThreadedEventLoopGroup.singleton`.
    public convenience init(
        services: RPCServiceRegistry,
        configuration: Configuration = .init(),
        group: (any EventLoopGroup)? = nil
    ) {
        self.init(services: services, streaming: RPCStreamingRegistry(), configuration: configuration, group: group)
    }

    /// A server for `services` and the streaming methods in `streaming`.
    ///
    /// Streaming calls are served as Nomad serves them: in Nomad's
    /// multiplexed mode (0x06) on each yamux stream that starts with 0x05,
    /// and on a connection whose first byte is 0x05 (one call on the whole
    /// connection). With no streaming methods, both are refused: the stream
    /// or the connection is closed. Consul's mode (0x04), where every stream
    /// is net/rpc, carries no streaming calls.
    public init(
        services: RPCServiceRegistry,
        streaming: RPCStreamingRegistry,
        configuration: Configuration = .init(),
        group: (any EventLoopGroup)? = nil
    ) {
        self.configuration = configuration
        self.rpcServer = RPCServer(registry: services, configuration: configuration.rpc)
        self.streamingServer = streaming.isEmpty ? nil : StreamingServer(registry: streaming, configuration: configuration.streaming)
        self.group = group ?? MultiThreadedEventLoopGroup.singleton
    }

    /// The address the server listens on, once started.
    public var localAddress: SocketAddress? {
        state.withLock { $0.listener?.localAddress }
    }

    /// Connections being served now.
    public var connectionCount: Int {
        state.withLock { $0.connections.count }
    }

    /// Counts of connections and streams since the server started.
    public var statistics: Statistics {
        var statistics = state.withLock { $0.statistics }
        statistics.sessionsAlive = liveObjects.sessionCount
        statistics.streamsAlive = liveObjects.streamCount
        statistics.maxSessionBufferedBytes = liveObjects.maxSessionBufferedBytes
        return statistics
    }

    /// Starts listening and returns the bound address.
    ///
    /// - Throws: a `YamuxError` or a ``MuxRPCError`` with code
    ///   `.invalidConfiguration` for settings that cannot work (nothing is
    ///   bound then), or NIO's error when the address cannot be bound.
    @discardableResult
    public func start() async throws -> SocketAddress {
        try configuration.yamux.validate()
        try configuration.busyPolling?.validate()
        try configuration.socketReads.validate()
        do {
            try configuration.streaming.validate()
        } catch {
            throw MuxRPCError.invalidConfiguration("server", error.message)
        }
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: configuration.socketReads.allocator)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.accept(channel)
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        state.withLock { $0.listener = listener }
        return listener.localAddress!
    }

    /// Where ``run()`` found the server.
    enum StartState { case started, shutDown }

    /// Starts the server unless it listens already or has shut down.
    func startUnlessStarted() async throws -> StartState {
        let (listening, shutDown) = state.withLock { ($0.listener != nil, $0.shuttingDown) }
        if shutDown { return .shutDown }
        if !listening { try await start() }
        return .started
    }

    /// Runs on the new connection's event loop: admits it (or closes it when
    /// over the limit or shutting down) and puts the preamble handler first.
    private func accept(_ channel: any Channel) throws {
        let key = ObjectIdentifier(channel)
        let admitted = state.withLock { state -> Bool in
            guard !state.shuttingDown, state.connections.count < configuration.maxConnections else {
                state.statistics.connectionsRefused += 1
                return false
            }
            state.statistics.connectionsAccepted += 1
            state.connections[key] = channel
            return true
        }
        guard admitted else {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [self] _ in
            _ = state.withLock { $0.connections.removeValue(forKey: key) }
        }
        let streamingServer = self.streamingServer
        let installStreamingCall: ConnectionPreambleHandler.StreamingCallInstaller? = streamingServer.map { streaming in
            { _, channel in
                // The call's values end when the client shuts down its
                // side, while the server may go on writing.
                try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
                try streaming.install(on: channel, abort: StreamingServer.closeConnection)
            }
        }
        let handler = ConnectionPreambleHandler(
            configuration: configuration.preamble, installStreamingCall: installStreamingCall
        ) { [self] mode, _, channel in
            try install(mode: mode, on: channel)
        }
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.pipeline.syncOperations.addBusyPolling(configuration.busyPolling)
    }

    /// Appends what serves `mode` on a connection whose preamble was read:
    /// the RPC server itself (plain), or a yamux session whose every inbound
    /// stream gets one (Consul), after its stream-type byte (Nomad).
    private func install(mode: ConnectionMode, on channel: any Channel) throws {
        switch mode {
        case .plain:
            try channel.pipeline.syncOperations.addMsgpackRPCServer(rpcServer)
        case .consulMultiplex, .nomadMultiplex:
            let session = try YamuxSession.configure(
                on: channel,
                role: .server,
                configuration: configuration.yamux,
                liveObjects: liveObjects
            )
            guard mode == .nomadMultiplex else {
                Task { [self] in
                    await serveStreams(of: session)
                }
                return
            }
            let peer = MuxRPCPeer(session: session, rpc: configuration.peerCalls, streaming: configuration.streaming)
            configuration.onPeerConnected?(peer)
            let (rpcServer, streamingServer) = (self.rpcServer, self.streamingServer)
            Task { [self] in
                await NomadSessionStreams.serveInbound(
                    of: session, rpcServer: rpcServer, streaming: streamingServer, peer: peer, resetsUnknownStreams: false
                ) { [self] in
                    state.withLock { $0.statistics.streamsAccepted += 1 }
                }
            }
        }
    }

    /// Accepts a Consul-mode session's streams until it ends, each served
    /// by its own pipeline on the session's event loop.
    private func serveStreams(of session: YamuxSession) async {
        let rpcServer = self.rpcServer
        do {
            for try await stream in session.inboundStreams {
                state.withLock { $0.statistics.streamsAccepted += 1 }
                try? await stream.configurePipeline { channel in
                    try channel.pipeline.syncOperations.addMsgpackRPCServer(rpcServer)
                }
            }
        } catch {
            // The session ended with an error; its connection is closing.
        }
    }

    /// Shuts down gracefully: stops accepting, asks every connection to
    /// finish (plain connections finish the call in progress; sessions send
    /// GoAway and let their streams finish), waits up to the grace period,
    /// then closes whatever is left.
    public func shutdown() async {
        await shutdown(gracePeriod: configuration.shutdownGracePeriod)
    }

    /// ``shutdown()`` with `gracePeriod` in place of the configured one.
    func shutdown(gracePeriod: Duration) async {
        let (listener, connections) = state.withLock { state in
            state.shuttingDown = true
            // Every connection not yet closed: a connection leaves the map as
            // it closes (also when its event loop group shuts down, so none
            // of these waits on a dead loop). That includes one accepted but
            // not yet active, which is not closed either: left out, it would
            // stay open after the shutdown, as one did under a loaded test run.
            return (state.listener, Array(state.connections.values))
        }
        if let listener, listener.isActive { try? await listener.close() }
        guard !connections.isEmpty else { return }
        for connection in connections {
            connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        let closed = EventLoopFuture.andAllComplete(connections.map(\.closeFuture), on: group.any())
        let graceful = await closed.result(before: .now() + TimeAmount(gracePeriod)) != nil
        if !graceful {
            let remaining = state.withLock { state in
                state.statistics.connectionsClosedAtGracePeriodEnd += state.connections.count
                return Array(state.connections.values)
            }
            for connection in remaining {
                connection.close(promise: nil)
            }
            try? await EventLoopFuture.andAllComplete(remaining.map(\.closeFuture), on: group.any()).get()
        }
    }
}
