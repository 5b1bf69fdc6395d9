/// An error raised while reading or writing MessagePack.
///
/// Every error names what was wrong (``code``, ``message``) and, when
/// reading, the byte offset (from the start of the value being read) where
/// it was found, so a hostile or broken peer can be diagnosed from a log
/// line alone.
public struct MessagePackError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem this is. A struct rather than an enum so that
    /// codes can be added without breaking exhaustive switches.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case truncated, invalidFormatByte, typeMismatch, integerOverflow, invalidUTF8
            case byteLengthLimitExceeded, containerCountLimitExceeded, depthLimitExceeded, messageSizeLimitExceeded
            case trailingBytes, invalidExtension, invalidValue, lengthNotEncodable, writerCapacityExceeded
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The input ended inside a value that the caller said was complete.
        public static let truncated = Code(.truncated)
        /// A byte that starts no MessagePack value (0xc1 is the only one).
        public static let invalidFormatByte = Code(.invalidFormatByte)
        /// A value of one type was found where another was expected.
        public static let typeMismatch = Code(.typeMismatch)
        /// An integer does not fit in the requested Swift type.
        public static let integerOverflow = Code(.integerOverflow)
        /// A str value is not valid UTF-8 and was asked for as a `String`.
        public static let invalidUTF8 = Code(.invalidUTF8)
        /// A str, bin or ext payload is longer than ``MessagePackLimits/maxByteLength``.
        public static let byteLengthLimitExceeded = Code(.byteLengthLimitExceeded)
        /// An array or map holds more elements than ``MessagePackLimits/maxContainerCount``.
        public static let containerCountLimitExceeded = Code(.containerCountLimitExceeded)
        /// Containers nest deeper than ``MessagePackLimits/maxDepth``.
        public static let depthLimitExceeded = Code(.depthLimitExceeded)
        /// A whole value is larger than ``MessagePackLimits/maxMessageSize``.
        public static let messageSizeLimitExceeded = Code(.messageSizeLimitExceeded)
        /// Bytes follow a value that was expected to fill the input.
        public static let trailingBytes = Code(.trailingBytes)
        /// An extension value whose payload is not valid for its type (for
        /// example a timestamp that is not 4, 8 or 12 bytes).
        public static let invalidExtension = Code(.invalidExtension)
        /// A value that decodes but is not valid for the target type (for
        /// example a Go `time.Time` with an unknown version byte).
        public static let invalidValue = Code(.invalidValue)
        /// A length or count above 2^32-1, which MessagePack cannot encode.
        public static let lengthNotEncodable = Code(.lengthNotEncodable)
        /// A write into a fixed reservation did not fit it. Only the package's
        /// own header writers reserve space this way, so this names a bug in
        /// them, never something wrong with the input.
        public static let writerCapacityExceeded = Code(.writerCapacityExceeded)

        /// The code's name in words, for example "byte length limit exceeded".
        public var description: String {
            switch wrapped {
            case .truncated: "truncated"
            case .invalidFormatByte: "invalid format byte"
            case .typeMismatch: "type mismatch"
            case .integerOverflow: "integer overflow"
            case .invalidUTF8: "invalid UTF-8"
            case .byteLengthLimitExceeded: "byte length limit exceeded"
            case .containerCountLimitExceeded: "container count limit exceeded"
            case .depthLimitExceeded: "depth limit exceeded"
            case .messageSizeLimitExceeded: "message size limit exceeded"
            case .trailingBytes: "trailing bytes"
            case .invalidExtension: "invalid extension"
            case .invalidValue: "invalid value"
            case .lengthNotEncodable: "length not encodable"
            case .writerCapacityExceeded: "writer capacity exceeded"
            }
        }
    }

    /// What kind of problem this is.
    public var code: Code { detail.code }
    /// What was wrong, in words, with the figures that show it (lengths,
    /// limits, the byte found); without the offset.
    public var message: String { detail.message }
    /// Byte offset, from the start of the value being read, at which the
    /// problem was found. `nil` for errors raised while writing.
    public var offset: Int?

    /// The facts behind ``code`` and ``message``, kept as numbers until the
    /// message is asked for: a reader that fails on hostile input builds no
    /// text unless someone reads it.
    @usableFromInline let detail: Detail

    /// An error of your own, for a ``MessagePackSelfCodable`` type whose
    /// bytes are well-formed MessagePack but not a valid value of the type
    /// (usually ``Code/invalidValue``).
    public init(code: Code, message: String, offset: Int? = nil) {
        self.detail = .described(code, message)
        self.offset = offset
    }

    @usableFromInline
    init(_ detail: Detail, offset: Int?) {
        self.detail = detail
        self.offset = offset
    }

    /// "MessagePack: " and the message, then the offset when there is one.
    public var description: String {
        if let offset {
            return "MessagePack: \(message) at byte offset \(offset)"
        }
        return "MessagePack: \(message)"
    }
}

