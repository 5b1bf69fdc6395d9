public import MessagePack

/// Settings for streaming calls (Nomad's streaming RPC), on either side.
///
/// After the header and its ack, a streaming call carries bare msgpack values
/// both ways with no length prefix. Each value is checked against
/// ``limits`` and ``maxValueSize`` as its headers arrive; the values received
/// and not yet taken by the handler (or the caller) are held at most
/// ``maxBufferedInboundValues`` at a time, after which reading stops and the
/// sender is held back by the transport's flow control (a yamux stream's
/// window).
public struct RPCStreamingConfiguration: Sendable {
    /// Bounds on every value received (depth, lengths, counts).
    public var limits: MessagePackLimits
    /// Limit: the largest value received, in encoded bytes; a value whose
    /// headers claim more fails the call with ``RPCError`` `.limitExceeded`
    /// the moment those headers arrive. Default 16 MiB, which holds Nomad's
    /// largest frames (log and file chunks of 64 KiB) many times over.
    public var maxValueSize: Int
    /// Limit: values received and not yet taken by the handler or the
    /// caller; beyond it the stream stops reading until some are taken.
    /// Default 16.
    public var maxBufferedInboundValues: Int
    /// How values are written. Default: Go-compatible (go-msgpack as Nomad
    /// configures it reads it).
    public var encoder: MessagePackEncoder
    /// How values are read.
    public var decoder: MessagePackDecoder
    /// Run a server's streaming handlers on their stream's event loop
    /// (through an ``EventLoopTaskExecutor``) instead of Swift's global
    /// executor. Default false: a handler that writes values without ever
    /// waiting would hold its loop, and every stream and connection on it,
    /// until its stream's window and write buffer are spent. Each value
    /// written goes through the stream's event loop either way, so that a
    /// writer waits as soon as its stream can take no more.
    public var runsHandlersOnEventLoop: Bool

    /// Settings with every value given; without a `decoder`, values are read
    /// by a `MessagePackDecoder` that enforces `limits`.
    public init(
        limits: MessagePackLimits = .default,
        maxValueSize: Int = 16 << 20,
        maxBufferedInboundValues: Int = 16,
        encoder: MessagePackEncoder = MessagePackEncoder(),
        decoder: MessagePackDecoder? = nil,
        runsHandlersOnEventLoop: Bool = false
    ) {
        self.runsHandlersOnEventLoop = runsHandlersOnEventLoop
        self.limits = limits
        self.maxValueSize = maxValueSize
        self.maxBufferedInboundValues = maxBufferedInboundValues
        self.encoder = encoder
        self.decoder = decoder ?? MessagePackDecoder(limits: limits)
    }

    /// Throws ``RPCError`` `.limitExceeded` for settings that cannot work.
    package func validate() throws(RPCError) {
        guard maxValueSize >= 1 else {
            throw RPCError(code: .limitExceeded, message: "RPCStreamingConfiguration.maxValueSize must be at least 1", isStreamUsable: false)
        }
        guard maxBufferedInboundValues >= 1 else {
            throw RPCError(code: .limitExceeded, message: "RPCStreamingConfiguration.maxBufferedInboundValues must be at least 1", isStreamUsable: false)
        }
    }
}
