import FoundationEssentials
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The state of one `MessagePackDecoder.decode` call.
///
/// Containers never depend on where a previous decode left the reader:
/// a map is indexed once (key → value offset) when its container is made,
/// and an array element's end is found by skipping headers before the
/// element is decoded. So types that read only some keys, or read keys in
/// any order, decode correctly.
final class MessagePackDecoding: Decoder {
    var reader: MessagePackReader
    let decodesNilAsEmpty: Bool
    let sendableUserInfo: [CodingUserInfoKey: any Sendable]
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { sendableUserInfo }

    /// Where the value now being decoded through `init(from:)` starts; every
    /// container asked for reads from here, however often it is asked for.
    private var valueStart = 0

    init(reader: MessagePackReader, decodesNilAsEmpty: Bool, userInfo: [CodingUserInfoKey: any Sendable]) {
        self.reader = reader
        self.decodesNilAsEmpty = decodesNilAsEmpty
        self.sendableUserInfo = userInfo
    }

    // MARK: - Decoder

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        try keyedContainer(keyedBy: type, at: valueStart, path: codingPath)
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try unkeyedContainer(at: valueStart, path: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        MessagePackSingleValueDecodingContainer(decoding: self, offset: valueStart, codingPath: codingPath)
    }

    func keyedContainer<Key: CodingKey>(keyedBy type: Key.Type, at offset: Int, path: [any CodingKey]) throws -> KeyedDecodingContainer<Key> {
        reader.offset = offset
        if decodesNilAsEmpty && reader.nextIsNil() {
            return KeyedDecodingContainer(MessagePackKeyedDecodingContainer<Key>(decoding: self, index: MapIndex(), codingPath: path))
        }
        let index = try read(path: path, as: [String: Any].self) { reader throws(MessagePackError) in
            try MapIndex(reading: &reader)
        }
        return KeyedDecodingContainer(MessagePackKeyedDecodingContainer<Key>(decoding: self, index: index, codingPath: path))
    }

    func unkeyedContainer(at offset: Int, path: [any CodingKey]) throws -> any UnkeyedDecodingContainer {
        reader.offset = offset
        if decodesNilAsEmpty && reader.nextIsNil() {
            return MessagePackUnkeyedDecodingContainer(decoding: self, count: 0, firstOffset: offset + 1, codingPath: path)
        }
        let count = try read(path: path, as: [Any].self) { reader throws(MessagePackError) in try reader.readArrayHeader() }
        return MessagePackUnkeyedDecodingContainer(decoding: self, count: count, firstOffset: reader.offset, codingPath: path)
    }

    /// A decoder for `superDecoder()`: the same input, starting at `offset`.
    func subDecoder(at offset: Int, path: [any CodingKey]) -> MessagePackDecoding {
        let decoding = MessagePackDecoding(reader: reader, decodesNilAsEmpty: decodesNilAsEmpty, userInfo: sendableUserInfo)
        decoding.codingPath = path
        decoding.valueStart = offset
        return decoding
    }

    // MARK: - Values

    /// Runs a reader operation at the current offset, turning its errors
    /// into `DecodingError`s that carry the coding path.
    @inline(__always)
    func read<Result>(
        path: @autoclosure () -> [any CodingKey],
        as type: Any.Type,
        _ body: (inout MessagePackReader) throws(MessagePackError) -> Result
    ) throws -> Result {
        do {
            return try body(&reader)
        } catch {
            throw Self.decodingError(error, type: type, path: path())
        }
    }

    static func decodingError(_ error: MessagePackError, type: Any.Type, path: [any CodingKey]) -> DecodingError {
        let context = DecodingError.Context(codingPath: path, debugDescription: error.description, underlyingError: error)
        switch error.kind {
        case .typeMismatch, .integerOverflow: return .typeMismatch(type, context)
        default: return .dataCorrupted(context)
        }
    }

    /// Reads a string, or "" for nil when Go's zero values are on.
    func readString(path: @autoclosure () -> [any CodingKey]) throws -> String {
        if decodesNilAsEmpty && reader.nextIsNil() {
            reader.offset += 1
            return ""
        }
        return try read(path: path(), as: String.self) { reader throws(MessagePackError) in try reader.readString() }
    }

    func readInteger<Integer: FixedWidthInteger>(_ type: Integer.Type, path: @autoclosure () -> [any CodingKey]) throws -> Integer {
        try read(path: path(), as: type) { reader throws(MessagePackError) in try reader.readInteger(as: type) }
    }

