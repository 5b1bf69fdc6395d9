public import NIOCore

// The writer: one `ByteBuffer` method per MessagePack value. Each method
// reserves the bytes it needs once and writes through a raw pointer, instead
// of one `ByteBuffer.write*` call per field, each paying `ByteBuffer`'s
// exclusivity and capacity checks.
// Integers always take the smallest encoding, non-negative numbers the
// unsigned forms, as go-msgpack (Consul) and msgpack-c write them.

extension ByteBuffer {
    /// Writes nil (0xc0). Returns the number of bytes written.
    @inlinable
    @discardableResult
    public mutating func writeMessagePackNil() -> Int {
        writeInteger(FormatByte.nil)
    }

    /// Writes true (0xc3) or false (0xc2).
    @inlinable
    @discardableResult
    public mutating func writeMessagePackBool(_ value: Bool) -> Int {
        writeInteger(value ? FormatByte.true : FormatByte.false)
    }

    /// Writes an integer in its smallest encoding: non-negative values in
    /// the unsigned forms (positive fixint, uint 8...64), negative values in
    /// the signed forms (negative fixint, int 8...64).
    @inlinable
    @discardableResult
    public mutating func writeMessagePackInteger<Integer: FixedWidthInteger>(_ value: Integer) -> Int {
        if Integer.isSigned && value < 0 {
            let signed = Int64(truncatingIfNeeded: value)
            return writeWithUnsafeMutableBytes(minimumWritableBytes: 9) { out in
                MessagePackRawWriter.writeNegative(signed, to: out.baseAddress!)
            }
        } else {
            let unsigned = UInt64(truncatingIfNeeded: value)
            return writeWithUnsafeMutableBytes(minimumWritableBytes: 9) { out in
                MessagePackRawWriter.writeUnsigned(unsigned, to: out.baseAddress!)
            }
        }
    }

