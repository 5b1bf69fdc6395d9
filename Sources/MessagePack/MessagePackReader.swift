public import NIOCore

/// Reads MessagePack values one after another from a buffer that holds
/// them completely.
///
/// The reader never copies payloads it can slice: ``readStringBytes()``,
/// ``readBinary()`` and ``readExtension()`` return `ByteBuffer` slices of
/// the input. Every error carries the offset, counted from where the reader
/// started, at which it was found; a failed read leaves the reader where it
/// was.
///
/// For input that is still arriving, find the value's end first with
/// ``MessagePackValueScanner`` (or use ``NIOCore/ByteBuffer/readMessagePackValue(limits:)``),
/// then read it.
public struct MessagePackReader {
    /// Keeps the input alive and serves zero-copy slices of it.
    @usableFromInline let storage: ByteBuffer
    /// The readable bytes of `storage`, read through directly (each
    /// `ByteBuffer` accessor costs an exclusivity check and bounds checks,
    /// which would be most of the reading time).
    ///
    /// Keeping this pointer outside `withUnsafeReadableBytes` is sound:
    /// `storage` holds a reference to the same memory, so it is not freed
    /// while the reader lives, and `ByteBuffer` is copy-on-write, so no
    /// other holder can write to memory this reference shares.
    @usableFromInline let bytes: UnsafeRawBufferPointer
    /// Bounds on lengths, counts and depth.
    public let limits: MessagePackLimits
    /// Where the next value starts, counted from the first byte given.
    public var offset: Int {
        get { position }
        set { position = newValue }
    }
    @usableFromInline var position: Int

    /// Reads `buffer`'s readable bytes, which the reader does not consume.
    @inlinable
    public init(_ buffer: ByteBuffer, limits: MessagePackLimits = .default) {
        self.storage = buffer
        self.bytes = buffer.withUnsafeReadableBytes { $0 }
        self.limits = limits
        self.position = 0
    }

    /// True when every byte has been read.
    @inlinable
    public var isAtEnd: Bool { position >= bytes.count }

    /// Bytes not yet read.
    @inlinable
    public var remainingBytes: Int { bytes.count - position }

    /// The type of the next value, or `nil` at the end of the input.
    public func peekType() throws(MessagePackError) -> MessagePackType? {
        guard let byte = peekFormat() else { return nil }
        guard let type = MessagePackType(formatByte: byte) else {
            throw MessagePackError(.invalidFormatByte(byte), offset: position)
        }
        return type
    }

    /// True when the next value is nil (which is not consumed).
    @inlinable
    public func nextIsNil() -> Bool { peekFormat() == FormatByte.nil }

    @inlinable
    func peekFormat() -> UInt8? {
        position < bytes.count ? bytes[position] : nil
    }

    /// Loads a big-endian integer at `position + offset`, or `nil` when the
    /// input ends before it.
    @inlinable
    func load<T: FixedWidthInteger>(_: T.Type, after offset: Int) -> T? {
        let start = position + offset
        guard start + MemoryLayout<T>.size <= bytes.count else { return nil }
        return T(bigEndian: bytes.loadUnaligned(fromByteOffset: start, as: T.self))
    }

    // MARK: - Scalars

    /// Reads nil.
    @inlinable
    public mutating func readNil() throws(MessagePackError) {
        let format = try readFormat()
        guard format == FormatByte.nil else { throw mismatch("nil", format) }
        position += 1
    }

    /// Reads a bool.
    @inlinable
    public mutating func readBool() throws(MessagePackError) -> Bool {
        let format = try readFormat()
        switch format {
        case FormatByte.true: position += 1; return true
        case FormatByte.false: position += 1; return false
        default: throw mismatch("bool", format)
        }
    }

    /// Reads any integer encoding into `Integer`, failing with
    /// ``MessagePackError/Code/integerOverflow`` when the value
    /// does not fit.
    @inlinable
    public mutating func readInteger<Integer: FixedWidthInteger>(as type: Integer.Type = Integer.self) throws(MessagePackError) -> Integer {
        let format = try readFormat()
        if format <= FormatByte.positiveFixintMax {
            position += 1
            return Integer(truncatingIfNeeded: format)  // 0...127 fits every integer type
        }
        let result: Integer?
        let length: Int
        switch format {
        case 0xe0...0xff: result = Integer(exactly: Int8(bitPattern: format)); length = 1
        case FormatByte.uint8: (result, length) = try convert(UInt8.self)
        case FormatByte.uint16: (result, length) = try convert(UInt16.self)
        case FormatByte.uint32: (result, length) = try convert(UInt32.self)
        case FormatByte.uint64: (result, length) = try convert(UInt64.self)
        case FormatByte.int8: (result, length) = try convert(Int8.self)
        case FormatByte.int16: (result, length) = try convert(Int16.self)
        case FormatByte.int32: (result, length) = try convert(Int32.self)
        case FormatByte.int64: (result, length) = try convert(Int64.self)
        default: throw mismatch("integer", format)
        }
        guard let result else {
            throw MessagePackError(.integerOverflow(value: integerText(format), type: "\(Integer.self)"), offset: position)
        }
        position += length
        return result
    }