    /// Decodes any value at `offset`: the types with a direct MessagePack
    /// form here, everything else through its `init(from:)`.
    func decode<Value: Decodable>(_ type: Value.Type, at offset: Int) throws -> Value {
        reader.offset = offset
        // Metatype equality, not `is` casts: one pointer compare each.
        if type == String.self { return try readString(path: codingPath) as! Value }
        if type == Int.self { return try readInteger(Int.self, path: codingPath) as! Value }
        if type == Int64.self { return try readInteger(Int64.self, path: codingPath) as! Value }
        if type == UInt64.self { return try readInteger(UInt64.self, path: codingPath) as! Value }
        if type == Bool.self { return try read(path: codingPath, as: type) { reader throws(MessagePackError) in try reader.readBool() } as! Value }
        if type == Double.self { return try read(path: codingPath, as: type) { reader throws(MessagePackError) in try reader.readDouble() } as! Value }
        if type == Data.self { return try readBytes { Data($0) } as! Value }
        if type == [UInt8].self { return try readBytes { Array($0) } as! Value }
        if type == Date.self { return try readDate() as! Value }
        if type == MessagePackValue.self {
            return try read(path: codingPath, as: type) { reader throws(MessagePackError) in try reader.readValue() } as! Value
        }
        if type == MessagePackTimestamp.self {
            return try read(path: codingPath, as: type) { reader throws(MessagePackError) in try reader.readTimestamp() } as! Value
        }
        let saved = valueStart
        valueStart = offset
        defer { valueStart = saved }
        return try Value(from: self)
    }

    /// Reads str or bin bytes into a new value made by `make` (empty for
    /// nil when Go's zero values are on).
    func readBytes<Result>(_ make: (UnsafeRawBufferPointer) -> Result) throws -> Result {
        if decodesNilAsEmpty && reader.nextIsNil() {
            reader.offset += 1
            return make(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        return try read(path: codingPath, as: [UInt8].self) { reader throws(MessagePackError) in try reader.withStringBytes(make) }
    }

    /// A `Date` from a timestamp extension or from Go `time.Time` bytes.
    private func readDate() throws -> Date {
        if (try? reader.peekType()) == .extension {
            return try read(path: codingPath, as: Date.self) { reader throws(MessagePackError) in try reader.readTimestamp() }.date
        }
        let start = reader.offset
        let bytes = try read(path: codingPath, as: Date.self) { reader throws(MessagePackError) in try reader.readStringBytes() }
        do {
            return try GoTime(marshaledBinary: bytes.readableBytesView).date
        } catch {
            throw Self.decodingError(MessagePackError(error.kind, offset: start), type: Date.self, path: codingPath)
        }
    }
}

// MARK: - Map index

/// The keys of one map and where each value starts. Small maps (structs)
/// are searched linearly; large ones (dictionaries) get a hash index.
struct MapIndex {
    enum EntryKey {
        /// A str key: where its bytes are in the input.
        case string(offset: Int, length: Int)
        case int(Int64)
        /// A key no `CodingKey` can name (nil, bool, float, bin, a container).
        case other
    }

    struct Entry {
        var key: EntryKey
        var valueOffset: Int
    }

    /// Maps above this many entries get a hash index.
    static let linearSearchLimit = 16

    private(set) var entries: [Entry] = []
    private var byString: [String: Int]?
    private var byInt: [Int64: Int]?
    /// The input, kept alive for `bytes` (see `MessagePackReader.bytes`).
    private var storage = ByteBuffer()
    private var bytes = UnsafeRawBufferPointer(start: nil, count: 0)

    init() {}

    init(reading reader: inout MessagePackReader) throws(MessagePackError) {
        let count = try reader.readMapHeader()
        storage = reader.storage
        bytes = reader.bytes
        entries.reserveCapacity(Swift.min(count, reader.remainingBytes / 2))
        for _ in 0..<count {
            let key: EntryKey
            switch try reader.peekType() {
            case .string:
                let length = try reader.readStringBytes().readableBytes
                key = .string(offset: reader.offset - length, length: length)
            case .int, .uint:
                key = (try? reader.readInteger(as: Int64.self)).map(EntryKey.int) ?? .other
                if case .other = key { try reader.skipValue() }
            default:
                try reader.skipValue()
                key = .other
            }
            entries.append(Entry(key: key, valueOffset: reader.offset))
            try reader.skipValue()
        }
        if count > Self.linearSearchLimit {
            buildHashIndex()
        }
    }

    private mutating func buildHashIndex() {
        var byString: [String: Int] = [:]
        var byInt: [Int64: Int] = [:]
        for (position, entry) in entries.enumerated() {
            switch entry.key {
            case .string(let offset, let length):
                if let string = keyString(offset: offset, length: length) { byString[string] = position }
            case .int(let value): byInt[value] = position
            case .other: break
            }
        }
        self.byString = byString
        self.byInt = byInt
    }

    func keyString(offset: Int, length: Int) -> String? {
        MessagePackReader.makeString(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]))
    }