    /// Writes a float 32 (0xca).
    @inlinable
    @discardableResult
    public mutating func writeMessagePackFloat(_ value: Float) -> Int {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 5) { MessagePackRawWriter.writeFloat(value, to: $0.baseAddress!) }
    }

    /// Writes a float 64 (0xcb).
    @inlinable
    @discardableResult
    public mutating func writeMessagePackDouble(_ value: Double) -> Int {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 9) { MessagePackRawWriter.writeDouble(value, to: $0.baseAddress!) }
    }

    /// Writes a str value: header and UTF-8 bytes in one reservation.
    @inlinable
    @discardableResult
    public mutating func writeMessagePackString(
        _ value: String,
        headers: MessagePackWriteOptions.StringHeaders = .legacy
    ) throws(MessagePackError) -> Int {
        let count = value.utf8.count
        guard count <= MessagePackRawWriter.maxEncodableLength else { throw MessagePackError(.lengthNotEncodable(count), offset: nil) }
        var value = value
        return value.withUTF8 { utf8 in
            self.writeMessagePackPayload(UnsafeRawBufferPointer(utf8)) { count, base in
                MessagePackRawWriter.writeStringHeader(count: count, headers: headers, to: base)
            }
        }
    }

    /// Writes raw bytes as a str value (what go-msgpack does with `[]byte`).
    /// The bytes are not checked for UTF-8.
    @inlinable
    @discardableResult
    public mutating func writeMessagePackStringBytes(
        _ bytes: UnsafeRawBufferPointer,
        headers: MessagePackWriteOptions.StringHeaders = .legacy
    ) throws(MessagePackError) -> Int {
        guard bytes.count <= MessagePackRawWriter.maxEncodableLength else { throw MessagePackError(.lengthNotEncodable(bytes.count), offset: nil) }
        return writeMessagePackPayload(bytes) { count, base in
            MessagePackRawWriter.writeStringHeader(count: count, headers: headers, to: base)
        }
    }

    /// Writes a header (at most 6 bytes, by `header`) and then `payload`,
    /// in one reservation. The caller has checked the length.
    @inlinable
    mutating func writeMessagePackPayload(
        _ payload: UnsafeRawBufferPointer,
        header: (Int, UnsafeMutableRawPointer) -> Int
    ) -> Int {
        let count = payload.count
        return writeWithUnsafeMutableBytes(minimumWritableBytes: 6 + count) { out in
            let base = out.baseAddress!
            let headerLength = header(count, base)
            if count > 0 {
                (base + headerLength).copyMemory(from: payload.baseAddress!, byteCount: count)
            }
            return headerLength + count
        }
    }

    /// Writes a str header only; the caller writes `count` bytes after it.
    @inlinable
    @discardableResult
    public mutating func writeMessagePackStringHeader(
        count: Int,
        headers: MessagePackWriteOptions.StringHeaders = .legacy
    ) throws(MessagePackError) -> Int {
        guard count >= 0, count <= MessagePackRawWriter.maxEncodableLength else { throw MessagePackError(.lengthNotEncodable(count), offset: nil) }
        return writeWithUnsafeMutableBytes(minimumWritableBytes: 5) { out in
            MessagePackRawWriter.writeStringHeader(count: count, headers: headers, to: out.baseAddress!)
        }
    }

    /// Writes bytes in the bin family (0xc4...0xc6).
    @inlinable
    @discardableResult
    public mutating func writeMessagePackBinary(_ bytes: UnsafeRawBufferPointer) throws(MessagePackError) -> Int {
        guard bytes.count <= MessagePackRawWriter.maxEncodableLength else { throw MessagePackError(.lengthNotEncodable(bytes.count), offset: nil) }
        return writeMessagePackPayload(bytes) { count, base in
            MessagePackRawWriter.writeBinaryHeader(count: count, to: base)
        }
    }

    /// Writes the readable bytes of `bytes` in the bin family.
    @inlinable
    @discardableResult
    public mutating func writeMessagePackBinary(_ bytes: ByteBuffer) throws(MessagePackError) -> Int {
        guard bytes.readableBytes <= MessagePackRawWriter.maxEncodableLength else { throw MessagePackError(.lengthNotEncodable(bytes.readableBytes), offset: nil) }
        return bytes.withUnsafeReadableBytes { raw in
            self.writeMessagePackPayload(raw) { count, base in MessagePackRawWriter.writeBinaryHeader(count: count, to: base) }
        }
    }

    /// Writes `bytes` in the bin family.
    @inlinable
    @discardableResult
    public mutating func writeMessagePackBinary(_ bytes: [UInt8]) throws(MessagePackError) -> Int {
        guard bytes.count <= MessagePackRawWriter.maxEncodableLength else { throw MessagePackError(.lengthNotEncodable(bytes.count), offset: nil) }
        return bytes.withUnsafeBytes { raw in
            self.writeMessagePackPayload(raw) { count, base in MessagePackRawWriter.writeBinaryHeader(count: count, to: base) }
        }
    }

    /// Writes a bin header only; the caller writes `count` bytes after it.
    @inlinable
    @discardableResult
    public mutating func writeMessagePackBinaryHeader(count: Int) throws(MessagePackError) -> Int {
        guard count >= 0, count <= MessagePackRawWriter.maxEncodableLength else { throw MessagePackError(.lengthNotEncodable(count), offset: nil) }
        return writeWithUnsafeMutableBytes(minimumWritableBytes: 5) { out in
            MessagePackRawWriter.writeBinaryHeader(count: count, to: out.baseAddress!)
        }
    }

    /// Writes an array header for `count` elements; the caller writes them.
    @inlinable
    @discardableResult
    public mutating func writeMessagePackArrayHeader(count: Int) throws(MessagePackError) -> Int {
        guard count >= 0, count <= MessagePackRawWriter.maxEncodableLength else { throw MessagePackError(.lengthNotEncodable(count), offset: nil) }
        return writeWithUnsafeMutableBytes(minimumWritableBytes: 5) { out in
            MessagePackRawWriter.writeContainerHeader(count: count, isMap: false, to: out.baseAddress!)
        }
    }

    /// Writes a map header for `count` key/value pairs; the caller writes
    /// them, key then value.
    @inlinable
    @discardableResult
    public mutating func writeMessagePackMapHeader(count: Int) throws(MessagePackError) -> Int {
        guard count >= 0, count <= MessagePackRawWriter.maxEncodableLength else { throw MessagePackError(.lengthNotEncodable(count), offset: nil) }
        return writeWithUnsafeMutableBytes(minimumWritableBytes: 5) { out in
            MessagePackRawWriter.writeContainerHeader(count: count, isMap: true, to: out.baseAddress!)
        }
    }

    /// Writes an extension value: fixext 1/2/4/8/16 when the payload has one
    /// of those sizes, ext 8/16/32 otherwise.
    @inlinable
    @discardableResult
    public mutating func writeMessagePackExtension(type: Int8, payload: UnsafeRawBufferPointer) throws(MessagePackError) -> Int {
        guard payload.count <= MessagePackRawWriter.maxEncodableLength else { throw MessagePackError(.lengthNotEncodable(payload.count), offset: nil) }
        return writeMessagePackPayload(payload) { count, base in
            MessagePackRawWriter.writeExtensionHeader(type: type, count: count, to: base)
        }
    }

    /// Writes an extension value whose payload is the readable bytes of `payload`.
    @inlinable
    @discardableResult
    public mutating func writeMessagePackExtension(type: Int8, payload: ByteBuffer) throws(MessagePackError) -> Int {
        guard payload.readableBytes <= MessagePackRawWriter.maxEncodableLength else { throw MessagePackError(.lengthNotEncodable(payload.readableBytes), offset: nil) }
        return payload.withUnsafeReadableBytes { raw in
            self.writeMessagePackPayload(raw) { count, base in MessagePackRawWriter.writeExtensionHeader(type: type, count: count, to: base) }
        }
    }

    /// Writes a timestamp (extension type -1) in its smallest form:
    /// 32-bit seconds, 64-bit seconds+nanoseconds, or 96-bit.
    @inlinable
    @discardableResult
    public mutating func writeMessagePackTimestamp(_ timestamp: MessagePackTimestamp) -> Int {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 15) { out in
            MessagePackRawWriter.writeTimestamp(timestamp, to: out.baseAddress!)
        }
    }
}

