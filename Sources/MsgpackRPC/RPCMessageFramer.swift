package import MessagePack
package import NIOCore

/// The inbound half of every RPC stream: splits the byte stream into
/// complete msgpack values (each request or response header, each body) and
/// passes each on as a slice of the received bytes.
///
/// It does what `ByteToMessageHandler(RPCMessageDecoder(limits:))` does, with
/// the same limits and errors, in a handler made for this one decoder: NIO's
/// generic `ByteToMessageHandler` is not specialised for it across the module
/// boundary, and looked its generic metadata up for every message.
///
/// Bytes that arrive while a message is being passed on (a handler further on
/// asked for more and got it at once) are appended and framed in the same
/// loop, in order. After an invalid message (an error reaches
/// `errorCaught` further on, and the stream should be closed) everything
/// that follows is dropped.
package final class RPCMessageFramer: ChannelInboundHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer

    private var decoder: RPCMessageDecoder
    /// Received bytes not yet passed on; nil when there are none.
    private var buffered: ByteBuffer?
    private var isFraming = false
    private var failed = false
    /// Bytes passed on that may stay in the buffer before it is compacted.
    private static let compactionThreshold = 4096
    /// How long a message may stay partial; nil: as long as the stream lives.
    private let partialMessageTimeout: TimeAmount?
    /// Messages passed on so far, to tell one partial message from the next.
    private var messagesFramed: UInt64 = 0
    /// The partial message the received bytes end in, and since when.
    private var partialMessage: (messagesFramed: UInt64, since: NIODeadline)?
    private var partialMessageTimer: Scheduled<Void>?

    /// - Parameters:
    ///   - limits: bounds on every value.
    ///   - partialMessageTimeout: once a message's first bytes have arrived, the
    ///     rest must follow within this time, or the stream fails with an
    ///     ``RPCError`` (`.limitExceeded`) passed to `errorCaught`. Nil (the
    ///     default) waits as long as the stream lives.
    package init(limits: MessagePackLimits = .default, partialMessageTimeout: TimeAmount? = nil) {
        self.decoder = RPCMessageDecoder(limits: limits)
        self.partialMessageTimeout = partialMessageTimeout
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        partialMessageTimer?.cancel()
        partialMessageTimer = nil
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var bytes = unwrapInboundIn(data)
        if buffered == nil {
            buffered = bytes
        } else {
            // A partial message waits at the end of what was read. Drop the
            // bytes already passed on once they outweigh it, so that a stream
            // whose reads keep ending mid-message cannot grow the buffer.
            if buffered!.readerIndex >= Self.compactionThreshold, buffered!.readerIndex >= buffered!.readableBytes {
                buffered!.discardReadBytes()
            }
            reserveForMessage(adding: bytes.readableBytes)
            buffered!.writeBuffer(&bytes)
        }
        // Re-entered from a message passed on below: the loop there frames
        // what was just appended.
        guard !isFraming else { return }
        isFraming = true
        defer {
            isFraming = false
            watchPartialMessage(context: context)
        }
        while !failed, buffered != nil {
            let message: ByteBuffer?
            do {
                message = try decoder.decode(buffer: &buffered!)
            } catch {
                failed = true
                buffered = nil
                context.fireErrorCaught(error)
                return
            }
            if buffered!.readableBytes == 0 {
                // Let go of the storage: the next read becomes the buffer
                // as it is, without a copy.
                buffered = nil
            }
            guard let message else { return }
            messagesFramed &+= 1
            context.fireChannelRead(wrapInboundOut(message))
        }
    }
}

extension RPCMessageFramer {
    /// Limit: the room made for a partial message is at most this many
    /// times the bytes of it received, however long its headers say it is.
    static let reservationFactor = 4

    /// After each read: if the bytes end inside a message, the rest must come within
    /// `partialMessageTimeout`. One clock read per read that ends mid-message, one
    /// timer that re-arms itself only while messages stay partial.
    private func watchPartialMessage(context: ChannelHandlerContext) {
        guard partialMessageTimeout != nil, !failed, buffered != nil else {
            partialMessage = nil
            return
        }
        if partialMessage?.messagesFramed != messagesFramed {
            partialMessage = (messagesFramed, context.eventLoop.now)
        }
        if partialMessageTimer == nil { armPartialMessageTimer(context: context) }
    }

    private func armPartialMessageTimer(context: ChannelHandlerContext) {
        guard let timeout = partialMessageTimeout, let partial = partialMessage else { return }
        partialMessageTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: partial.since + timeout) {
            self.partialMessageTimer = nil
            guard !self.failed, self.buffered != nil, let partial = self.partialMessage else { return }
            if context.eventLoop.now >= partial.since + timeout {
                self.failed = true
                self.buffered = nil
                context.fireErrorCaught(
                    RPCError(
                        code: .limitExceeded,
                        message: "a message was not complete within \(timeout.nanoseconds / 1_000_000_000) s of its first byte (partialMessageTimeout): stream closed",
                        isStreamUsable: false
                    )
                )
            } else {
                self.armPartialMessageTimer(context: context)
            }
        }
    }

    /// The storage held for the partial message; for tests.
    var bufferedStorageCapacity: Int { buffered?.storageCapacity ?? 0 }

    /// Makes room, before `count` more bytes are appended, for the whole of
    /// the message being framed as far as its headers tell, so that a large
    /// message is copied into its buffer once, instead of again at each
    /// doubling of the buffer, where a body arriving in several reads would be
    /// copied again each time the buffer grows. A peer's headers
    /// may lie about a length, so the room never exceeds `reservationFactor`
    /// times the bytes actually received, nor the message size limit.
    private func reserveForMessage(adding count: Int) {
        let received = buffered!.readableBytes + count
        let wanted = min(decoder.knownLength, Self.reservationFactor * received)
        let writable = wanted - buffered!.readableBytes
        if writable > buffered!.writableBytes {
            buffered!.reserveCapacity(minimumWritableBytes: writable)
        }
    }
}

@available(*, unavailable)
extension RPCMessageFramer: Sendable {}
