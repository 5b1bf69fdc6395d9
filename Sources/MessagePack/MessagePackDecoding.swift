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
    private(set) var decodesNilAsEmpty: Bool
    private(set) var sendableUserInfo: [CodingUserInfoKey: any Sendable]
    /// A stack: containers name their path by depth in it (see
    /// ``ContainerPath``), so pushing a key never copies it.
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { sendableUserInfo }
    /// The entries of small maps' indexes (see ``MapIndex``), one after
    /// another; kept with its memory from one decode to the next.
    var mapArena: [MapIndex.Entry] = []

    /// Decodings kept for reuse (see ``SpareObjects``).
    static let spares = SpareObjects<MessagePackDecoding>()
    /// Input kept by a spare decoding instead of the last message.
    private static let noInput = ByteBuffer()

    /// Where the value now being decoded through `init(from:)` starts; every
    /// container asked for reads from here, however often it is asked for.
    private var valueStart = 0

    init(reader: MessagePackReader, decodesNilAsEmpty: Bool, userInfo: [CodingUserInfoKey: any Sendable]) {
        self.reader = reader
        self.decodesNilAsEmpty = decodesNilAsEmpty
        self.sendableUserInfo = userInfo
    }

    /// Starts decoding another message with a spare decoding.
    func begin(reader: MessagePackReader, decodesNilAsEmpty: Bool, userInfo: [CodingUserInfoKey: any Sendable]) {
        self.reader = reader
        self.decodesNilAsEmpty = decodesNilAsEmpty
        self.sendableUserInfo = userInfo
    }

    /// Ends a decode, finished or failed: lets go of the input and the user
    /// info, keeps the memory of the stacks. Whether it is fit for reuse.
    func end() -> Bool {
        reader = MessagePackReader(Self.noInput)
        sendableUserInfo = [:]
        codingPath.removeAll(keepingCapacity: true)
        mapArena.removeAll(keepingCapacity: true)
        valueStart = 0
        return mapArena.capacity <= 2 * MapIndex.arenaLimit
    }

    // MARK: - Decoder

    /// The path of the value now being decoded, as containers keep it.
    var currentPath: ContainerPath { ContainerPath(depth: codingPath.count) }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        try keyedContainer(keyedBy: type, at: valueStart, path: currentPath)
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try unkeyedContainer(at: valueStart, path: currentPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        MessagePackSingleValueDecodingContainer(decoding: self, offset: valueStart, path: currentPath)
    }

    func keyedContainer<Key: CodingKey>(keyedBy type: Key.Type, at offset: Int, path: ContainerPath) throws -> KeyedDecodingContainer<Key> {
        reader.offset = offset
        if decodesNilAsEmpty && reader.nextIsNil() {
            return KeyedDecodingContainer(MessagePackKeyedDecodingContainer<Key>(decoding: self, index: MapIndex(), path: path))
        }
        let index = try read(path: path.keys(in: self), as: [String: Any].self) { reader throws(MessagePackError) in
            try MapIndex(reading: &reader, arena: &mapArena)
        }
        return KeyedDecodingContainer(MessagePackKeyedDecodingContainer<Key>(decoding: self, index: index, path: path))
    }

    func unkeyedContainer(at offset: Int, path: ContainerPath) throws -> any UnkeyedDecodingContainer {
        reader.offset = offset
        if decodesNilAsEmpty && reader.nextIsNil() {
            return MessagePackUnkeyedDecodingContainer(decoding: self, count: 0, firstOffset: offset + 1, path: path)
        }
        let count = try read(path: path.keys(in: self), as: [Any].self) { reader throws(MessagePackError) in try reader.readArrayHeader() }
        return MessagePackUnkeyedDecodingContainer(decoding: self, count: count, firstOffset: reader.offset, path: path)
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
        switch error.code {
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
        if let selfDecoding = type as? any MessagePackSelfDecodable.Type {
            return try selfDecoding.readChecked(as: Value.self, with: &reader, path: codingPath)
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
            throw Self.decodingError(MessagePackError(error.detail, offset: start), type: Date.self, path: codingPath)
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
    /// Entries of small maps go into the decoding's arena up to this many in
    /// one decode (so a long array of structs does not hold them all);
    /// after that each map has its own array, as large maps do.
    static let arenaLimit = 1024

    /// The entries, when not in the arena.
    private var owned: [Entry] = []
    /// Where the entries are in the decoding's arena, when they are.
    private var arenaRange: Range<Int>?
    private var byString: [String: Int]?
    private var byInt: [Int64: Int]?
    /// The input, kept alive for `bytes` (see `MessagePackReader.bytes`).
    private var storage = ByteBuffer()
    private var bytes = UnsafeRawBufferPointer(start: nil, count: 0)

    init() {}

    /// Indexes the map at the reader's offset. A small map's entries are
    /// appended to `arena` (no allocation once the arena has grown), others
    /// get their own array.
    init(reading reader: inout MessagePackReader, arena: inout [Entry]) throws(MessagePackError) {
        let count = try reader.readMapHeader()
        storage = reader.storage
        bytes = reader.bytes
        let inArena = count <= Self.linearSearchLimit && arena.count + count <= Self.arenaLimit
        let start = arena.count
        if !inArena {
            owned.reserveCapacity(Swift.min(count, reader.remainingBytes / 2))
        }
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
            if inArena {
                arena.append(Entry(key: key, valueOffset: reader.offset))
            } else {
                owned.append(Entry(key: key, valueOffset: reader.offset))
            }
            try reader.skipValue()
        }
        if inArena {
            arenaRange = start..<arena.count
        } else if count > Self.linearSearchLimit {
            buildHashIndex()
        }
    }

    /// Runs `body` with the entries, wherever they are.
    private func withEntries<Result>(in decoding: MessagePackDecoding, _ body: (UnsafeBufferPointer<Entry>) -> Result) -> Result {
        if let arenaRange {
            return decoding.mapArena.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[arenaRange])) }
        }
        return owned.withUnsafeBufferPointer(body)
    }

    private mutating func buildHashIndex() {
        var byString: [String: Int] = [:]
        var byInt: [Int64: Int] = [:]
        for (position, entry) in owned.enumerated() {
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
    func valueOffset(for key: some CodingKey, in decoding: MessagePackDecoding) -> Int? {
        if let byString, let byInt {
            if let int = key.intValue, let position = byInt[Int64(int)] { return owned[position].valueOffset }
            return byString[key.stringValue].map { owned[$0].valueOffset }
        }
        let int = key.intValue.map(Int64.init)
        var name = key.stringValue
        return name.withUTF8 { name in withEntries(in: decoding) { entries in
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
        } }
    }

    /// Every key a `CodingKey` can name, in wire order.
    func allKeys<Key: CodingKey>(as type: Key.Type, in decoding: MessagePackDecoding) -> [Key] {
        withEntries(in: decoding) { $0.compactMap { entry in
            switch entry.key {
            case .string(let offset, let length): return keyString(offset: offset, length: length).flatMap(Key.init(stringValue:))
            case .int(let value): return Int(exactly: value).flatMap(Key.init(intValue:))
            case .other: return nil
            }
        } }
    }
}

/// A container's coding path: the decoding's path as it was when the
/// container was made (its first `depth` keys: the path is a stack, and a
/// container is read from only while its value is being decoded), plus
/// keys of nested containers, which are not pushed. Holding a copy of the
/// decoding's array instead would make the next key pushed copy it.
struct ContainerPath {
    var depth: Int
    var extra: [any CodingKey] = []

    func keys(in decoding: MessagePackDecoding) -> [any CodingKey] {
        Array(decoding.codingPath.prefix(depth)) + extra
    }

    func appending(_ key: some CodingKey) -> ContainerPath {
        ContainerPath(depth: depth, extra: extra + [key])
    }
}

// MARK: - Containers

struct MessagePackKeyedDecodingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoding: MessagePackDecoding
    let index: MapIndex
    let path: ContainerPath
    var codingPath: [any CodingKey] { path.keys(in: decoding) }

    var allKeys: [Key] { index.allKeys(as: Key.self, in: decoding) }

    func contains(_ key: Key) -> Bool { index.valueOffset(for: key, in: decoding) != nil }

    private func seek(_ key: Key) throws {
        guard let offset = index.valueOffset(for: key, in: decoding) else {
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
        return try decoding.keyedContainer(keyedBy: type, at: decoding.reader.offset, path: path.appending(key))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try seek(key)
        return try decoding.unkeyedContainer(at: decoding.reader.offset, path: path.appending(key))
    }

    func superDecoder() throws -> any Decoder {
        try superDecoder(named: MessagePackCodingKey(stringValue: "super"))
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        try superDecoder(named: key)
    }

    private func superDecoder(named key: some CodingKey) throws -> any Decoder {
        guard let offset = index.valueOffset(for: key, in: decoding) else {
            throw DecodingError.keyNotFound(key, DecodingError.Context(codingPath: codingPath, debugDescription: "no value for key \"\(key.stringValue)\""))
        }
        return decoding.subDecoder(at: offset, path: codingPath + [key])
    }
}

struct MessagePackUnkeyedDecodingContainer: UnkeyedDecodingContainer {
    let decoding: MessagePackDecoding
    let path: ContainerPath
    var codingPath: [any CodingKey] { path.keys(in: decoding) }
    let count: Int?
    private(set) var currentIndex = 0
    /// Where the next element starts.
    private var nextOffset: Int

    init(decoding: MessagePackDecoding, count: Int, firstOffset: Int, path: ContainerPath) {
        self.decoding = decoding
        self.count = count
        self.nextOffset = firstOffset
        self.path = path
    }

    var isAtEnd: Bool { currentIndex >= count! }

    private var elementKey: MessagePackCodingKey { MessagePackCodingKey(intValue: currentIndex) }
    private var elementPath: [any CodingKey] { codingPath + [elementKey] }

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
        let container = try decoding.keyedContainer(keyedBy: type, at: start, path: path.appending(elementKey))
        nextOffset = end
        currentIndex += 1
        return container
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (start, end) = try skipTarget((any UnkeyedDecodingContainer).self)
        let container = try decoding.unkeyedContainer(at: start, path: path.appending(elementKey))
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
    let path: ContainerPath
    var codingPath: [any CodingKey] { path.keys(in: decoding) }

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
