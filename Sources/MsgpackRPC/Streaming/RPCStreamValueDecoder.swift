package import MessagePack
package import NIOCore

/// Splits the bytes of a streaming call into the bare msgpack values it
/// carries: after the header and the ack, both sides write one value after
/// another with no length prefix, so a value's end is known only by walking
/// its headers.
///
/// Bytes are appended as they arrive (``append(_:)``) and complete values
/// taken out (``next()``), each a slice of the received bytes. One
/// `MessagePackValueScanner` walks headers, never payloads, and resumes
/// where it stopped, so a value that arrives in many reads is walked once.
/// Every length is checked as its header arrives: a value that claims more
/// than ``maxValueSize`` bytes fails at once with ``RPCError/Code/limitExceeded``,
/// before its payload is waited for or room is made for it, and the bytes
/// held never exceed ``maxValueSize`` plus one read. Bytes that are not
/// msgpack fail with ``RPCError/Code/protocolViolation``. Either error ends the
/// stream: values have no boundaries to resynchronise on.
package struct RPCStreamValueDecoder {
    /// Limit: the largest value accepted, in encoded bytes.
    package let maxValueSize: Int
    private var scanner: MessagePackValueScanner
    private var buffered: ByteBuffer?
    private var failed = false

    /// Bytes received that may stay in front of a partial value before they
    /// are dropped from the buffer.
    private static let compactionThreshold = 4096
    /// Room made for a partial value is at most this many times the bytes
    /// of it received, however long its headers say it is.
    private static let reservationFactor = 4

    /// A decoder that checks values against `limits`, with `maxValueSize`
    /// in place of `limits.maxMessageSize` when it is smaller.
    package init(limits: MessagePackLimits = .default, maxValueSize: Int) {
        precondition(maxValueSize >= 1, "maxValueSize must be at least 1")
        var limits = limits
        limits.maxMessageSize = min(limits.maxMessageSize, maxValueSize)
        self.maxValueSize = limits.maxMessageSize
        self.scanner = MessagePackValueScanner(limits: limits)
    }

    /// Bytes received and not yet taken out as values.
    package var bufferedByteCount: Int { buffered?.readableBytes ?? 0 }

    /// The storage held for received bytes; for tests of the bound.
    package var bufferedStorageCapacity: Int { buffered?.storageCapacity ?? 0 }

    /// Appends bytes that arrived. Ignored after a failure.
    package mutating func append(_ bytes: ByteBuffer) {
        guard !failed, bytes.readableBytes > 0 else { return }
        guard buffered != nil else {
            buffered = bytes
            return
        }
        var bytes = bytes
        if buffered!.readerIndex >= Self.compactionThreshold, buffered!.readerIndex >= buffered!.readableBytes {
            buffered!.discardReadBytes()
        }
        // Room for the whole value as far as its headers tell, so a large
        // value is copied once; headers may lie, hence the factor.
        let received = buffered!.readableBytes + bytes.readableBytes
        let wanted = min(scanner.knownLength, Self.reservationFactor * received)
        let writable = wanted - buffered!.readableBytes
        if writable > buffered!.writableBytes {
            buffered!.reserveCapacity(minimumWritableBytes: writable)
        }
        buffered!.writeBuffer(&bytes)
    }

    /// The next complete value, or nil until more bytes arrive.
    ///
    /// - Throws: ``RPCError`` `.limitExceeded` for a value over the limits,
    ///   `.protocolViolation` for bytes that are not msgpack. After a
    ///   failure every call throws `.streamUnusable`.
    package mutating func next() throws(RPCError) -> ByteBuffer? {
        if failed {
            throw RPCError(code: .streamUnusable, message: "the streaming call failed earlier: no further values", isStreamUsable: false)
        }
        guard buffered != nil else { return nil }
        let length: Int?
        do {
            length = try scanner.scan(buffered!)
        } catch {
            failed = true
            buffered = nil
            throw Self.error(for: error, maxValueSize: maxValueSize)
        }
        guard let length else { return nil }
        let value = buffered!.readSlice(length: length)!
        if buffered!.readableBytes == 0 { buffered = nil }
        return value
    }

    /// At the end of the stream: throws when it ended inside a value.
    package func checkEnd() throws(RPCError) {
        guard !failed, let buffered, buffered.readableBytes > 0 else { return }
        throw RPCError(
            code: .protocolViolation,
            message: "the streaming call ended inside a value (\(buffered.readableBytes) bytes of it received)",
            isStreamUsable: false
        )
    }

    static func error(for error: MessagePackError, maxValueSize: Int) -> RPCError {
        switch error.code {
        case .messageSizeLimitExceeded:
            RPCError(
                code: .limitExceeded,
                message: "a streamed value is larger than maxValueSize (\(maxValueSize) bytes): stream closed",
                isStreamUsable: false, cause: error
            )
        case .byteLengthLimitExceeded, .containerCountLimitExceeded, .depthLimitExceeded:
            RPCError(code: .limitExceeded, message: "a streamed value crosses a limit: \(error): stream closed", isStreamUsable: false, cause: error)
        default:
            RPCError(code: .protocolViolation, message: "a streamed value is not msgpack: \(error): stream closed", isStreamUsable: false, cause: error)
        }
    }
}
