import NIOCore

/// The streaming methods a server offers (Nomad's streaming RPC: a stream
/// that opens with a header naming the method, then carries values both
/// ways until one side closes).
///
///     var streaming = RPCStreamingRegistry()
///     streaming.register(service: "Stream", method: "Count") {
///         (inbound: RPCStreamingInbound<CountArgs>, writer: RPCStreamingWriter<CountFrame>, _) in
///         var values = inbound.makeAsyncIterator()
///         guard let args = try await values.next() else { return }
///         for n in 0..<args.count { try await writer.write(CountFrame(n: n)) }
///     }
///
/// A registry of its own, apart from ``RPCServiceRegistry``, as Nomad keeps
/// its streaming handlers apart from its net/rpc ones: the names live in
/// another namespace (a streaming method may share its name with a unary
/// one), a caller reaches them by another route (a stream that starts with
/// 0x05), and their handlers have another shape.
///
/// A handler gets the values the caller writes and a writer for its own.
/// When it returns, the server closes its side (FIN after what was written);
/// when it throws, or the stream is reset, the stream is reset and the
/// handler's task cancelled. Errors a caller should read belong in the
/// values (Nomad's frames carry an `Error` field for that). Registering a
/// name twice replaces the first handler.
public struct RPCStreamingRegistry: Sendable {
    private var methods: [String: RPCStreamingMethod] = [:]

    /// An empty registry.
    public init() {}

    /// Registers `handler` as the streaming method `service`.`method`.
    public mutating func register<Inbound: Decodable & Sendable, Outbound: Encodable & Sendable>(
        service: String,
        method: String,
        receiving: Inbound.Type = Inbound.self,
        sending: Outbound.Type = Outbound.self,
        _ handler: @escaping @Sendable (RPCStreamingInbound<Inbound>, RPCStreamingWriter<Outbound>, RPCStreamingContext) async throws -> Void
    ) {
        precondition(!service.isEmpty && !service.contains(".") && !method.isEmpty && !method.contains("."),
                     "service and method names must be non-empty and contain no dot")
        methods[service + "." + method] = RPCStreamingMethod { values, outbound, context, configuration, allocator in
            try await handler(
                RPCStreamingInbound(values: values, decoder: configuration.decoder),
                RPCStreamingWriter(outbound: outbound, encoder: configuration.encoder, allocator: allocator, eventLoop: context.eventLoop),
                context
            )
        }
    }

    /// The registered "Service.Method" names, sorted.
    public var methodNames: [String] { methods.keys.sorted() }

    /// Whether nothing is registered.
    public var isEmpty: Bool { methods.isEmpty }

    /// The handler for `method`, if any.
    func lookup(_ method: String) -> RPCStreamingMethod? { methods[method] }

    /// Whether `method` is served.
    package func contains(_ method: String) -> Bool { methods[method] != nil }
}

/// One streaming method, type-erased: runs the handler on the stream's
/// values and writer.
struct RPCStreamingMethod: Sendable {
    let run: @Sendable (
        _ values: NIOAsyncChannelInboundStream<ByteBuffer>,
        _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        _ context: RPCStreamingContext,
        _ configuration: RPCStreamingConfiguration,
        _ allocator: ByteBufferAllocator
    ) async throws -> Void
}
