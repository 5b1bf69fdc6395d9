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
    /// The bytes being read; `offset` counts from its reader index.
    let buffer: ByteBuffer
    /// Bounds on lengths, counts and depth.
    public let limits: MessagePackLimits
    /// Where the next value starts, counted from the first byte given.
    public internal(set) var offset: Int

    /// Reads `buffer`'s readable bytes, which the reader does not consume.
    public init(_ buffer: ByteBuffer, limits: MessagePackLimits = .default) {
        self.buffer = buffer
        self.limits = limits
        self.offset = 0
    }

    /// True when every byte has been read.
    public var isAtEnd: Bool { offset >= buffer.readableBytes }

    /// Bytes not yet read.
    public var remainingBytes: Int { buffer.readableBytes - offset }

    /// The type of the next value, or `nil` at the end of the input.
    public func peekType() throws(MessagePackError) -> MessagePackType? {
        guard let byte = peekFormat() else { return nil }
        guard let type = MessagePackType(formatByte: byte) else {
            throw MessagePackError(.invalidFormatByte(byte), offset: offset)
        }
        return type
    }

    /// True when the next value is nil (which is not consumed).
    public func nextIsNil() -> Bool { peekFormat() == FormatByte.nil }

    func peekFormat() -> UInt8? {
        buffer.getInteger(at: buffer.readerIndex + offset, as: UInt8.self)
    }

    // MARK: - Scalars

    /// Reads nil.
    public mutating func readNil() throws(MessagePackError) {
        let format = try readFormat()
        guard format == FormatByte.nil else { throw mismatch("nil", format) }
        offset += 1
    }

    /// Reads a bool.
    public mutating func readBool() throws(MessagePackError) -> Bool {
        let format = try readFormat()
        switch format {
        case FormatByte.true: offset += 1; return true
        case FormatByte.false: offset += 1; return false
        default: throw mismatch("bool", format)
        }
    }

    /// Reads any integer encoding into `Integer`, failing with
    /// ``MessagePackError/Kind/integerOverflow(value:type:)`` when the value
    /// does not fit.
    public mutating func readInteger<Integer: FixedWidthInteger>(as type: Integer.Type = Integer.self) throws(MessagePackError) -> Integer {
        let format = try readFormat()
        let start = buffer.readerIndex + offset
        let result: Integer?
        let length: Int
        switch format {
        case 0x00...0x7f:
            result = Integer(exactly: format); length = 1
        case 0xe0...0xff:
            result = Integer(exactly: Int8(bitPattern: format)); length = 1
        case FormatByte.uint8: (result, length) = try convert(UInt8.self, at: start)
        case FormatByte.uint16: (result, length) = try convert(UInt16.self, at: start)
        case FormatByte.uint32: (result, length) = try convert(UInt32.self, at: start)
        case FormatByte.uint64: (result, length) = try convert(UInt64.self, at: start)
        case FormatByte.int8: (result, length) = try convert(Int8.self, at: start)
        case FormatByte.int16: (result, length) = try convert(Int16.self, at: start)
        case FormatByte.int32: (result, length) = try convert(Int32.self, at: start)
        case FormatByte.int64: (result, length) = try convert(Int64.self, at: start)
        default: throw mismatch("integer", format)
        }
        guard let result else {
            throw MessagePackError(.integerOverflow(value: integerText(format, at: start), type: "\(Integer.self)"), offset: offset)
        }
        offset += length
        return result
    }

    func convert<Wire: FixedWidthInteger, Integer: FixedWidthInteger>(
        _: Wire.Type, at start: Int
    ) throws(MessagePackError) -> (Integer?, Int) {
        guard let wire = buffer.getInteger(at: start + 1, as: Wire.self) else {
            throw truncated(needing: 1 + MemoryLayout<Wire>.size)
        }
        return (Integer(exactly: wire), 1 + MemoryLayout<Wire>.size)
    }

    /// The integer at `start` as text, for an overflow message.
    func integerText(_ format: UInt8, at start: Int) -> String {
        switch format {
        case FormatByte.uint64: return String(buffer.getInteger(at: start + 1, as: UInt64.self) ?? 0)
        default:
            var copy = MessagePackReader(buffer.getSlice(at: start, length: buffer.writerIndex - start) ?? ByteBuffer())
            return (try? copy.readInteger(as: Int64.self)).map { String($0) } ?? "?"
        }
    }

    /// Reads a float 32, or a float 64 that converts to `Float` exactly
    /// (as go-msgpack reads a float64 into a float32 field).
    public mutating func readFloat() throws(MessagePackError) -> Float {
        let format = try readFormat()
        switch format {
        case FormatByte.float32:
            let bits: UInt32 = try readPayloadInteger(after: 1)
            offset += 5
            return Float(bitPattern: bits)
        case FormatByte.float64:
            let bits: UInt64 = try readPayloadInteger(after: 1)
            let double = Double(bitPattern: bits)
            guard let float = Float(exactly: double) ?? (double.isNaN ? Float.nan : nil) else {
                throw MessagePackError(.typeMismatch(expected: "float 32", found: "float 64 \(double)"), offset: offset)
            }
            offset += 9
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
            let bits: UInt64 = try readPayloadInteger(after: 1)
            offset += 9
            return Double(bitPattern: bits)
        case FormatByte.float32:
            let bits: UInt32 = try readPayloadInteger(after: 1)
            offset += 5
            return Double(Float(bitPattern: bits))
        default:
            throw mismatch("double", format)
        }
    }

    // MARK: - Strings, binaries, extensions

    /// Reads a str value as a `String`, validating its UTF-8.
    public mutating func readString() throws(MessagePackError) -> String {
        let format = try readFormat()
        guard MessagePackType(formatByte: format) == .string else { throw mismatch("string", format) }
        let (header, length) = try readPayloadHeader()
        let start = offset + header
        let string = buffer.withUnsafeReadableBytes { bytes in
            String(validating: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]), as: UTF8.self)
        }
        guard let string else { throw MessagePackError(.invalidUTF8, offset: offset) }
        offset += header + length
        return string
    }

    /// Reads a str or bin value's bytes as a slice of the input, without
    /// copying or validating them. Go writes `[]byte` as str, so byte
    /// fields must accept both.
    public mutating func readStringBytes() throws(MessagePackError) -> ByteBuffer {
        let format = try readFormat()
        let type = MessagePackType(formatByte: format)
        guard type == .string || type == .binary else { throw mismatch("string or binary", format) }
        let (header, length) = try readPayloadHeader()
        let slice = buffer.getSlice(at: buffer.readerIndex + offset + header, length: length)!
        offset += header + length
        return slice
    }

    /// Reads a bin or str value's bytes as a slice of the input.
    public mutating func readBinary() throws(MessagePackError) -> ByteBuffer {
        try readStringBytes()
    }

    /// Reads an extension value: its type and its payload as a slice.
    public mutating func readExtension() throws(MessagePackError) -> (type: Int8, payload: ByteBuffer) {
        let format = try readFormat()
        guard MessagePackType(formatByte: format) == .extension else { throw mismatch("extension", format) }
        let (header, length) = try readPayloadHeader()
        let base = buffer.readerIndex + offset
        let type = buffer.getInteger(at: base + header - 1, as: Int8.self)!
        let payload = buffer.getSlice(at: base + header, length: length)!
        offset += header + length
        return (type, payload)
    }

    /// Reads a timestamp extension (type -1) of 4, 8 or 12 bytes.
    public mutating func readTimestamp() throws(MessagePackError) -> MessagePackTimestamp {
        let start = offset
        let (type, payload) = try readExtension()
        let timestamp = payload.withUnsafeReadableBytes { MessagePackTimestamp(payload: $0) }
        guard type == MessagePackTimestamp.extensionType, let timestamp else {
            offset = start
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
        offset += header.headerLength
        return count
    }

    /// Reads a map header and returns the number of key/value pairs; they
    /// follow, key then value.
    public mutating func readMapHeader() throws(MessagePackError) -> Int {
        let header = try parseHeader()
        guard case .map(let count) = header.shape else { throw mismatch("map", header.format) }
        offset += header.headerLength
        return count
    }

    /// Skips one complete value, however deeply nested, without decoding it.
    public mutating func skipValue() throws(MessagePackError) {
        let end = try endOfValue()
        offset = end
    }

    /// The offset just past the value that starts at ``offset``. Walks
    /// headers only, with one counter instead of a stack.
    func endOfValue() throws(MessagePackError) -> Int {
        let result = buffer.withUnsafeReadableBytes { bytes in
            Result { () throws(MessagePackError) -> Int in
                var position = offset
                var pending = 1
                while pending > 0 {
                    guard let header = try ValueHeader.parse(bytes, at: position, limits: limits) else {
                        throw MessagePackError(.truncated(needed: position - offset + 1, available: bytes.count - offset), offset: position)
                    }
                    pending -= 1
                    position += header.headerLength
                    switch header.shape {
                    case .scalar(let payloadLength): position += payloadLength
                    case .array(let count): pending += count
                    case .map(let count): pending += 2 * count
                    }
                    if position > bytes.count {
                        throw MessagePackError(.truncated(needed: position - offset, available: bytes.count - offset), offset: offset)
                    }
                }
                return position
            }
        }
        return try result.get()
    }

    // MARK: - Internals

    func readFormat() throws(MessagePackError) -> UInt8 {
        guard let format = peekFormat() else { throw truncated(needing: 1) }
        return format
    }

    func readPayloadInteger<T: FixedWidthInteger>(after header: Int) throws(MessagePackError) -> T {
        guard let value = buffer.getInteger(at: buffer.readerIndex + offset + header, as: T.self) else {
            throw truncated(needing: header + MemoryLayout<T>.size)
        }
        return value
    }

    /// Parses the header at ``offset`` with the limits applied.
    func parseHeader() throws(MessagePackError) -> ValueHeader {
        let result = buffer.withUnsafeReadableBytes { bytes in
            Result { () throws(MessagePackError) in try ValueHeader.parse(bytes, at: offset, limits: limits) }
        }
        guard let header = try result.get() else {
            throw truncated(needing: ValueHeader.headerLength(format: peekFormat() ?? 0))
        }
        return header
    }

    /// Header length and payload length of a str, bin or ext value at
    /// ``offset``, with the payload checked to be all there.
    func readPayloadHeader() throws(MessagePackError) -> (header: Int, length: Int) {
        let header = try parseHeader()
        guard case .scalar(let length) = header.shape else { preconditionFailure("caller checked the type") }
        guard header.headerLength + length <= remainingBytes else {
            throw truncated(needing: header.headerLength + length)
        }
        return (header.headerLength, length)
    }

    func truncated(needing needed: Int) -> MessagePackError {
        MessagePackError(.truncated(needed: needed, available: remainingBytes), offset: offset)
    }

    func mismatch(_ expected: String, _ format: UInt8) -> MessagePackError {
        guard let type = MessagePackType(formatByte: format) else {
            return MessagePackError(.invalidFormatByte(format), offset: offset)
        }
        return MessagePackError(.typeMismatch(expected: expected, found: type.description), offset: offset)
    }
}