    /// The value offset for `key`; with duplicate keys the last one wins,
    /// as in Go.
    func valueOffset(for key: some CodingKey) -> Int? {
        if let byString, let byInt {
            if let int = key.intValue, let position = byInt[Int64(int)] { return entries[position].valueOffset }
            return byString[key.stringValue].map { entries[$0].valueOffset }
        }
        let int = key.intValue.map(Int64.init)
        var name = key.stringValue
        return name.withUTF8 { name in
            for entry in entries.reversed() {
                switch entry.key {
                case .string(let offset, let length):
                    if length == name.count, length == 0 || memcmp(bytes.baseAddress! + offset, name.baseAddress!, length) == 0 {
                        return entry.valueOffset
                    }
                case .int(let value):
                    if value == int { return entry.valueOffset }
                case .other:
                    break
                }
            }
            return nil
        }
    }

    /// Every key a `CodingKey` can name, in wire order.
    func allKeys<Key: CodingKey>(as type: Key.Type) -> [Key] {
        entries.compactMap { entry in
            switch entry.key {
            case .string(let offset, let length): return keyString(offset: offset, length: length).flatMap(Key.init(stringValue:))
            case .int(let value): return Int(exactly: value).flatMap(Key.init(intValue:))
            case .other: return nil
            }
        }
    }
}

// MARK: - Containers

struct MessagePackKeyedDecodingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoding: MessagePackDecoding
    let index: MapIndex
    let codingPath: [any CodingKey]

    var allKeys: [Key] { index.allKeys(as: Key.self) }

    func contains(_ key: Key) -> Bool { index.valueOffset(for: key) != nil }

    private func seek(_ key: Key) throws {
        guard let offset = index.valueOffset(for: key) else {
            throw DecodingError.keyNotFound(
                key,
                DecodingError.Context(codingPath: codingPath, debugDescription: "no value for key \"\(key.stringValue)\" in the map")
            )
        }
        decoding.reader.offset = offset
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        try seek(key)
        return decoding.reader.nextIsNil()
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        try seek(key)
        return try decoding.read(path: codingPath + [key], as: type) { reader throws(MessagePackError) in try reader.readBool() }
    }

    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        try seek(key)
        return try decoding.readString(path: codingPath + [key])
    }

    func decode(_ type: Double.Type, forKey key: Key) throws -> Double {
        try seek(key)
        return try decoding.read(path: codingPath + [key], as: type) { reader throws(MessagePackError) in try reader.readDouble() }
    }

    func decode(_ type: Float.Type, forKey key: Key) throws -> Float {
        try seek(key)
        return try decoding.read(path: codingPath + [key], as: type) { reader throws(MessagePackError) in try reader.readFloat() }
    }

    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try integer(type, key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try integer(type, key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try integer(type, key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try integer(type, key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try integer(type, key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try integer(type, key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try integer(type, key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try integer(type, key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try integer(type, key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try integer(type, key) }

    private func integer<Integer: FixedWidthInteger>(_ type: Integer.Type, _ key: Key) throws -> Integer {
        try seek(key)
        return try decoding.readInteger(type, path: codingPath + [key])
    }

    func decode<Value: Decodable>(_ type: Value.Type, forKey key: Key) throws -> Value {
        try seek(key)
        let offset = decoding.reader.offset
        decoding.codingPath.append(key)
        defer { decoding.codingPath.removeLast() }
        return try decoding.decode(type, at: offset)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try seek(key)
        return try decoding.keyedContainer(keyedBy: type, at: decoding.reader.offset, path: codingPath + [key])
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try seek(key)
        return try decoding.unkeyedContainer(at: decoding.reader.offset, path: codingPath + [key])
    }

    func superDecoder() throws -> any Decoder {
        try superDecoder(named: MessagePackCodingKey(stringValue: "super"))
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        try superDecoder(named: key)
    }

    private func superDecoder(named key: some CodingKey) throws -> any Decoder {
        guard let offset = index.valueOffset(for: key) else {
            throw DecodingError.keyNotFound(key, DecodingError.Context(codingPath: codingPath, debugDescription: "no value for key \"\(key.stringValue)\""))
        }
        return decoding.subDecoder(at: offset, path: codingPath + [key])
    }
}

struct MessagePackUnkeyedDecodingContainer: UnkeyedDecodingContainer {
    let decoding: MessagePackDecoding
    let codingPath: [any CodingKey]
    let count: Int?
    private(set) var currentIndex = 0
    /// Where the next element starts.
    private var nextOffset: Int

    init(decoding: MessagePackDecoding, count: Int, firstOffset: Int, codingPath: [any CodingKey]) {
        self.decoding = decoding
        self.count = count
        self.nextOffset = firstOffset
        self.codingPath = codingPath
    }

    var isAtEnd: Bool { currentIndex >= count! }

    private var elementPath: [any CodingKey] { codingPath + [MessagePackCodingKey(intValue: currentIndex)] }

    /// Positions the reader on the next element, or throws past the end.
    private func seek<T>(_ type: T.Type) throws {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                type,
                DecodingError.Context(codingPath: elementPath, debugDescription: "the array has only \(count!) elements")
            )
        }
        decoding.reader.offset = nextOffset
    }

    /// Reads the next element with a reader operation that consumes exactly
    /// that element.
    private mutating func next<T>(_ type: T.Type, _ body: (inout MessagePackReader) throws(MessagePackError) -> T) throws -> T {
        try seek(type)
        let value = try decoding.read(path: elementPath, as: type, body)
        nextOffset = decoding.reader.offset
        currentIndex += 1
        return value
    }

    mutating func decodeNil() throws -> Bool {
        try seek(Never?.self)
        guard decoding.reader.nextIsNil() else { return false }
        nextOffset += 1
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(type) { reader throws(MessagePackError) in try reader.readBool() } }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(type) { reader throws(MessagePackError) in try reader.readDouble() } }
    mutating func decode(_ type: Float.Type) throws -> Float { try next(type) { reader throws(MessagePackError) in try reader.readFloat() } }
    mutating func decode(_ type: String.Type) throws -> String {
        try seek(type)
        let value = try decoding.readString(path: elementPath)
        nextOffset = decoding.reader.offset
        currentIndex += 1
        return value
    }
    mutating func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    private mutating func integer<Integer: FixedWidthInteger>(_ type: Integer.Type) throws -> Integer {
        try next(type) { reader throws(MessagePackError) in try reader.readInteger(as: type) }
    }

    /// Finds where the next element ends before it is decoded, since a
    /// nested `init(from:)` may leave the reader anywhere inside it.
    private mutating func skipTarget<T>(_ type: T.Type) throws -> (start: Int, end: Int) {
        try seek(type)
        let start = nextOffset
        let end = try decoding.read(path: elementPath, as: type) { reader throws(MessagePackError) in try reader.endOfValue() }
        return (start, end)
    }

    mutating func decode<Value: Decodable>(_ type: Value.Type) throws -> Value {
        let (start, end) = try skipTarget(type)
        decoding.codingPath.append(MessagePackCodingKey(intValue: currentIndex))
        defer { decoding.codingPath.removeLast() }
        let value = try decoding.decode(type, at: start)
        nextOffset = end
        currentIndex += 1
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (start, end) = try skipTarget(KeyedDecodingContainer<NestedKey>.self)
        let container = try decoding.keyedContainer(keyedBy: type, at: start, path: elementPath)
        nextOffset = end
        currentIndex += 1
        return container
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (start, end) = try skipTarget((any UnkeyedDecodingContainer).self)
        let container = try decoding.unkeyedContainer(at: start, path: elementPath)
        nextOffset = end
        currentIndex += 1
        return container
    }

    mutating func superDecoder() throws -> any Decoder {
        let (start, end) = try skipTarget((any Decoder).self)
        let decoder = decoding.subDecoder(at: start, path: elementPath)
        nextOffset = end
        currentIndex += 1
        return decoder
    }
}

struct MessagePackSingleValueDecodingContainer: SingleValueDecodingContainer {
    let decoding: MessagePackDecoding
    let offset: Int
    let codingPath: [any CodingKey]

    private func read<T>(_ type: T.Type, _ body: (inout MessagePackReader) throws(MessagePackError) -> T) throws -> T {
        decoding.reader.offset = offset
        return try decoding.read(path: codingPath, as: type, body)
    }

    func decodeNil() -> Bool {
        decoding.reader.offset = offset
        return decoding.reader.nextIsNil()
    }

    func decode(_ type: Bool.Type) throws -> Bool { try read(type) { reader throws(MessagePackError) in try reader.readBool() } }
    func decode(_ type: String.Type) throws -> String {
        decoding.reader.offset = offset
        return try decoding.readString(path: codingPath)
    }
    func decode(_ type: Double.Type) throws -> Double { try read(type) { reader throws(MessagePackError) in try reader.readDouble() } }
    func decode(_ type: Float.Type) throws -> Float { try read(type) { reader throws(MessagePackError) in try reader.readFloat() } }
    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    private func integer<Integer: FixedWidthInteger>(_ type: Integer.Type) throws -> Integer {
        try read(type) { reader throws(MessagePackError) in try reader.readInteger(as: type) }
    }

    func decode<Value: Decodable>(_ type: Value.Type) throws -> Value {
        try decoding.decode(type, at: offset)
    }
}
