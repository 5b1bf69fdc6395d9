import FoundationEssentials
import NIOCore

/// The state of one `MessagePackEncoder.encode` call: the bytes written
/// so far and the stack of containers still open in them.
///
/// The bytes go into scratch memory the encoding owns and writes through a
/// pointer; the finished value is copied into the caller's `ByteBuffer`
/// once. (Writing each value through `ByteBuffer`'s own methods would pay
/// for exclusivity and capacity checks on every call.)
///
/// A container reserves one header byte where it starts (enough for up to
/// 15 elements, which covers nearly every struct) and counts its elements
/// as they are written. When it closes, the real header goes in; a larger
/// header shifts the container's bytes right, once.
///
/// A container closes when its value's `encode(to:)` returns, or when its
/// parent is written to again (a nested container is done by then).
final class MessagePackEncoding: Encoder {
    struct OpenContainer {
        /// Identifies this container so a stale handle can be detected.
        var id: Int
        /// Offset of the reserved header byte.
        var headerIndex: Int
        var count: Int
        var isMap: Bool
    }

    private var scratch: UnsafeMutableRawPointer
    private var capacity: Int
    private var count = 0

    private(set) var options: MessagePackWriteOptions = .goCompatible
    private(set) var sendableUserInfo: [CodingUserInfoKey: any Sendable] = [:]
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { sendableUserInfo }

    private var open: [OpenContainer] = []
    private var nextContainerID = 0

    /// The value now being encoded through `encode(to:)`: how deep the
    /// container stack was when it started, where its bytes start, and the
    /// container it asked for, if any (asked again, the same one is returned).
    private var valueDepth = 0
    private var valueStart = 0
    private var valueContainerID: Int?

    /// Encodings kept for reuse (see ``SpareObjects``).
    static let spares = SpareObjects<MessagePackEncoding>()
    /// Scratch memory beyond this is not kept for reuse.
    private static let maxSpareCapacity = 64 * 1024

    init() {
        self.capacity = 256
        self.scratch = .allocate(byteCount: capacity, alignment: 16)
    }

    /// Starts an encoding: empty, with these settings.
    func begin(options: MessagePackWriteOptions, userInfo: [CodingUserInfoKey: any Sendable]) {
        self.options = options
        self.sendableUserInfo = userInfo
    }

    /// Ends an encoding, finished or failed: forgets its bytes, containers
    /// and user info, keeping the memory. Whether it is fit for reuse.
    func end() -> Bool {
        count = 0
        open.removeAll(keepingCapacity: true)
        codingPath.removeAll(keepingCapacity: true)
        nextContainerID = 0
        valueDepth = 0
        valueStart = 0
        valueContainerID = nil
        deferredError = nil
        sendableUserInfo = [:]
        return capacity <= Self.maxSpareCapacity
    }

    deinit {
        scratch.deallocate()
    }

    /// Appends what was encoded to `buffer`.
    func write(to buffer: inout ByteBuffer) {
        buffer.writeBytes(UnsafeRawBufferPointer(start: scratch, count: count))
    }

    /// Makes room for `needed` more bytes and returns where they go.
    @inline(__always)
    private func reserve(_ needed: Int) -> UnsafeMutableRawPointer {
        if count + needed > capacity {
            grow(to: count + needed)
        }
        return scratch + count
    }

    private func grow(to needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        grown.copyMemory(from: scratch, byteCount: count)
        scratch.deallocate()
        scratch = grown
        capacity = newCapacity
    }

    /// The first misuse found where the protocol gives no way to throw
    /// (nested containers, super encoders); thrown at the end.
    private var deferredError: (any Error)?

    func deferError(_ error: any Error) {
        if deferredError == nil { deferredError = error }
    }

    func encodeTopLevel<Value: Encodable>(_ value: Value) throws {
        try encode(value)
        if let deferredError { throw deferredError }
        precondition(open.isEmpty, "every container is closed when its value is done")
    }

