public import MessagePack
public import NIOCore

/// The services and settings a server serves every stream with. Install it on
/// each RPC stream's channel with
/// ``NIOCore/ChannelPipeline/SynchronousOperations/addMsgpackRPCServer(_:)``.
///
/// Each stream is served as Go's `rpc.ServeCodec` serves a codec, except that
/// requests on one stream run one after another (net/rpc clients such as
/// Consul's send one at a time; a pipelining Go `rpc.Client` still gets every
/// reply, in order). Streams run concurrently.
public struct RPCServer: Sendable {
    /// The services offered.
    public var registry: RPCServiceRegistry
    /// How streams are served.
    public var configuration: Configuration

    /// Settings for the server side of a stream.
    public struct Configuration: Sendable {
        /// Bounds on every value a client sends.
        public var limits: MessagePackLimits
        /// How replies are written. Default: Go-compatible.
        public var encoder: MessagePackEncoder
        /// How arguments are read.
        public var decoder: MessagePackDecoder
        /// Run handlers on the stream's event loop (through an
        /// ``EventLoopTaskExecutor``), so a request is read, handled and
        /// answered without thread hops. Default true. Turn it off when
        /// handlers compute for long or block: they would stall the loop.
        public var runsHandlersOnEventLoop: Bool
        /// Interceptors around every handler, each on the calls in its scope;
        /// the first runs outermost. Default none.
        public var interceptors: [RPCScopedInterceptor<any RPCServerInterceptor>]
        /// Limit: once the first bytes of a request header or body have
        /// arrived, the rest must follow within this time, or the stream is
        /// closed. A client that starts a request and never finishes it would
        /// otherwise hold what it sent for as long as it keeps the stream
        /// open. Time between requests is not limited. Nil waits forever, as
        /// Go's server does. Default 60 s.
        public var partialRequestTimeout: Duration?

        /// Settings with every value given. Without a `decoder`, arguments
        /// are read by a `MessagePackDecoder` that enforces `limits`.
        public init(
            limits: MessagePackLimits = .default,
            encoder: MessagePackEncoder = MessagePackEncoder(),
            decoder: MessagePackDecoder? = nil,
            runsHandlersOnEventLoop: Bool = true,
            interceptors: [RPCScopedInterceptor<any RPCServerInterceptor>] = [],
            partialRequestTimeout: Duration? = .seconds(60)
        ) {
            self.partialRequestTimeout = partialRequestTimeout
            self.limits = limits
            self.encoder = encoder
            self.decoder = decoder ?? MessagePackDecoder(limits: limits)
            self.runsHandlersOnEventLoop = runsHandlersOnEventLoop
            self.interceptors = interceptors
        }
    }

    /// A server of `registry`'s services, served with `configuration`.
    public init(registry: RPCServiceRegistry, configuration: Configuration = .init()) {
        self.registry = registry
        self.configuration = configuration
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// Adds the handlers that serve `server`'s services on this channel's byte
    /// stream: the framing decoder and the per-stream server handler. Call on
    /// the channel's event loop, e.g. in a bootstrap's child channel initializer.
    public func addMsgpackRPCServer(_ server: RPCServer) throws {
        try addMsgpackRPCServer(server, connectionContext: nil)
    }

    /// As ``addMsgpackRPCServer(_:)``, giving every handler on this channel
    /// `connectionContext` in its ``RPCServerContext``.
    package func addMsgpackRPCServer(_ server: RPCServer, connectionContext: (any Sendable)?) throws {
        try addHandler(
            RPCMessageFramer(
                limits: server.configuration.limits,
                partialMessageTimeout: server.configuration.partialRequestTimeout.map(TimeAmount.init)
            )
        )
        try addHandler(RPCServerHandler(server: server, connectionContext: connectionContext))
    }
}
