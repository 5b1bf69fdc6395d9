public import NIOCore

/// Finds where the next complete MessagePack value ends in a buffer that
/// grows as bytes arrive, without decoding it.
///
/// A stream parser (net/rpc messages have no length prefix) calls
/// ``scan(_:)`` each time bytes arrive: it answers with the value's length
/// once the whole value is there, or `nil` for "need more bytes". It walks
/// headers only, never payloads, and it resumes where it stopped, so a
/// value arriving in many pieces is walked once in total. Every length is
/// checked against ``MessagePackLimits`` as soon as its header arrives.
///
/// The scanner reads from the buffer's reader index. Between a `nil`
/// answer and the next call, append bytes but do not consume any; after a
/// length is returned, consume that many bytes and the scanner is ready
/// for the next value.
public struct MessagePackValueScanner: Sendable {
    /// The limits every scanned value is checked against.
    public let limits: MessagePackLimits

    /// Offset of the next header to read (may run ahead of the bytes
    /// received while a long payload is still arriving).
    private var offset = 0
    /// Elements still to come in each open container, innermost last; a
    /// map counts keys and values separately.
    private var remaining: [Int] = []
    /// True once the top-level value's last header has been read.
    private var headersComplete = false

    /// A scanner that checks values against `limits`.
    public init(limits: MessagePackLimits = .default) {
        self.limits = limits
    }

    /// Returns the byte length of the complete value at the start of
    /// `buffer`'s readable bytes, or `nil` when more bytes are needed.
    /// Throws when the bytes cannot start a valid value or cross a limit.
    public mutating func scan(_ buffer: ByteBuffer) throws(MessagePackError) -> Int? {
        let result = buffer.withUnsafeReadableBytes { bytes in
            Result { () throws(MessagePackError) in try self.scan(bytes) }
        }
        let length = try result.get()
        if length != nil { reset() }
        return length
    }

    /// The least number of bytes the value being scanned takes, as far as the
    /// headers read so far tell (a payload whose header has arrived counts
    /// whole); 0 before the first header. Never above
    /// ``MessagePackLimits/maxMessageSize``.
    public var knownLength: Int { offset }

    /// Forgets any partial progress, for example after the caller discarded
    /// the buffer.
    public mutating func reset() {
        offset = 0
        remaining.removeAll(keepingCapacity: true)
        headersComplete = false
    }

    private mutating func scan(_ bytes: UnsafeRawBufferPointer) throws(MessagePackError) -> Int? {
        while !headersComplete {
            guard let header = try ValueHeader.parse(bytes, at: offset, limits: limits) else {
                return nil
            }
            let start = offset
            offset += header.headerLength
            switch header.shape {
            case .scalar(let payloadLength):
                offset += payloadLength
                try checkSize(start: start)
                finishElement()
            case .array(let count):
                try openContainer(elements: count, start: start)
            case .map(let count):
                try openContainer(elements: count * 2, start: start)
            }
        }
        return offset <= bytes.count ? offset : nil
    }

    /// A container header was read: check its depth, then wait for its
    /// elements (or count it as finished when it has none).
    private mutating func openContainer(elements: Int, start: Int) throws(MessagePackError) {
        try checkSize(start: start)
        // Top-level containers are at depth 1.
        guard remaining.count < limits.maxDepth else {
            throw MessagePackError(.depthLimitExceeded(limit: limits.maxDepth), offset: start)
        }
        if elements == 0 {
            finishElement()
        } else {
            remaining.append(elements)
        }
    }

    @inline(__always)
    private func checkSize(start: Int) throws(MessagePackError) {
        if offset > limits.maxMessageSize {
            throw MessagePackError(.messageSizeLimitExceeded(size: offset, limit: limits.maxMessageSize), offset: start)
        }
    }

    /// One element ended: count it against its container, closing every
    /// container it completes.
    @inline(__always)
    private mutating func finishElement() {
        while let last = remaining.indices.last {
            remaining[last] -= 1
            if remaining[last] > 0 { return }
            remaining.removeLast()
        }
        headersComplete = true
    }
}
