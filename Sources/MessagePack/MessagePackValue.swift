public import NIOCore

/// Any MessagePack value, for dynamic data and for tests.
///
/// Integers are normalised: every integer that fits in `Int64` is
/// ``int(_:)``, whatever encoding it arrived in; only values above
/// `Int64.max` are ``uint(_:)``. So a value read from a peer that uses
/// signed forms equals one read from a peer that uses unsigned forms.
/// Floats compare by bit pattern, so `.double(.nan) == .double(.nan)`.
/// Maps keep their entries in wire order, duplicates included.
public enum MessagePackValue: Sendable {
    /// nil.
    case `nil`
    /// A boolean.
    case bool(Bool)
    /// Any integer that fits in `Int64`, whatever its encoding.
    case int(Int64)
    /// An unsigned integer above `Int64.max`.
    case uint(UInt64)
    /// A 32-bit float.
    case float(Float)
    /// A 64-bit float.
    case double(Double)
    /// A str value that is valid UTF-8.
    case string(String)
    /// A bin value, as a slice of the input.
    case binary(ByteBuffer)
    /// An array, in order.
    case array([MessagePackValue])
    /// A map, its entries in wire order, duplicates kept.
    case map([(key: MessagePackValue, value: MessagePackValue)])
    /// An extension value other than a timestamp: its type and payload.
    case `extension`(type: Int8, payload: ByteBuffer)
    /// The timestamp extension (type -1).
    case timestamp(MessagePackTimestamp)
}

extension MessagePackValue {
    /// The value for `key` in a map whose keys are strings; `nil` if this
    /// is not a map or the key is absent. With duplicate keys, the last
    /// wins, as Go's decoder does.
    public subscript(key: String) -> MessagePackValue? {
        guard case .map(let entries) = self else { return nil }
        return entries.last(where: { $0.key == .string(key) })?.value
    }

    /// The element at `index` of an array; `nil` if out of range or not an array.
    public subscript(index: Int) -> MessagePackValue? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    /// The integer as `Int64`, if it is an integer that fits.
    public var int64Value: Int64? {
        switch self {
        case .int(let value): return value
        case .uint(let value): return Int64(exactly: value)
        default: return nil
        }
    }

    /// The string, if this is a str value.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }
}

extension MessagePackValue: Equatable {
    /// Values are equal when they read the same: integers by value, floats by bit pattern,
    /// maps entry by entry in order.
    public static func == (lhs: MessagePackValue, rhs: MessagePackValue) -> Bool {
        switch (lhs, rhs) {
        case (.nil, .nil): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.uint(let a), .uint(let b)): return a == b
        case (.int(let a), .uint(let b)), (.uint(let b), .int(let a)): return a >= 0 && UInt64(a) == b
        case (.float(let a), .float(let b)): return a.bitPattern == b.bitPattern
        case (.double(let a), .double(let b)): return a.bitPattern == b.bitPattern
        case (.string(let a), .string(let b)): return a == b
        case (.binary(let a), .binary(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.map(let a), .map(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case (.extension(let typeA, let payloadA), .extension(let typeB, let payloadB)):
            return typeA == typeB && payloadA == payloadB
        case (.timestamp(let a), .timestamp(let b)): return a == b
        default: return false
        }
    }
}

extension MessagePackValue: Hashable {
    /// Hashes consistently with `==`.
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .nil: hasher.combine(0)
        case .bool(let value): hasher.combine(value)
        case .int(let value):
            // Equal to a .uint of the same value: hash alike.
            if value >= 0 { hasher.combine(UInt64(value)) } else { hasher.combine(value) }
        case .uint(let value): hasher.combine(value)
        case .float(let value): hasher.combine(value.bitPattern)
        case .double(let value): hasher.combine(value.bitPattern)
        case .string(let value): hasher.combine(value)
        case .binary(let value): hasher.combine(value)
        case .array(let elements): hasher.combine(elements)
        case .map(let entries):
            hasher.combine(entries.count)
            for entry in entries {
                hasher.combine(entry.key)
                hasher.combine(entry.value)
            }
        case .extension(let type, let payload):
            hasher.combine(type)
            hasher.combine(payload)
        case .timestamp(let value): hasher.combine(value)
        }
    }
}

