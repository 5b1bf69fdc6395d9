/// An error raised while reading or writing MessagePack.
///
/// Every error names what was wrong and, when reading, the byte offset (from
/// the start of the value being read) where it was found, so a hostile or
/// broken peer can be diagnosed from a log line alone.
public struct MessagePackError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Hashable, Sendable {
        /// The input ended inside a value that the caller said was complete.
        case truncated(needed: Int, available: Int)
        /// A byte that starts no MessagePack value (0xc1 is the only one).
        case invalidFormatByte(UInt8)
        /// A value of one type was found where another was expected.
        case typeMismatch(expected: String, found: String)
        /// An integer does not fit in the requested Swift type.
        case integerOverflow(value: String, type: String)
        /// A str value is not valid UTF-8 and was asked for as a `String`.
        case invalidUTF8
        /// A str, bin or ext payload is longer than ``MessagePackLimits/maxByteLength``.
        case byteLengthLimitExceeded(length: Int, limit: Int)
        /// An array or map holds more elements than ``MessagePackLimits/maxContainerCount``.
        case containerCountLimitExceeded(count: Int, limit: Int)
        /// Containers nest deeper than ``MessagePackLimits/maxDepth``.
        case depthLimitExceeded(limit: Int)
        /// A whole value is larger than ``MessagePackLimits/maxMessageSize``.
        case messageSizeLimitExceeded(size: Int, limit: Int)
        /// Bytes follow a value that was expected to fill the input.
        case trailingBytes(count: Int)
        /// An extension value whose payload is not valid for its type
        /// (for example a timestamp that is not 4, 8 or 12 bytes).
        case invalidExtension(type: Int8, length: Int)
        /// A value that decodes but is not valid for the target type (for
        /// example a Go `time.Time` with an unknown version byte).
        case invalidValue(String)
        /// A length or count above 2^32-1, which MessagePack cannot encode.
        case lengthNotEncodable(Int)
        /// A write into one reservation (the RPC layer's pointer writer) did not fit in it.
        case writerCapacityExceeded(needed: Int, capacity: Int)
    }

    /// What went wrong.
    public var kind: Kind
    /// Byte offset, from the start of the value being read, at which the
    /// problem was found. `nil` for errors raised while writing.
    public var offset: Int?

    /// An error of `kind`, found at `offset` (`nil` when writing).
    public init(_ kind: Kind, offset: Int?) {
        self.kind = kind
        self.offset = offset
    }

    /// What went wrong, with the offset when there is one.
    public var description: String {
        let what: String
        switch kind {
        case .truncated(let needed, let available):
            what = "input ends inside a value: needed \(needed) bytes, \(available) available"
        case .invalidFormatByte(let byte):
            what = "invalid format byte 0x\(String(byte, radix: 16))"
        case .typeMismatch(let expected, let found):
            what = "expected \(expected), found \(found)"
        case .integerOverflow(let value, let type):
            what = "integer \(value) does not fit in \(type)"
        case .invalidUTF8:
            what = "str value is not valid UTF-8"
        case .byteLengthLimitExceeded(let length, let limit):
            what = "payload length \(length) exceeds the limit of \(limit) bytes (MessagePackLimits.maxByteLength)"
        case .containerCountLimitExceeded(let count, let limit):
            what = "container of \(count) elements exceeds the limit of \(limit) (MessagePackLimits.maxContainerCount)"
        case .depthLimitExceeded(let limit):
            what = "nesting deeper than \(limit) levels (MessagePackLimits.maxDepth)"
        case .messageSizeLimitExceeded(let size, let limit):
            what = "value of at least \(size) bytes exceeds the limit of \(limit) bytes (MessagePackLimits.maxMessageSize)"
        case .trailingBytes(let count):
            what = "\(count) unexpected bytes after the value"
        case .invalidExtension(let type, let length):
            what = "invalid payload of \(length) bytes for extension type \(type)"
        case .invalidValue(let reason):
            what = reason
        case .lengthNotEncodable(let length):
            what = "length \(length) is larger than MessagePack can encode (2^32-1)"
        case .writerCapacityExceeded(let needed, let capacity):
            what = "writes need at least \(needed) bytes but only \(capacity) were reserved; nothing was written"
        }
        if let offset {
            return "MessagePack: \(what) at byte offset \(offset)"
        }
        return "MessagePack: \(what)"
    }
}