    @inlinable
    func convert<Wire: FixedWidthInteger, Integer: FixedWidthInteger>(_: Wire.Type) throws(MessagePackError) -> (Integer?, Int) {
        guard let wire = load(Wire.self, after: 1) else {
            throw truncated(needing: 1 + MemoryLayout<Wire>.size)
        }
        return (Integer(exactly: wire), 1 + MemoryLayout<Wire>.size)
    }

    /// The integer at `position` as text, for an overflow message.
    @usableFromInline
    func integerText(_ format: UInt8) -> String {
        switch format {
        case FormatByte.uint64: return String(load(UInt64.self, after: 1) ?? 0)
        default:
            var copy = self
            return (try? copy.readInteger(as: Int64.self)).map { String($0) } ?? "?"
        }
    }

    /// Reads a float 32, or a float 64 that converts to `Float` exactly
    /// (as go-msgpack reads a float64 into a float32 field).
    public mutating func readFloat() throws(MessagePackError) -> Float {
        let format = try readFormat()
        switch format {
        case FormatByte.float32:
            guard let bits = load(UInt32.self, after: 1) else { throw truncated(needing: 5) }
            position += 5
            return Float(bitPattern: bits)
        case FormatByte.float64:
            guard let bits = load(UInt64.self, after: 1) else { throw truncated(needing: 9) }
            let double = Double(bitPattern: bits)
            guard let float = Float(exactly: double) ?? (double.isNaN ? Float.nan : nil) else {
                throw MessagePackError(.typeMismatch(expected: "float 32", found: "float 64 \(double)"), offset: position)
            }
            position += 9
            return float
        default:
            throw mismatch("float", format)
        }
    }

    /// Reads a float 64 or a float 32.
    public mutating func readDouble() throws(MessagePackError) -> Double {
        let format = try readFormat()
        switch format {
        case FormatByte.float64:
            guard let bits = load(UInt64.self, after: 1) else { throw truncated(needing: 9) }
            position += 9
            return Double(bitPattern: bits)
        case FormatByte.float32:
            guard let bits = load(UInt32.self, after: 1) else { throw truncated(needing: 5) }
            position += 5
            return Double(Float(bitPattern: bits))
        default:
            throw mismatch("double", format)
        }
    }

    // MARK: - Strings, binaries, extensions