/// Pointer-level encoders shared by the `ByteBuffer` methods and the
/// `Encodable` encoder. Each writes at `base` and returns the byte count;
/// the caller has reserved enough room.
@usableFromInline
enum MessagePackRawWriter {
    /// MessagePack lengths and counts are at most 32 bits.
    @usableFromInline static let maxEncodableLength = Int(UInt32.max)

    @inlinable
    static func store<T: FixedWidthInteger>(_ value: T, at base: UnsafeMutableRawPointer, offset: Int) {
        base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
    }

    @inlinable
    static func writeUnsigned(_ value: UInt64, to base: UnsafeMutableRawPointer) -> Int {
        if value <= 0x7f {
            store(UInt8(truncatingIfNeeded: value), at: base, offset: 0)
            return 1
        } else if value <= 0xff {
            store(FormatByte.uint8, at: base, offset: 0)
            store(UInt8(truncatingIfNeeded: value), at: base, offset: 1)
            return 2
        } else if value <= 0xffff {
            store(FormatByte.uint16, at: base, offset: 0)
            store(UInt16(truncatingIfNeeded: value), at: base, offset: 1)
            return 3
        } else if value <= 0xffff_ffff {
            store(FormatByte.uint32, at: base, offset: 0)
            store(UInt32(truncatingIfNeeded: value), at: base, offset: 1)
            return 5
        } else {
            store(FormatByte.uint64, at: base, offset: 0)
            store(value, at: base, offset: 1)
            return 9
        }
    }

    @inlinable
    static func writeFloat(_ value: Float, to base: UnsafeMutableRawPointer) -> Int {
        store(FormatByte.float32, at: base, offset: 0)
        store(value.bitPattern, at: base, offset: 1)
        return 5
    }

    @inlinable
    static func writeDouble(_ value: Double, to base: UnsafeMutableRawPointer) -> Int {
        store(FormatByte.float64, at: base, offset: 0)
        store(value.bitPattern, at: base, offset: 1)
        return 9
    }

    @inlinable
    static func writeNegative(_ value: Int64, to base: UnsafeMutableRawPointer) -> Int {
        if value >= -32 {
            store(Int8(truncatingIfNeeded: value), at: base, offset: 0)
            return 1
        } else if value >= Int64(Int8.min) {
            store(FormatByte.int8, at: base, offset: 0)
            store(Int8(truncatingIfNeeded: value), at: base, offset: 1)
            return 2
        } else if value >= Int64(Int16.min) {
            store(FormatByte.int16, at: base, offset: 0)
            store(Int16(truncatingIfNeeded: value), at: base, offset: 1)
            return 3
        } else if value >= Int64(Int32.min) {
            store(FormatByte.int32, at: base, offset: 0)
            store(Int32(truncatingIfNeeded: value), at: base, offset: 1)
            return 5
        } else {
            store(FormatByte.int64, at: base, offset: 0)
            store(value, at: base, offset: 1)
            return 9
        }
    }