    // MARK: - Encoder

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(MessagePackKeyedEncodingContainer<Key>(encoding: self, handle: valueContainer(isMap: true)))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        MessagePackUnkeyedEncodingContainer(encoding: self, handle: valueContainer(isMap: false))
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        MessagePackSingleValueEncodingContainer(encoding: self, start: valueStart, depth: valueDepth)
    }

    /// The container for the value being encoded: the one it already asked
    /// for, or a new one.
    private func valueContainer(isMap: Bool) -> ContainerHandle {
        if let id = valueContainerID, let depth = open.firstIndex(where: { $0.id == id }), open[depth].isMap == isMap {
            return ContainerHandle(id: id, depth: depth)
        }
        let handle = openContainer(isMap: isMap)
        valueContainerID = handle.id
        return handle
    }

    // MARK: - Containers

    struct ContainerHandle {
        var id: Int
        var depth: Int
    }

    /// Starts a container at the current end of the buffer.
    func openContainer(isMap: Bool) -> ContainerHandle {
        let id = nextContainerID
        nextContainerID += 1
        _ = reserve(1)
        open.append(OpenContainer(id: id, headerIndex: count, count: 0, isMap: isMap))
        count += 1  // the reserved header byte
        return ContainerHandle(id: id, depth: open.count - 1)
    }

    /// Makes `handle` the innermost open container, closing the nested ones
    /// its last element left open, and counts one more element in it.
    func prepareElement(in handle: ContainerHandle, path: @autoclosure () -> [any CodingKey]) throws {
        while open.count > handle.depth + 1 {
            try closeInnermost()
        }
        guard open.count == handle.depth + 1, open[handle.depth].id == handle.id else {
            throw EncodingError.invalidValue(
                (),
                EncodingError.Context(
                    codingPath: path(),
                    debugDescription: "MessagePackEncoder writes containers in order: this container was written to after a later sibling or its parent; finish a nested container before writing to its parent again"
                )
            )
        }
        open[handle.depth].count += 1
    }

    private func closeInnermost() throws {
        let container = open.removeLast()
        let count = container.count
        guard count <= MessagePackRawWriter.maxEncodableLength else {
            throw EncodingError.invalidValue(
                count,
                EncodingError.Context(codingPath: codingPath, debugDescription: MessagePackError(.lengthNotEncodable(count), offset: nil).description)
            )
        }
        let headerSize = MessagePackRawWriter.containerHeaderSize(count: count)
        let contentStart = container.headerIndex + 1
        let contentLength = self.count - contentStart
        if headerSize > 1 {
            // Make room, then move the content right.
            _ = reserve(headerSize - 1)
            self.count += headerSize - 1
            (scratch + container.headerIndex + headerSize).copyMemory(from: scratch + contentStart, byteCount: contentLength)
        }
        _ = MessagePackRawWriter.writeContainerHeader(count: count, isMap: container.isMap, to: scratch + container.headerIndex)
    }

    // MARK: - Values

    /// Encodes a key of a map.
    func encodeKey(_ key: some CodingKey) throws {
        // Integer keys (as `Dictionary<Int, _>` produces) go out as integers,
        // like a Go map[int]T; everything else by its string value.
        if let int = key.intValue, key.stringValue == String(int) {
            writeInteger(int)
        } else {
            try writeString(key.stringValue)
        }
    }

    func writeNil() {
        reserve(1).storeBytes(of: FormatByte.nil, as: UInt8.self)
        count += 1
    }

    func writeBool(_ value: Bool) {
        reserve(1).storeBytes(of: value ? FormatByte.true : FormatByte.false, as: UInt8.self)
        count += 1
    }

    func writeInteger<Integer: FixedWidthInteger>(_ value: Integer) {
        let base = reserve(9)
        if Integer.isSigned && value < 0 {
            count += MessagePackRawWriter.writeNegative(Int64(truncatingIfNeeded: value), to: base)
        } else {
            count += MessagePackRawWriter.writeUnsigned(UInt64(truncatingIfNeeded: value), to: base)
        }
    }

    func writeFloat(_ value: Float) {
        count += MessagePackRawWriter.writeFloat(value, to: reserve(5))
    }

    func writeDouble(_ value: Double) {
        count += MessagePackRawWriter.writeDouble(value, to: reserve(9))
    }

    func writeString(_ value: String) throws {
        var contiguous = value
        try contiguous.withUTF8 { utf8 in
            try writePayload(UnsafeRawBufferPointer(utf8), value: value) { count, base in
                MessagePackRawWriter.writeStringHeader(count: count, headers: options.stringHeaders, to: base)
            }
        }
    }

    func writeBytes(_ bytes: UnsafeRawBufferPointer) throws {
        try writePayload(bytes, value: bytes.count) { count, base in
            switch options.bytes {
            case .string: MessagePackRawWriter.writeStringHeader(count: count, headers: options.stringHeaders, to: base)
            case .binary: MessagePackRawWriter.writeBinaryHeader(count: count, to: base)
            }
        }
    }

    /// Writes a header (by `header`) and `payload` after it.
    private func writePayload(_ payload: UnsafeRawBufferPointer, value: @autoclosure () -> Any, header: (Int, UnsafeMutableRawPointer) -> Int) throws {
        let length = payload.count
        guard length <= MessagePackRawWriter.maxEncodableLength else {
            let error = MessagePackError(.lengthNotEncodable(length), offset: nil)
            throw EncodingError.invalidValue(value(), EncodingError.Context(codingPath: codingPath, debugDescription: error.description, underlyingError: error))
        }
        let base = reserve(5 + length)
        let headerLength = header(length, base)
        if length > 0 {
            (base + headerLength).copyMemory(from: payload.baseAddress!, byteCount: length)
        }
        count += headerLength + length
    }

    func writeTimestamp(_ timestamp: MessagePackTimestamp) {
        count += MessagePackRawWriter.writeTimestamp(timestamp, to: reserve(15))
    }

    /// Writes a dynamic value by way of a `ByteBuffer` (rare enough that
    /// the extra copy does not matter).
    func writeDynamic(_ value: MessagePackValue) throws {
        var buffer = ByteBuffer()
        do {
            try buffer.writeMessagePackValue(value, options: options)
        } catch {
            throw EncodingError.invalidValue(value, EncodingError.Context(codingPath: codingPath, debugDescription: error.description, underlyingError: error))
        }
        buffer.withUnsafeReadableBytes { bytes in
            reserve(bytes.count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            count += bytes.count
        }
    }

    /// Encodes any value: the types MessagePack has a form for directly,
    /// or else through the value's own `encode(to:)`.
    func encode<Value: Encodable>(_ value: Value) throws {
        // Exact type checks, not `as?` casts: an empty `[String]` casts to
        // `[UInt8]` successfully, and must still encode as an array.
        if Value.self == Data.self {
            try (value as! Data).withUnsafeBytes { try writeBytes($0) }
        } else if Value.self == [UInt8].self {
            try (value as! [UInt8]).withUnsafeBytes { try writeBytes($0) }
        } else if Value.self == Date.self {
            try encodeDate(value as! Date)
        } else if Value.self == MessagePackTimestamp.self {
            writeTimestamp(value as! MessagePackTimestamp)
        } else if Value.self == MessagePackValue.self {
            try writeDynamic(value as! MessagePackValue)
        } else if let selfEncoding = Value.self as? any MessagePackSelfEncodable.Type {
            try encodeSelfEncoding(value, as: selfEncoding)
        } else {
            try encodeThroughEncodable(value)
        }
    }

    /// A self-encoding value nested in an `Encodable` one: written to a
    /// buffer of its own, then copied in (the protocol writes to a
    /// `ByteBuffer`, this encoding to its scratch memory).
    private func encodeSelfEncoding<Value>(_ value: Value, as selfEncoding: any MessagePackSelfEncodable.Type) throws {
        var buffer = ByteBuffer()
        try selfEncoding.writeChecked(value, into: &buffer, options: options, codingPath: codingPath)
        buffer.withUnsafeReadableBytes { bytes in
            reserve(bytes.count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            count += bytes.count
        }
    }

    private func encodeDate(_ date: Date) throws {
        switch options.dates {
        case .goTime:
            let bytes = GoTime(date).marshalBinary()
            try bytes.withUnsafeBytes { try writeBytes($0) }
        case .timestampExtension:
            writeTimestamp(MessagePackTimestamp(date))
        }
    }

    private func encodeThroughEncodable<Value: Encodable>(_ value: Value) throws {
        let saved = (valueDepth, valueStart, valueContainerID)
        valueDepth = open.count
        valueStart = count
        valueContainerID = nil
        defer { (valueDepth, valueStart, valueContainerID) = saved }

        try value.encode(to: self)

        // The value is done: close what it opened.
        while open.count > valueDepth {
            try closeInnermost()
        }
        // A value that wrote nothing at all is an empty struct: an empty map,
        // as Go writes one.
        if count == valueStart {
            reserve(1).storeBytes(of: FormatByte.fixmap, as: UInt8.self)
            count += 1
        }
    }

    /// For the single-value container: true if nothing was written for the
    /// value that started at `start` yet.
    func isUnwritten(since start: Int, depth: Int) -> Bool {
        count == start && open.count == depth
    }
}

// MARK: - Containers

struct MessagePackKeyedEncodingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoding: MessagePackEncoding
    let handle: MessagePackEncoding.ContainerHandle
    /// The container's coding path is the encoding's path as it was when
    /// the container was made: its first `pathDepth` keys (the path is a
    /// stack, and a container is written to only while it is on top).
    /// Holding a copy of the array instead would make the next key pushed
    /// copy it.
    let pathDepth: Int
    var codingPath: [any CodingKey] { Array(encoding.codingPath.prefix(pathDepth)) }

    init(encoding: MessagePackEncoding, handle: MessagePackEncoding.ContainerHandle) {
        self.encoding = encoding
        self.handle = handle
        self.pathDepth = encoding.codingPath.count
    }

    private func begin(_ key: Key) throws {
        try encoding.prepareElement(in: handle, path: codingPath + [key])
        try encoding.encodeKey(key)
    }

    mutating func encodeNil(forKey key: Key) throws { try begin(key); encoding.writeNil() }
    mutating func encode(_ value: Bool, forKey key: Key) throws { try begin(key); encoding.writeBool(value) }
    mutating func encode(_ value: String, forKey key: Key) throws { try begin(key); try encoding.writeString(value) }
    mutating func encode(_ value: Double, forKey key: Key) throws { try begin(key); encoding.writeDouble(value) }
    mutating func encode(_ value: Float, forKey key: Key) throws { try begin(key); encoding.writeFloat(value) }
    mutating func encode(_ value: Int, forKey key: Key) throws { try begin(key); encoding.writeInteger(value) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { try begin(key); encoding.writeInteger(value) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { try begin(key); encoding.writeInteger(value) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try begin(key); encoding.writeInteger(value) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { try begin(key); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try begin(key); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { try begin(key); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { try begin(key); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { try begin(key); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try begin(key); encoding.writeInteger(value) }

    mutating func encode<Value: Encodable>(_ value: Value, forKey key: Key) throws {
        try begin(key)
        encoding.codingPath.append(key)
        defer { encoding.codingPath.removeLast() }
        try encoding.encode(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type,
        forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let handle = nestedHandle(forKey: key, isMap: true)
        encoding.codingPath.append(key)
        defer { encoding.codingPath.removeLast() }
        return KeyedEncodingContainer(MessagePackKeyedEncodingContainer<NestedKey>(encoding: encoding, handle: handle))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let handle = nestedHandle(forKey: key, isMap: false)
        encoding.codingPath.append(key)
        defer { encoding.codingPath.removeLast() }
        return MessagePackUnkeyedEncodingContainer(encoding: encoding, handle: handle)
    }

    /// Nested containers cannot throw; a misuse found here is reported by
    /// the next throwing call (the parent's element count stays right).
    private func nestedHandle(forKey key: Key, isMap: Bool) -> MessagePackEncoding.ContainerHandle {
        do {
            try begin(key)
        } catch {
            encoding.deferError(error)
        }
        return encoding.openContainer(isMap: isMap)
    }

    mutating func superEncoder() -> any Encoder {
        MessagePackSuperEncoder(encoding: encoding, handle: nestedSuperHandle(key: MessagePackCodingKey(stringValue: "super")))
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        MessagePackSuperEncoder(encoding: encoding, handle: nestedSuperHandle(key: key))
    }

    private func nestedSuperHandle(key: some CodingKey) -> MessagePackEncoding.ContainerHandle {
        do {
            try encoding.prepareElement(in: handle, path: codingPath + [key])
            try encoding.encodeKey(key)
        } catch {
            encoding.deferError(error)
        }
        return handle
    }
}

struct MessagePackUnkeyedEncodingContainer: UnkeyedEncodingContainer {
    let encoding: MessagePackEncoding
    let handle: MessagePackEncoding.ContainerHandle
    /// As in ``MessagePackKeyedEncodingContainer``.
    let pathDepth: Int
    var codingPath: [any CodingKey] { Array(encoding.codingPath.prefix(pathDepth)) }
    private(set) var count = 0

    init(encoding: MessagePackEncoding, handle: MessagePackEncoding.ContainerHandle) {
        self.encoding = encoding
        self.handle = handle
        self.pathDepth = encoding.codingPath.count
    }

    private mutating func begin() throws {
        try encoding.prepareElement(in: handle, path: codingPath + [MessagePackCodingKey(intValue: count)])
        count += 1
    }

    mutating func encodeNil() throws { try begin(); encoding.writeNil() }
    mutating func encode(_ value: Bool) throws { try begin(); encoding.writeBool(value) }
    mutating func encode(_ value: String) throws { try begin(); try encoding.writeString(value) }
    mutating func encode(_ value: Double) throws { try begin(); encoding.writeDouble(value) }
    mutating func encode(_ value: Float) throws { try begin(); encoding.writeFloat(value) }
    mutating func encode(_ value: Int) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: Int8) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: Int16) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: Int32) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: Int64) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt8) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt16) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt32) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt64) throws { try begin(); encoding.writeInteger(value) }

    mutating func encode<Value: Encodable>(_ value: Value) throws {
        let index = count
        try begin()
        encoding.codingPath.append(MessagePackCodingKey(intValue: index))
        defer { encoding.codingPath.removeLast() }
        try encoding.encode(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let handle = nestedHandle(isMap: true)
        return KeyedEncodingContainer(MessagePackKeyedEncodingContainer<NestedKey>(encoding: encoding, handle: handle))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        MessagePackUnkeyedEncodingContainer(encoding: encoding, handle: nestedHandle(isMap: false))
    }

    private mutating func nestedHandle(isMap: Bool) -> MessagePackEncoding.ContainerHandle {
        do {
            try begin()
        } catch {
            encoding.deferError(error)
        }
        return encoding.openContainer(isMap: isMap)
    }

    mutating func superEncoder() -> any Encoder {
        do {
            try begin()
        } catch {
            encoding.deferError(error)
        }
        return MessagePackSuperEncoder(encoding: encoding, handle: handle)
    }
}