    /// Reads a str value as a `String`, validating its UTF-8.
    public mutating func readString() throws(MessagePackError) -> String {
        let (header, length) = try readPayloadHeader(expecting: .string)
        let start = position + header
        guard let string = makeString(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)])) else {
            throw MessagePackError(.invalidUTF8, offset: position)
        }
        position = start + length
        return string
    }

    /// Reads a str value and tells whether its bytes equal `expected`,
    /// without making a `String`: for matching map keys.
    public mutating func readString(equals expected: UnsafeRawBufferPointer) throws(MessagePackError) -> Bool {
        let (header, length) = try readPayloadHeader(expecting: .string)
        let start = position + header
        position = start + length
        return length == expected.count && (length == 0 || UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]).elementsEqual(expected))
    }

    /// Reads a str or bin value's bytes as a slice of the input, without
    /// copying or validating them. Go writes `[]byte` as str, so byte
    /// fields must accept both.
    public mutating func readStringBytes() throws(MessagePackError) -> ByteBuffer {
        let (header, length) = try readPayloadHeader(expecting: .binary)
        let slice = storage.getSlice(at: storage.readerIndex + position + header, length: length)!
        position += header + length
        return slice
    }

    /// Reads a str or bin value's bytes, calling `body` with them in place.
    public mutating func withStringBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) throws(MessagePackError) -> Result {
        let (header, length) = try readPayloadHeader(expecting: .binary)
        let start = position + header
        position = start + length
        return body(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]))
    }

    /// Reads a bin or str value's bytes as a slice of the input.
    public mutating func readBinary() throws(MessagePackError) -> ByteBuffer {
        try readStringBytes()
    }

    /// Reads an extension value: its type and its payload as a slice.
    public mutating func readExtension() throws(MessagePackError) -> (type: Int8, payload: ByteBuffer) {
        let (header, length) = try readPayloadHeader(expecting: .extension)
        let type = Int8(bitPattern: bytes[position + header - 1])
        let payload = storage.getSlice(at: storage.readerIndex + position + header, length: length)!
        position += header + length
        return (type, payload)
    }

    /// Reads a timestamp extension (type -1) of 4, 8 or 12 bytes.
    public mutating func readTimestamp() throws(MessagePackError) -> MessagePackTimestamp {
        let start = position
        let (type, payload) = try readExtension()
        let timestamp = payload.withUnsafeReadableBytes { MessagePackTimestamp(payload: $0) }
        guard type == MessagePackTimestamp.extensionType, let timestamp else {
            position = start
            throw MessagePackError(.invalidExtension(type: type, length: payload.readableBytes), offset: start)
        }
        return timestamp
    }

    // MARK: - Containers

    /// Reads an array header and returns the element count; the elements
    /// follow.
    public mutating func readArrayHeader() throws(MessagePackError) -> Int {
        let header = try parseHeader()
        guard case .array(let count) = header.shape else { throw mismatch("array", header.format) }
        position += header.headerLength
        return count
    }

    /// Reads a map header and returns the number of key/value pairs; they
    /// follow, key then value.
    public mutating func readMapHeader() throws(MessagePackError) -> Int {
        let header = try parseHeader()
        guard case .map(let count) = header.shape else { throw mismatch("map", header.format) }
        position += header.headerLength
        return count
    }

    /// Skips one complete value, however deeply nested, without decoding it.
    public mutating func skipValue() throws(MessagePackError) {
        position = try endOfValue()
    }

    /// The offset just past the value that starts at ``offset``. Walks
    /// headers only, with one counter instead of a stack.
    func endOfValue() throws(MessagePackError) -> Int {
        var cursor = position
        var pending = 1
        while pending > 0 {
            guard let header = try ValueHeader.parse(bytes, at: cursor, limits: limits) else {
                throw MessagePackError(.truncated(needed: cursor - position + 1, available: remainingBytes), offset: cursor)
            }
            pending -= 1
            cursor += header.headerLength
            switch header.shape {
            case .scalar(let payloadLength): cursor += payloadLength
            case .array(let count): pending += count
            case .map(let count): pending += 2 * count
            }
            if cursor > bytes.count {
                throw MessagePackError(.truncated(needed: cursor - position, available: remainingBytes), offset: position)
            }
        }
        return cursor
    }

    // MARK: - Internals

    /// Makes a `String` from UTF-8, or `nil` if it is not valid UTF-8.
    /// ASCII (nearly every key and name on the wire) takes a fast path:
    /// the generic validating initializer is a large share of the time
    /// spent reading an RPC header.
    @usableFromInline
    static func makeString(_ utf8: UnsafeRawBufferPointer) -> String? {
        let units = utf8.assumingMemoryBound(to: UInt8.self)
        if isASCII(units) {
            return String(decoding: units, as: UTF8.self)
        }
        return String(validating: units, as: UTF8.self)
    }

    @inline(__always)
    static func isASCII(_ units: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        let count = units.count
        guard let base = units.baseAddress else { return true }
        while index + 8 <= count {
            let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
            if word & 0x8080_8080_8080_8080 != 0 { return false }
            index += 8
        }
        while index < count {
            if base[index] & 0x80 != 0 { return false }
            index += 1
        }
        return true
    }

    func makeString(_ utf8: UnsafeRawBufferPointer) -> String? { Self.makeString(utf8) }

    @inlinable
    func readFormat() throws(MessagePackError) -> UInt8 {
        guard let format = peekFormat() else { throw truncated(needing: 1) }
        return format
    }

    /// Parses the header at ``offset`` with the limits applied.
    func parseHeader() throws(MessagePackError) -> ValueHeader {
        guard let header = try ValueHeader.parse(bytes, at: position, limits: limits) else {
            throw truncated(needing: ValueHeader.headerLength(format: peekFormat() ?? 0))
        }
        return header
    }

    /// Header length and payload length of the str, bin or ext value at
    /// ``offset``, with the payload checked to be all there. `.binary`
    /// accepts str and bin alike.
    func readPayloadHeader(expecting expected: MessagePackType) throws(MessagePackError) -> (header: Int, length: Int) {
        let format = try readFormat()
        let type = MessagePackType(formatByte: format)
        let accepted = type == expected || (expected == .binary && type == .string)
        guard accepted else {
            throw mismatch(expected == .binary ? "string or binary" : expected.description, format)
        }
        let header = try parseHeader()
        guard case .scalar(let length) = header.shape else { preconditionFailure("str, bin and ext have payloads") }
        guard header.headerLength + length <= remainingBytes else {
            throw truncated(needing: header.headerLength + length)
        }
        return (header.headerLength, length)
    }

    @usableFromInline
    func truncated(needing needed: Int) -> MessagePackError {
        MessagePackError(.truncated(needed: needed, available: remainingBytes), offset: position)
    }

    @usableFromInline
    func mismatch(_ expected: String, _ format: UInt8) -> MessagePackError {
        guard let type = MessagePackType(formatByte: format) else {
            return MessagePackError(.invalidFormatByte(format), offset: position)
        }
        return MessagePackError(.typeMismatch(expected: expected, found: type.description), offset: position)
    }
}
