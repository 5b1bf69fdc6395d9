import NIOCore

/// A decoded frame: its header and, for `.data`, its payload (a slice of the inbound buffer,
/// never copied).
struct YamuxFrame {
    var header: YamuxFrameHeader
    var payload: ByteBuffer?
}

/// Splits the TCP byte stream into yamux frames.
///
/// Runs inside the session handler through `NIOSingleStepByteToMessageProcessor`, so frames are
/// handled in the same call that received the bytes, with no extra pipeline hop.
struct YamuxFrameDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = YamuxFrame

    /// Largest data payload accepted. A peer may never send more than the receive window we
    /// offered, so anything larger is a window overrun; checking it here stops a hostile length
    /// field from making us buffer gigabytes before the stream-level check runs.
    var maxDataLength: UInt32

    /// A header already parsed whose payload has not fully arrived.
    private var pendingHeader: YamuxFrameHeader?

    init(maxDataLength: UInt32) {
        self.maxDataLength = maxDataLength
    }

    mutating func decode(buffer: inout ByteBuffer) throws -> YamuxFrame? {
        let header: YamuxFrameHeader
        if let pending = self.pendingHeader {
            header = pending
        } else {
            do {
                guard let parsed = try YamuxFrameHeader.read(from: &buffer) else { return nil }
                header = parsed
            } catch {
                switch error {
                case .unsupportedVersion(let v): throw YamuxError.unsupportedVersion(v)
                case .unknownType(let t): throw YamuxError.unknownFrameType(t)
                }
            }
        }
        // Only data frames carry a payload; for every other type `length` is a value.
        guard header.type == .data, header.length > 0 else {
            self.pendingHeader = nil
            return YamuxFrame(header: header, payload: nil)
        }
        // The session applies the exact per-stream window check; this bound only keeps a
        // hostile length from being buffered at all.
        if header.length > self.maxDataLength {
            throw YamuxError.windowExceeded(streamID: header.streamID)
        }
        guard let payload = buffer.readSlice(length: Int(header.length)) else {
            self.pendingHeader = header
            return nil
        }
        self.pendingHeader = nil
        return YamuxFrame(header: header, payload: payload)
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> YamuxFrame? {
        try self.decode(buffer: &buffer)
    }
}