    @inlinable
    static func writeStringHeader(count: Int, headers: MessagePackWriteOptions.StringHeaders, to base: UnsafeMutableRawPointer) -> Int {
        if count < 32 {
            store(FormatByte.fixstr | UInt8(count), at: base, offset: 0)
            return 1
        } else if count <= 0xff && headers == .current {
            store(FormatByte.str8, at: base, offset: 0)
            store(UInt8(count), at: base, offset: 1)
            return 2
        } else if count <= 0xffff {
            store(FormatByte.str16, at: base, offset: 0)
            store(UInt16(count), at: base, offset: 1)
            return 3
        } else {
            store(FormatByte.str32, at: base, offset: 0)
            store(UInt32(count), at: base, offset: 1)
            return 5
        }
    }

    @inlinable
    static func writeBinaryHeader(count: Int, to base: UnsafeMutableRawPointer) -> Int {
        if count <= 0xff {
            store(FormatByte.bin8, at: base, offset: 0)
            store(UInt8(count), at: base, offset: 1)
            return 2
        } else if count <= 0xffff {
            store(FormatByte.bin16, at: base, offset: 0)
            store(UInt16(count), at: base, offset: 1)
            return 3
        } else {
            store(FormatByte.bin32, at: base, offset: 0)
            store(UInt32(count), at: base, offset: 1)
            return 5
        }
    }

    /// Size of the header `writeContainerHeader` writes for `count`.
    @inlinable
    static func containerHeaderSize(count: Int) -> Int {
        count < 16 ? 1 : (count <= 0xffff ? 3 : 5)
    }

    @inlinable
    static func writeContainerHeader(count: Int, isMap: Bool, to base: UnsafeMutableRawPointer) -> Int {
        if count < 16 {
            store((isMap ? FormatByte.fixmap : FormatByte.fixarray) | UInt8(count), at: base, offset: 0)
            return 1
        } else if count <= 0xffff {
            store(isMap ? FormatByte.map16 : FormatByte.array16, at: base, offset: 0)
            store(UInt16(count), at: base, offset: 1)
            return 3
        } else {
            store(isMap ? FormatByte.map32 : FormatByte.array32, at: base, offset: 0)
            store(UInt32(count), at: base, offset: 1)
            return 5
        }
    }

    @inlinable
    static func writeExtensionHeader(type: Int8, count: Int, to base: UnsafeMutableRawPointer) -> Int {
        let header: Int
        switch count {
        case 1: store(FormatByte.fixext1, at: base, offset: 0); header = 1
        case 2: store(FormatByte.fixext2, at: base, offset: 0); header = 1
        case 4: store(FormatByte.fixext4, at: base, offset: 0); header = 1
        case 8: store(FormatByte.fixext8, at: base, offset: 0); header = 1
        case 16: store(FormatByte.fixext16, at: base, offset: 0); header = 1
        case 0...0xff:
            store(FormatByte.ext8, at: base, offset: 0)
            store(UInt8(count), at: base, offset: 1)
            header = 2
        case 0...0xffff:
            store(FormatByte.ext16, at: base, offset: 0)
            store(UInt16(count), at: base, offset: 1)
            header = 3
        default:
            store(FormatByte.ext32, at: base, offset: 0)
            store(UInt32(count), at: base, offset: 1)
            header = 5
        }
        store(type, at: base, offset: header)
        return header + 1
    }

    @inlinable
    static func writeTimestamp(_ timestamp: MessagePackTimestamp, to base: UnsafeMutableRawPointer) -> Int {
        let seconds = timestamp.seconds
        let nanoseconds = timestamp.nanoseconds
        if seconds >> 34 == 0 {
            let packed = UInt64(nanoseconds) << 34 | UInt64(seconds)
            if packed & 0xffff_ffff_0000_0000 == 0 {
                // timestamp 32: fixext 4, seconds as uint32.
                store(FormatByte.fixext4, at: base, offset: 0)
                store(MessagePackTimestamp.extensionType, at: base, offset: 1)
                store(UInt32(truncatingIfNeeded: packed), at: base, offset: 2)
                return 6
            }
            // timestamp 64: fixext 8, 30-bit nanoseconds and 34-bit seconds.
            store(FormatByte.fixext8, at: base, offset: 0)
            store(MessagePackTimestamp.extensionType, at: base, offset: 1)
            store(packed, at: base, offset: 2)
            return 10
        }
        // timestamp 96: ext 8 of length 12, uint32 nanoseconds and int64 seconds.
        store(FormatByte.ext8, at: base, offset: 0)
        store(UInt8(12), at: base, offset: 1)
        store(MessagePackTimestamp.extensionType, at: base, offset: 2)
        store(nanoseconds, at: base, offset: 3)
        store(seconds, at: base, offset: 7)
        return 15
    }
}
