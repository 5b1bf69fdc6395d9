import Synchronization
import MessagePack
public import NIOCore

/// The values a streaming call receives, decoded as `Value`, in order.
///
/// Iterate it once (it is the stream's one reader). It ends (`nil`) when the
/// peer closes its side, and throws ``RPCError`` when the call fails: a value
/// that does not decode as `Value` (`.decodingFailed`), one over the limits
/// (`.limitExceeded`), bytes that are not msgpack or a stream that ends inside
/// a value (`.protocolViolation`), a reset or a dead connection
/// (`.transportFailure`, `.connectionClosed`).
///
/// Values are read as they are asked for: while none is asked for, at most
/// ``RPCStreamingConfiguration/maxBufferedInboundValues`` wait here, and then
/// the stream stops reading, so the sender is held back by flow control (a
/// yamux stream's window) and memory stays bounded.
public struct RPCStreamingInbound<Value: Decodable & Sendable>: AsyncSequence, Sendable {
    /// Each element is one value the peer wrote.
    public typealias Element = Value
    let values: NIOAsyncChannelInboundStream<ByteBuffer>
    let decoder: MessagePackDecoder

    init(values: NIOAsyncChannelInboundStream<ByteBuffer>, decoder: MessagePackDecoder) {
        self.values = values
        self.decoder = decoder
    }

    /// Reads and decodes the values one by one.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
        let decoder: MessagePackDecoder

        /// The next value; nil once the peer has closed its side.
        public mutating func next() async throws -> Value? {
            let buffer: ByteBuffer?
            do {
                buffer = try await base.next()
            } catch {
                throw RPCStreamingFailure.inbound(error)
            }
            guard let buffer else { return nil }
            do {
                return try decoder.decode(Value.self, fromScanned: buffer)
            } catch {
                throw RPCError(
                    code: .decodingFailed, message: "a streamed value does not decode as \(Value.self): \(error)",
                    isStreamUsable: false, cause: error
                )
            }
        }
    }

    /// The one iterator of this sequence.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: values.makeAsyncIterator(), decoder: decoder)
    }
}

/// Writes a streaming call's values, encoded from `Value`, with backpressure.
///
/// ``write(_:)`` suspends while the stream cannot take more: a yamux
/// stream's window is spent (the peer has not read what it was sent) or the
/// stream's write buffer is over its watermark. A slow reader so holds back
/// only its own stream, and what is buffered for it stays within the
/// stream's window and watermark.
public struct RPCStreamingWriter<Value: Encodable & Sendable>: Sendable {
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let encoder: MessagePackEncoder
    let allocator: ByteBufferAllocator
    /// An `EventLoopTaskExecutor` of the stream's loop (stored untyped: the
    /// type needs a newer OS on Apple platforms).
    let executor: (any AnyObject & Sendable)?
    /// What was written from the caller's executor since a write last went
    /// through the stream's loop, in bytes plus ``perValueCost`` a value.
    let unchecked = UncheckedBytes()

    /// How many bytes a writer may hand over from its own executor before
    /// one write goes through the stream's event loop.
    ///
    /// A write from another thread reaches the channel a little later, so a
    /// fast writer could queue values before the loop tells it the stream is
    /// full; a write made on the loop learns that at once. Going through the
    /// loop for every value costs two thread hops per value; going through
    /// it once per this many bytes bounds what a writer can queue past the
    /// stream's watermark to this much, at a hop per this many bytes.
    static var bytesBetweenLoopWrites: Int { 16 * 1024 }
    /// What each value counts for beyond its bytes: a buffer of its own, its
    /// allocation and its place in the writer's queue. Small values so go
    /// through the loop every few dozen, which bounds them by count too.
    static var perValueCost: Int { 256 }

    init(outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, encoder: MessagePackEncoder, allocator: ByteBufferAllocator, eventLoop: any EventLoop) {
        self.outbound = outbound
        self.encoder = encoder
        self.allocator = allocator
        if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *) {
            self.executor = EventLoopTaskExecutor(eventLoop: eventLoop)
        } else {
            self.executor = nil
        }
    }

    /// Encodes and sends `value`; waits while the stream cannot take more.
    ///
    /// - Throws: ``RPCError`` `.encodingFailed` (nothing was sent),
    ///   `.connectionClosed` once the stream is closed or reset, or
    ///   `CancellationError` when the task is cancelled while waiting.
    public func write(_ value: Value) async throws {
        let buffer: ByteBuffer
        do {
            buffer = try encoder.encode(value, allocator: allocator)
        } catch {
            throw RPCError(code: .encodingFailed, message: "a value to stream does not encode: \(error)", isStreamUsable: true, requestWasSent: false, cause: error)
        }
        do {
            let unchecked = self.unchecked.add(buffer.readableBytes + Self.perValueCost)
            if unchecked >= Self.bytesBetweenLoopWrites,
               #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *),
               let executor = executor as? EventLoopTaskExecutor {
                // Through the stream's loop: the channel takes the value at
                // once, and if that leaves it unwritable this write waits.
                self.unchecked.reset()
                try await withTaskExecutorPreference(executor) {
                    try await outbound.write(buffer)
                }
            } else {
                try await outbound.write(buffer)
            }
        } catch {
            throw RPCStreamingFailure.outbound(error)
        }
    }

    /// Closes this side of the stream (a yamux FIN): the peer's values end,
    /// while its values to us keep coming until it closes its side. Writes
    /// after this fail.
    public func finish() {
        outbound.finish()
    }
}

/// What a streaming handler knows about the call it serves.
public struct RPCStreamingContext: Sendable {
    /// "Service.Method" as the caller's header named it.
    public var method: String
    /// The peer's address, when the stream has one.
    public var remoteAddress: SocketAddress?
    /// The stream's event loop.
    public var eventLoop: any EventLoop
    /// A value the transport attaches to every call of one connection, nil
    /// when it attaches none (see ``RPCServerContext/connectionContext``).
    public var connectionContext: (any Sendable)?

    /// A context with every value given; make one to test a handler.
    public init(method: String, remoteAddress: SocketAddress? = nil, eventLoop: any EventLoop, connectionContext: (any Sendable)? = nil) {
        self.connectionContext = connectionContext
        self.method = method
        self.remoteAddress = remoteAddress
        self.eventLoop = eventLoop
    }
}

/// Errors of a streaming call's channel, as ``RPCError``s.
enum RPCStreamingFailure {
    static func inbound(_ error: any Error) -> any Error {
        if error is RPCError || error is CancellationError { return error }
        return RPCError(code: .transportFailure, message: "the streaming call's stream failed: \(error)", isStreamUsable: false, cause: error)
    }

    static func outbound(_ error: any Error) -> any Error {
        if error is RPCError || error is CancellationError { return error }
        return RPCError(code: .connectionClosed, message: "the streaming call's stream is closed: \(error)", isStreamUsable: false, cause: error)
    }
}

/// A count shared by the copies of one writer (the writer is a value that
/// may be copied into child tasks).
final class UncheckedBytes: Sendable {
    private let bytes = Atomic<Int>(0)

    /// Adds `count` and returns the new total.
    func add(_ count: Int) -> Int {
        bytes.wrappingAdd(count, ordering: .relaxed).newValue
    }

    func reset() {
        bytes.store(0, ordering: .relaxed)
    }
}
