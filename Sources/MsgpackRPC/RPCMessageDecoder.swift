package import MessagePack
package import NIOCore

/// Splits a byte stream into complete msgpack values: net/rpc messages carry
/// no length prefix, each header and each body is one value, back to back.
///
/// One ``MessagePackValueScanner`` walks the value headers as bytes arrive and
/// resumes where it stopped, so a 1 MiB body arriving in 64 KiB reads is
/// walked once, not re-scanned on every read. Each length is checked against
/// ``MessagePackLimits`` as soon as its header arrives, so a peer claiming a
/// 4 GiB string or nesting forever fails with ``RPCError/Code/limitExceeded``
/// at once, and the buffered bytes never exceed ``MessagePackLimits/maxMessageSize``
/// plus one read. Each value is emitted as a slice of the received bytes
/// (no copy).
///
/// Use it with NIO's `ByteToMessageHandler`:
/// `ByteToMessageHandler(RPCMessageDecoder(limits: limits))`.
package struct RPCMessageDecoder: NIOSingleStepByteToMessageDecoder {
    package typealias InboundOut = ByteBuffer

    private var scanner: MessagePackValueScanner

    package init(limits: MessagePackLimits = .default) {
        self.scanner = MessagePackValueScanner(limits: limits)
    }

    /// The least number of bytes the message being framed takes, as far as
    /// its headers so far tell; 0 between messages.
    package var knownLength: Int { scanner.knownLength }

    package mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        let length: Int?
        do {
            length = try scanner.scan(buffer)
        } catch {
            throw RPCError(code: RPCMessageDecoder.code(for: error), message: "invalid message from peer: \(error)", isStreamUsable: false, cause: error)
        }
        guard let length else { return nil }
        return buffer.readSlice(length: length)
    }

    package mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        // A partial value at EOF is dropped: the stream is over, and the
        // handlers above report the close to whoever waits for a reply.
        try decode(buffer: &buffer)
    }

    private static func code(for error: MessagePackError) -> RPCError.Code {
        switch error.code {
        case .byteLengthLimitExceeded, .containerCountLimitExceeded, .depthLimitExceeded, .messageSizeLimitExceeded:
            .limitExceeded
        default:
            .protocolViolation
        }
    }
}
