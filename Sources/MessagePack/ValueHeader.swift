/// What the first bytes of a value say about it: how long its header is,
/// and either how many payload bytes follow or how many elements.
///
/// Shared by the scanner (which only needs sizes) and the reader (which also
/// needs the type), so both apply the same limits the same way.
@usableFromInline
struct ValueHeader {
    @usableFromInline
    enum Shape {
        /// A value with `payloadLength` bytes after its header (0 for nil,
        /// bool and fixint, whose value is in the format byte).
        case scalar(payloadLength: Int)
        case array(count: Int)
        case map(count: Int)
    }

    /// The format byte.
    @usableFromInline var format: UInt8
    /// Bytes before the payload or the first element: the format byte, any
    /// length field and, for extensions, the type byte.
    @usableFromInline var headerLength: Int
    @usableFromInline var shape: Shape

    @inlinable
    init(format: UInt8, headerLength: Int, shape: Shape) {
        self.format = format
        self.headerLength = headerLength
        self.shape = shape
    }

    /// Bytes the header that starts with `format` occupies.
    @inlinable
    static func headerLength(format: UInt8) -> Int {
        switch format {
        case FormatByte.str8, FormatByte.bin8: return 2
        case FormatByte.str16, FormatByte.bin16, FormatByte.array16, FormatByte.map16: return 3
        case FormatByte.str32, FormatByte.bin32, FormatByte.array32, FormatByte.map32: return 5
        case FormatByte.fixext1...FormatByte.fixext16: return 2
        case FormatByte.ext8: return 3
        case FormatByte.ext16: return 4
        case FormatByte.ext32: return 6
        default: return 1
        }
    }

    /// Parses the header at `offset`, or returns `nil` when `bytes` ends
    /// before the header does. Lengths and counts are checked against
    /// `limits` here, before anything is allocated or waited for.
    @inlinable
    static func parse(
        _ bytes: UnsafeRawBufferPointer,
        at offset: Int,
        limits: MessagePackLimits
    ) throws(MessagePackError) -> ValueHeader? {
        guard offset < bytes.count else { return nil }
        let format = bytes[offset]
        let available = bytes.count - offset

        @inline(__always)
        func length<T: FixedWidthInteger & UnsignedInteger>(_: T.Type) -> Int? {
            guard available > MemoryLayout<T>.size else { return nil }
            return Int(T(bigEndian: bytes.loadUnaligned(fromByteOffset: offset + 1, as: T.self)))
        }

        func payload(_ length: Int, header: Int) throws(MessagePackError) -> ValueHeader {
            guard length <= limits.maxByteLength else {
                throw MessagePackError(.byteLengthLimitExceeded(length: length, limit: limits.maxByteLength), offset: offset)
            }
            return ValueHeader(format: format, headerLength: header, shape: .scalar(payloadLength: length))
        }

        func container(_ count: Int, header: Int, isMap: Bool) throws(MessagePackError) -> ValueHeader {
            guard count <= limits.maxContainerCount else {
                throw MessagePackError(.containerCountLimitExceeded(count: count, limit: limits.maxContainerCount), offset: offset)
            }
            return ValueHeader(format: format, headerLength: header, shape: isMap ? .map(count: count) : .array(count: count))
        }

        switch format {
        case 0x00...0x7f, 0xe0...0xff, FormatByte.nil, FormatByte.false, FormatByte.true:
            return ValueHeader(format: format, headerLength: 1, shape: .scalar(payloadLength: 0))
        case 0x80...0x8f:
            return try container(Int(format & 0x0f), header: 1, isMap: true)
        case 0x90...0x9f:
            return try container(Int(format & 0x0f), header: 1, isMap: false)
        case 0xa0...0xbf:
            return try payload(Int(format & 0x1f), header: 1)
        case FormatByte.uint8, FormatByte.int8:
            return ValueHeader(format: format, headerLength: 1, shape: .scalar(payloadLength: 1))
        case FormatByte.uint16, FormatByte.int16:
            return ValueHeader(format: format, headerLength: 1, shape: .scalar(payloadLength: 2))
        case FormatByte.uint32, FormatByte.int32, FormatByte.float32:
            return ValueHeader(format: format, headerLength: 1, shape: .scalar(payloadLength: 4))
        case FormatByte.uint64, FormatByte.int64, FormatByte.float64:
            return ValueHeader(format: format, headerLength: 1, shape: .scalar(payloadLength: 8))
        case FormatByte.str8, FormatByte.bin8:
            guard let count = length(UInt8.self) else { return nil }
            return try payload(count, header: 2)
        case FormatByte.str16, FormatByte.bin16:
            guard let count = length(UInt16.self) else { return nil }
            return try payload(count, header: 3)
        case FormatByte.str32, FormatByte.bin32:
            guard let count = length(UInt32.self) else { return nil }
            return try payload(count, header: 5)
        case FormatByte.array16, FormatByte.map16:
            guard let count = length(UInt16.self) else { return nil }
            return try container(count, header: 3, isMap: format == FormatByte.map16)
        case FormatByte.array32, FormatByte.map32:
            guard let count = length(UInt32.self) else { return nil }
            return try container(count, header: 5, isMap: format == FormatByte.map32)
        case FormatByte.fixext1, FormatByte.fixext2, FormatByte.fixext4, FormatByte.fixext8, FormatByte.fixext16:
            guard available >= 2 else { return nil }
            return try payload(1 << Int(format - FormatByte.fixext1), header: 2)
        case FormatByte.ext8:
            guard available >= 3, let count = length(UInt8.self) else { return nil }
            return try payload(count, header: 3)
        case FormatByte.ext16:
            guard available >= 4, let count = length(UInt16.self) else { return nil }
            return try payload(count, header: 4)
        case FormatByte.ext32:
            guard available >= 6, let count = length(UInt32.self) else { return nil }
            return try payload(count, header: 6)
        default:  // 0xc1
            throw MessagePackError(.invalidFormatByte(format), offset: offset)
        }
    }
}