struct MessagePackSingleValueEncodingContainer: SingleValueEncodingContainer {
    let encoding: MessagePackEncoding
    let start: Int
    let depth: Int
    var codingPath: [any CodingKey] { encoding.codingPath }

    init(encoding: MessagePackEncoding, start: Int, depth: Int) {
        self.encoding = encoding
        self.start = start
        self.depth = depth
    }

    private func begin() throws {
        guard encoding.isUnwritten(since: start, depth: depth) else {
            throw EncodingError.invalidValue(
                (),
                EncodingError.Context(codingPath: codingPath, debugDescription: "a single value container holds one value; this one was written to already")
            )
        }
    }

    mutating func encodeNil() throws { try begin(); encoding.writeNil() }
    mutating func encode(_ value: Bool) throws { try begin(); encoding.writeBool(value) }
    mutating func encode(_ value: String) throws { try begin(); try encoding.writeString(value) }
    mutating func encode(_ value: Double) throws { try begin(); encoding.writeDouble(value) }
    mutating func encode(_ value: Float) throws { try begin(); encoding.writeFloat(value) }
    mutating func encode(_ value: Int) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: Int8) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: Int16) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: Int32) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: Int64) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt8) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt16) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt32) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode(_ value: UInt64) throws { try begin(); encoding.writeInteger(value) }
    mutating func encode<Value: Encodable>(_ value: Value) throws { try begin(); try encoding.encode(value) }
}

