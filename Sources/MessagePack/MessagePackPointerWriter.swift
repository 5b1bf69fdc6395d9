public import NIOCore

/// Writes several values into one reservation of a `ByteBuffer`, through a
/// raw pointer: the fastest way to put a small, known-shape message (an RPC
/// header, say) on the wire.
///
/// Each `ByteBuffer.writeMessagePack…` call pays for the buffer's
/// exclusivity and capacity checks; this writer pays them once for the
/// whole message. Use it through
/// `ByteBuffer.writeMessagePack(reservingCapacity:headers:_:)`, with a
/// capacity from the `maxLength…` helpers. Writes past the capacity are
/// not made: the whole write then fails with
/// ``MessagePackError/Code/writerCapacityExceeded`` and
/// the buffer is left as it was.
///
/// Not part of the codec's public API: MuxRPC's RPC layer writes its headers
/// with it, and the codec benchmarks measure it, through
/// `@_spi(Benchmarking) import MessagePack`.
@_spi(Benchmarking)
public struct MessagePackPointerWriter {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let capacity: Int
    @usableFromInline var count = 0
    /// Set once a write did not fit: how many bytes it would have needed.
    @usableFromInline var overflow: Int?
    /// How str headers are chosen.
    public let headers: MessagePackWriteOptions.StringHeaders

    @inlinable
    init(base: UnsafeMutableRawPointer, capacity: Int, headers: MessagePackWriteOptions.StringHeaders) {
        self.base = base
        self.capacity = capacity
        self.headers = headers
    }

    /// Most bytes an integer, float or double takes.
    public static let maxScalarLength = 9
    /// Most bytes an array or map header takes.
    public static let maxContainerHeaderLength = 5

    /// Most bytes `string` takes as a str value.
    @inlinable
    public static func maxLength(ofString string: String) -> Int { 5 + string.utf8.count }

    /// Most bytes a str or bin value of `count` bytes takes.
    @inlinable
    public static func maxLength(ofBytes count: Int) -> Int { 5 + count }

    /// Bytes written so far.
    @inlinable
    public var bytesWritten: Int { count }

    @inlinable
    mutating func room(_ needed: Int) -> UnsafeMutableRawPointer? {
        guard overflow == nil, count + needed <= capacity else {
            if overflow == nil { overflow = count + needed }
            return nil
        }
        return base + count
    }

    /// Writes nil.
    @inlinable
    public mutating func writeNil() {
        guard let out = room(1) else { return }
        out.storeBytes(of: FormatByte.nil, as: UInt8.self)
        count += 1
    }

    /// Writes true or false.
    @inlinable
    public mutating func writeBool(_ value: Bool) {
        guard let out = room(1) else { return }
        out.storeBytes(of: value ? FormatByte.true : FormatByte.false, as: UInt8.self)
        count += 1
    }

    /// Writes an integer in its smallest form, non-negative values unsigned.
    @inlinable
    public mutating func writeInteger<Integer: FixedWidthInteger>(_ value: Integer) {
        guard let out = room(9) else { return }
        if Integer.isSigned && value < 0 {
            count += MessagePackRawWriter.writeNegative(Int64(truncatingIfNeeded: value), to: out)
        } else {
            count += MessagePackRawWriter.writeUnsigned(UInt64(truncatingIfNeeded: value), to: out)
        }
    }

    /// Writes a 64-bit float.
    @inlinable
    public mutating func writeDouble(_ value: Double) {
        guard let out = room(9) else { return }
        count += MessagePackRawWriter.writeDouble(value, to: out)
    }

    /// Writes a 32-bit float.
    @inlinable
    public mutating func writeFloat(_ value: Float) {
        guard let out = room(5) else { return }
        count += MessagePackRawWriter.writeFloat(value, to: out)
    }

    /// Writes a str value, its header chosen by ``headers``.
    @inlinable
    public mutating func writeString(_ value: String) {
        var value = value
        value.withUTF8 { writeStringBytes(UnsafeRawBufferPointer($0)) }
    }

    /// Writes raw bytes as a str value (what Go writes for `[]byte`).
    @inlinable
    public mutating func writeStringBytes(_ bytes: UnsafeRawBufferPointer) {
        guard let out = room(5 + bytes.count) else { return }
        let header = MessagePackRawWriter.writeStringHeader(count: bytes.count, headers: headers, to: out)
        if bytes.count > 0 { (out + header).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        count += header + bytes.count
    }

    /// Writes bytes as a bin value.
    @inlinable
    public mutating func writeBinary(_ bytes: UnsafeRawBufferPointer) {
        guard let out = room(5 + bytes.count) else { return }
        let header = MessagePackRawWriter.writeBinaryHeader(count: bytes.count, to: out)
        if bytes.count > 0 { (out + header).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        count += header + bytes.count
    }

    /// Writes the header of an array of `elements` values; the values follow.
    @inlinable
    public mutating func writeArrayHeader(count elements: Int) {
        guard let out = room(5) else { return }
        count += MessagePackRawWriter.writeContainerHeader(count: elements, isMap: false, to: out)
    }

    /// Writes the header of a map of `entries` key-value pairs; the pairs follow.
    @inlinable
    public mutating func writeMapHeader(count entries: Int) {
        guard let out = room(5) else { return }
        count += MessagePackRawWriter.writeContainerHeader(count: entries, isMap: true, to: out)
    }
}

extension ByteBuffer {
    /// Reserves `capacity` bytes once and lets `body` write values into
    /// them through a ``MessagePackPointerWriter``. Returns the bytes
    /// written. If a write would pass `capacity`, nothing is written and
    /// the call throws; size the reservation with the writer's `maxLength…`
    /// helpers.
    @_spi(Benchmarking)
    @inlinable
    @discardableResult
    public mutating func writeMessagePack(
        reservingCapacity capacity: Int,
        headers: MessagePackWriteOptions.StringHeaders = .legacy,
        _ body: (inout MessagePackPointerWriter) -> Void
    ) throws(MessagePackError) -> Int {
        var overflow: Int?
        let written = writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { out in
            var writer = MessagePackPointerWriter(base: out.baseAddress!, capacity: capacity, headers: headers)
            body(&writer)
            overflow = writer.overflow
            return overflow == nil ? writer.count : 0
        }
        if let overflow {
            throw MessagePackError(.writerCapacityExceeded(needed: overflow, capacity: capacity), offset: nil)
        }
        return written
    }
}
