package import NIOCore

// The yamux wire format. `package`: only MuxRPC's own modules, tests and fuzz
// targets (through `@testable import`) read or write frames themselves; an
// application talks to a session through `YamuxSession` and `YamuxStream`.

/// The four yamux frame types (byte 1 of the header).
package enum YamuxFrameType: UInt8, Sendable, Hashable {
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
package struct YamuxFrameFlags: OptionSet, Sendable, Hashable {
    /// The two flag bytes, big-endian on the wire.
    package var rawValue: UInt16
    /// Flags from their wire value; unknown bits are kept.
    package init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Opens a stream (or asks for a ping reply).
    package static let syn = YamuxFrameFlags(rawValue: 0x1)
    /// Acknowledges a stream open (or answers a ping).
    package static let ack = YamuxFrameFlags(rawValue: 0x2)
    /// Half-closes the sender's side of the stream.
    package static let fin = YamuxFrameFlags(rawValue: 0x4)
    /// Aborts the stream at once.
    package static let rst = YamuxFrameFlags(rawValue: 0x8)
}

/// GoAway reason codes as hashicorp/yamux defines them.
package enum YamuxGoAwayCode: UInt32, Sendable, Hashable {
    /// The sender opens no more streams; streams already open go on.
    case normal = 0
    /// The receiver broke the protocol; the session ends.
    case protocolError = 1
    /// The sender failed (a limit, an internal error); the session ends.
    case internalError = 2
}

/// The 12-byte yamux frame header: version u8, type u8, flags u16, stream id u32, length u32,
/// all big-endian.
package struct YamuxFrameHeader: Sendable, Hashable {
    /// Encoded size of a header.
    package static let size = 12
    /// The only protocol version that exists.
    package static let protocolVersion: UInt8 = 0

    /// Protocol version: 0.
    package var version: UInt8
    /// What the frame is.
    package var type: YamuxFrameType
    /// SYN, ACK, FIN and RST bits.
    package var flags: YamuxFrameFlags
    /// The stream it belongs to; 0 for ping and GoAway.
    package var streamID: UInt32
    /// Payload size for `.data`, window delta for `.windowUpdate`, opaque value for `.ping`,
    /// reason code for `.goAway`.
    package var length: UInt32

    /// A header with the given fields, version 0 unless told otherwise.
    package init(
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
    package func write(to buffer: inout ByteBuffer) {
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
    package func encoded(allocator: ByteBufferAllocator) -> ByteBuffer {
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