/// The encoder `superEncoder()` returns: the parent's key (or element) is
/// already written, and whatever the superclass encodes becomes its value.
/// Use it before writing to the parent again.
struct MessagePackSuperEncoder: Encoder {
    let encoding: MessagePackEncoding
    let handle: MessagePackEncoding.ContainerHandle
    var codingPath: [any CodingKey] { encoding.codingPath }
    var userInfo: [CodingUserInfoKey: Any] { encoding.userInfo }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(MessagePackKeyedEncodingContainer<Key>(encoding: encoding, handle: encoding.openContainer(isMap: true)))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        MessagePackUnkeyedEncodingContainer(encoding: encoding, handle: encoding.openContainer(isMap: false))
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        MessagePackSuperValueContainer(encoding: encoding)
    }
}

/// Single value written as the value of a `superEncoder()` slot.
struct MessagePackSuperValueContainer: SingleValueEncodingContainer {
    let encoding: MessagePackEncoding
    var codingPath: [any CodingKey] { encoding.codingPath }

    mutating func encodeNil() throws { encoding.writeNil() }
    mutating func encode<Value: Encodable>(_ value: Value) throws { try encoding.encode(value) }
}

/// A coding key for array indices and the `super` key.
struct MessagePackCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?

    init(stringValue: String) {
        self.stringValue = stringValue
        self.intValue = nil
    }

    init(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}