extension MessagePackValue: CustomStringConvertible {
    /// A readable, JSON-like form, for logs and test failures.
    public var description: String {
        switch self {
        case .nil: return "nil"
        case .bool(let value): return String(value)
        case .int(let value): return String(value)
        case .uint(let value): return String(value)
        case .float(let value): return "\(value)f"
        case .double(let value): return String(value)
        case .string(let value): return String(reflecting: value)
        case .binary(let value): return "bin(\(value.readableBytes) bytes)"
        case .array(let elements): return "[" + elements.map(\.description).joined(separator: ", ") + "]"
        case .map(let entries):
            return "{" + entries.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        case .extension(let type, let payload): return "ext(\(type), \(payload.readableBytes) bytes)"
        case .timestamp(let value): return value.description
        }
    }
}

extension MessagePackValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    /// ``nil``, from `nil`.
    public init(nilLiteral: ()) { self = .nil }
    /// A ``bool(_:)`` from a literal.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// An ``int(_:)`` from a literal.
    public init(integerLiteral value: Int64) { self = .int(value) }
    /// A ``double(_:)`` from a literal.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// A ``string(_:)`` from a literal.
    public init(stringLiteral value: String) { self = .string(value) }
    /// An ``array(_:)`` from a literal.
    public init(arrayLiteral elements: MessagePackValue...) { self = .array(elements) }
    /// A ``map(_:)`` from a literal, entries in the literal's order.
    public init(dictionaryLiteral elements: (MessagePackValue, MessagePackValue)...) {
        self = .map(elements.map { (key: $0.0, value: $0.1) })
    }
}

// MARK: - Reading and writing

extension MessagePackReader {
    /// Reads one complete value of any type, enforcing every limit.
    public mutating func readValue() throws(MessagePackError) -> MessagePackValue {
        try readValue(depth: 0)
    }

    private mutating func readValue(depth: Int) throws(MessagePackError) -> MessagePackValue {
        guard let type = try peekType() else { throw truncated(needing: 1) }
        switch type {
        case .nil:
            try readNil()
            return .nil
        case .bool:
            return .bool(try readBool())
        case .int, .uint:
            if peekFormat() == FormatByte.uint64, let value = load(UInt64.self, after: 1), value > UInt64(Int64.max)
            {
                return .uint(try readInteger(as: UInt64.self))
            }
            return .int(try readInteger(as: Int64.self))
        case .float:
            return .float(try readFloat())
        case .double:
            return .double(try readDouble())
        case .string:
            return .string(try readString())
        case .binary:
            return .binary(try readBinary())
        case .extension:
            let start = offset
            let (extensionType, payload) = try readExtension()
            guard extensionType == MessagePackTimestamp.extensionType else {
                return .extension(type: extensionType, payload: payload)
            }
            guard let timestamp = payload.withUnsafeReadableBytes({ MessagePackTimestamp(payload: $0) }) else {
                throw MessagePackError(.invalidExtension(type: extensionType, length: payload.readableBytes), offset: start)
            }
            return .timestamp(timestamp)
        case .array:
            let start = offset
            let count = try readArrayHeader()
            try checkDepth(depth + 1, start: start)
            // Reserve no more than the bytes left could hold (one per element),
            // so a lying count cannot make us allocate.
            var elements: [MessagePackValue] = []
            elements.reserveCapacity(Swift.min(count, remainingBytes))
            for _ in 0..<count {
                elements.append(try readValue(depth: depth + 1))
            }
            return .array(elements)
        case .map:
            let start = offset
            let count = try readMapHeader()
            try checkDepth(depth + 1, start: start)
            var entries: [(key: MessagePackValue, value: MessagePackValue)] = []
            entries.reserveCapacity(Swift.min(count, remainingBytes / 2))
            for _ in 0..<count {
                let key = try readValue(depth: depth + 1)
                let value = try readValue(depth: depth + 1)
                entries.append((key, value))
            }
            return .map(entries)
        }
    }

    private func checkDepth(_ depth: Int, start: Int) throws(MessagePackError) {
        guard depth <= limits.maxDepth else {
            throw MessagePackError(.depthLimitExceeded(limit: limits.maxDepth), offset: start)
        }
    }
}