extension MessagePackError {
    /// What went wrong, with its figures. Usable from inline code: the
    /// inlinable writers throw it.
    @usableFromInline
    enum Detail: Hashable, Sendable {
        case truncated(needed: Int, available: Int)
        case invalidFormatByte(UInt8)
        case typeMismatch(expected: String, found: String)
        case integerOverflow(value: String, type: String)
        case invalidUTF8
        case byteLengthLimitExceeded(length: Int, limit: Int)
        case containerCountLimitExceeded(count: Int, limit: Int)
        case depthLimitExceeded(limit: Int)
        case messageSizeLimitExceeded(size: Int, limit: Int)
        case trailingBytes(count: Int)
        case invalidExtension(type: Int8, length: Int)
        case invalidValue(String)
        case lengthNotEncodable(Int)
        case writerCapacityExceeded(needed: Int, capacity: Int)
        /// Made with the public initializer.
        case described(Code, String)

        var code: Code {
            switch self {
            case .truncated: .truncated
            case .invalidFormatByte: .invalidFormatByte
            case .typeMismatch: .typeMismatch
            case .integerOverflow: .integerOverflow
            case .invalidUTF8: .invalidUTF8
            case .byteLengthLimitExceeded: .byteLengthLimitExceeded
            case .containerCountLimitExceeded: .containerCountLimitExceeded
            case .depthLimitExceeded: .depthLimitExceeded
            case .messageSizeLimitExceeded: .messageSizeLimitExceeded
            case .trailingBytes: .trailingBytes
            case .invalidExtension: .invalidExtension
            case .invalidValue: .invalidValue
            case .lengthNotEncodable: .lengthNotEncodable
            case .writerCapacityExceeded: .writerCapacityExceeded
            case .described(let code, _): code
            }
        }

        var message: String {
            switch self {
            case .truncated(let needed, let available):
                "input ends inside a value: needed \(needed) bytes, \(available) available"
            case .invalidFormatByte(let byte):
                "invalid format byte 0x\(String(byte, radix: 16))"
            case .typeMismatch(let expected, let found):
                "expected \(expected), found \(found)"
            case .integerOverflow(let value, let type):
                "integer \(value) does not fit in \(type)"
            case .invalidUTF8:
                "str value is not valid UTF-8"
            case .byteLengthLimitExceeded(let length, let limit):
                "payload length \(length) exceeds the limit of \(limit) bytes (MessagePackLimits.maxByteLength)"
            case .containerCountLimitExceeded(let count, let limit):
                "container of \(count) elements exceeds the limit of \(limit) (MessagePackLimits.maxContainerCount)"
            case .depthLimitExceeded(let limit):
                "nesting deeper than \(limit) levels (MessagePackLimits.maxDepth)"
            case .messageSizeLimitExceeded(let size, let limit):
                "value of at least \(size) bytes exceeds the limit of \(limit) bytes (MessagePackLimits.maxMessageSize)"
            case .trailingBytes(let count):
                "\(count) unexpected bytes after the value"
            case .invalidExtension(let type, let length):
                "invalid payload of \(length) bytes for extension type \(type)"
            case .invalidValue(let reason):
                reason
            case .lengthNotEncodable(let length):
                "length \(length) is larger than MessagePack can encode (2^32-1)"
            case .writerCapacityExceeded(let needed, let capacity):
                "writes need at least \(needed) bytes but only \(capacity) were reserved; nothing was written"
            case .described(_, let message):
                message
            }
        }
    }
}
