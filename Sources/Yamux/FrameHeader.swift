public import NIOCore

/// The four yamux frame types (byte 1 of the header).
public enum YamuxFrameType: UInt8, Sendable, Hashable {
    /// Stream data; `length` payload bytes follow the header.
    case data = 0
    /// Adds `length` bytes to the receiver's send window for the stream.
    case windowUpdate = 1
    /// Liveness / RTT probe on stream 0; `length` is an opaque value echoed back.
    case ping = 2
    /// Session termination on stream 0; `length` is the reason code.
    case goAway = 3
}

/// The flag bits of a yamux frame (bytes 2–3 of the header).
public struct YamuxFrameFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Opens a stream (or asks for a ping reply).
    public static let syn = YamuxFrameFlags(rawValue: 0x1)
    /// Acknowledges a stream open (or answers a ping).
    public static let ack = YamuxFrameFlags(rawValue: 0x2)
    /// Half-closes the sender's side of the stream.
    public static let fin = YamuxFrameFlags(rawValue: 0x4)
    /// Aborts the stream at once.
    public static let rst = YamuxFrameFlags(rawValue: 0x8)
}

/// GoAway reason codes as hashicorp/yamux defines them.
public enum YamuxGoAwayCode: UInt32, Sendable, Hashable {
    case normal = 0
    case protocolError = 1
    case internalError = 2
}

/// The 12-byte yamux frame header: version u8, type u8, flags u16, stream id u32, length u32,
/// all big-endian.
public struct YamuxFrameHeader: Sendable, Hashable {
    /// Encoded size of a header.
    public static let size = 12
    /// The only protocol version that exists.
    public static let protocolVersion: UInt8 = 0

    public var version: UInt8
    public var type: YamuxFrameType
    public var flags: YamuxFrameFlags
    public var streamID: UInt32
    /// Payload size for `.data`, window delta for `.windowUpdate`, opaque value for `.ping`,
    /// reason code for `.goAway`.
    public var length: UInt32

    public init(
        type: YamuxFrameType,
        flags: YamuxFrameFlags = [],
        streamID: UInt32,
        length: UInt32,
        version: UInt8 = YamuxFrameHeader.protocolVersion
    ) {
        self.version = version
        self.type = type
        self.flags = flags
        self.streamID = streamID
        self.length = length
    }

    /// Appends the 12 header bytes to `buffer`.
    @inlinable
    public func write(to buffer: inout ByteBuffer) {
        // One multi-integer write keeps this to a single capacity check.
        buffer.writeMultipleIntegers(
            self.version,
            self.type.rawValue,
            self.flags.rawValue,
            self.streamID,
            self.length,
            endianness: .big
        )
    }

    /// A fresh buffer holding just this header.
    public func encoded(allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: Self.size)
        self.write(to: &buffer)
        return buffer
    }
}

/// What reading a header can go wrong with. Both are protocol errors for hashicorp.
enum YamuxHeaderParseError: Error, Equatable {
    case unsupportedVersion(UInt8)
    case unknownType(UInt8)
}

extension YamuxFrameHeader {
    /// Reads a header from `buffer` if 12 bytes are available. Validates version and type first,
    /// exactly as hashicorp does, so a bad frame is rejected before its length is trusted.
    static func read(from buffer: inout ByteBuffer) throws(YamuxHeaderParseError) -> YamuxFrameHeader? {
        guard buffer.readableBytes >= Self.size,
            let (version, rawType, flags, streamID, length) = buffer.getMultipleIntegers(
                at: buffer.readerIndex,
                endianness: .big,
                as: (UInt8, UInt8, UInt16, UInt32, UInt32).self
            )
        else { return nil }
        guard version == Self.protocolVersion else { throw .unsupportedVersion(version) }
        guard let type = YamuxFrameType(rawValue: rawType) else { throw .unknownType(rawType) }
        buffer.moveReaderIndex(forwardBy: Self.size)
        return YamuxFrameHeader(
            type: type,
            flags: YamuxFrameFlags(rawValue: flags),
            streamID: streamID,
            length: length,
            version: version
        )
    }
}