extension ByteBuffer {
    /// Writes `value`. Strings follow `options.stringHeaders`;
    /// ``MessagePackValue/binary(_:)`` is always written as bin here (a
    /// dynamic value says what it is; ``MessagePackWriteOptions/bytes``
    /// applies to typed bytes in ``MessagePackEncoder``).
    @discardableResult
    public mutating func writeMessagePackValue(
        _ value: MessagePackValue,
        options: MessagePackWriteOptions = .goCompatible
    ) throws(MessagePackError) -> Int {
        switch value {
        case .nil: return writeMessagePackNil()
        case .bool(let bool): return writeMessagePackBool(bool)
        case .int(let int): return writeMessagePackInteger(int)
        case .uint(let uint): return writeMessagePackInteger(uint)
        case .float(let float): return writeMessagePackFloat(float)
        case .double(let double): return writeMessagePackDouble(double)
        case .string(let string): return try writeMessagePackString(string, headers: options.stringHeaders)
        case .binary(let bytes): return try writeMessagePackBinary(bytes)
        case .array(let elements):
            var written = try writeMessagePackArrayHeader(count: elements.count)
            for element in elements {
                written += try writeMessagePackValue(element, options: options)
            }
            return written
        case .map(let entries):
            var written = try writeMessagePackMapHeader(count: entries.count)
            for entry in entries {
                written += try writeMessagePackValue(entry.key, options: options)
                written += try writeMessagePackValue(entry.value, options: options)
            }
            return written
        case .extension(let type, let payload): return try writeMessagePackExtension(type: type, payload: payload)
        case .timestamp(let timestamp): return writeMessagePackTimestamp(timestamp)
        }
    }

    /// Reads one value if the readable bytes hold all of it, consuming it;
    /// returns `nil`, consuming nothing, when more bytes are needed.
    ///
    /// This scans from the start on each call. A stream parser that is
    /// handed bytes piece by piece should keep a ``MessagePackValueScanner``
    /// instead, which resumes where it stopped.
    public mutating func readMessagePackValue(limits: MessagePackLimits = .default) throws(MessagePackError) -> MessagePackValue? {
        var scanner = MessagePackValueScanner(limits: limits)
        guard let length = try scanner.scan(self) else { return nil }
        var reader = MessagePackReader(getSlice(at: readerIndex, length: length)!, limits: limits)
        let value = try reader.readValue()
        moveReaderIndex(forwardBy: length)
        return value
    }
}

// MARK: - Codable

/// `MessagePackEncoder` and `MessagePackDecoder` write and read a
/// `MessagePackValue` as itself. Other coders (JSON, say) get the closest
/// thing they have: bytes as an array of numbers, maps with string keys as
/// keyed containers, extensions as `{"type": n, "payload": [bytes]}`.
extension MessagePackValue: Codable {
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Decodes any value; with ``MessagePackDecoder`` the value read is kept exactly.
    public init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: AnyKey.self) {
            self = .map(try container.allKeys.map { key in (key: .string(key.stringValue), value: try container.decode(MessagePackValue.self, forKey: key)) })
            return
        }
        if var container = try? decoder.unkeyedContainer() {
            var elements: [MessagePackValue] = []
            while !container.isAtEnd { elements.append(try container.decode(MessagePackValue.self)) }
            self = .array(elements)
            return
        }
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .nil
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let int = try? container.decode(Int64.self) {
            self = .int(int)
        } else if let uint = try? container.decode(UInt64.self) {
            self = .uint(uint)
        } else if let double = try? container.decode(Double.self) {
            self = .double(double)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    /// Encodes the value; with ``MessagePackEncoder`` it is written exactly.
    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .nil:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .bool(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .int(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .uint(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .float(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .double(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .string(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .binary(let value):
            var container = encoder.singleValueContainer()
            try container.encode(Array(value.readableBytesView))
        case .array(let elements):
            var container = encoder.unkeyedContainer()
            for element in elements { try container.encode(element) }
        case .map(let entries):
            if entries.allSatisfy({ $0.key.stringValue != nil }) {
                var container = encoder.container(keyedBy: AnyKey.self)
                for entry in entries { try container.encode(entry.value, forKey: AnyKey(stringValue: entry.key.stringValue!)) }
            } else {
                // Non-string keys: alternate keys and values in an array.
                var container = encoder.unkeyedContainer()
                for entry in entries {
                    try container.encode(entry.key)
                    try container.encode(entry.value)
                }
            }
        case .extension(let type, let payload):
            var container = encoder.container(keyedBy: AnyKey.self)
            try container.encode(type, forKey: AnyKey(stringValue: "type"))
            try container.encode(Array(payload.readableBytesView), forKey: AnyKey(stringValue: "payload"))
        case .timestamp(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        }
    }
}
