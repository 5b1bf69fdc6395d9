import NIOCore

/// What the parser found next in the TCP byte stream.
enum YamuxFrameEvent {
    /// A frame header. For a data frame with a non-zero length, `.payload` pieces follow until
    /// one is `last`; for every other frame the header is the whole frame.
    case header(YamuxFrameHeader)
    /// Part (or all) of the current data frame's payload: a slice of the received bytes, never
    /// copied. `last` marks the piece that completes the frame.
    case payload(ByteBuffer, last: Bool)
}

/// Splits the TCP byte stream into yamux frames, handing data payloads on *as they arrive*.
///
/// Why not a `ByteToMessageDecoder` that emits whole frames: a 64 KiB data frame rarely fits
/// in one socket read (NIO reads at most 64 KiB at a time, and the 12-byte header shifts every
/// frame against the read boundaries), so whole frames mean gluing reads together, a copy of
/// nearly every byte, which then dominates a bulk transfer's CPU. A yamux payload is just stream bytes, so pieces can go to
/// the stream as they come: payloads are always slices of the receive buffers. Only a header
/// split across two reads is copied (at most 12 bytes).
struct YamuxFrameParser {
    /// Largest data payload accepted. A peer may never send more than the receive window we
    /// offered, so anything larger is a window overrun; checking it at the header stops a
    /// hostile length field before any of its bytes are taken.
    var maxDataLength: UInt32

    /// The first bytes of a header split across reads.
    private var partialHeader: ByteBuffer?
    /// Payload bytes of the current data frame still to come.
    private(set) var payloadRemaining = 0

    init(maxDataLength: UInt32) {
        self.maxDataLength = maxDataLength
    }

    /// Whether the bytes handed in so far end inside a frame (part of a header, or a
    /// data frame whose payload has not all arrived).
    var isInsideFrame: Bool { self.partialHeader != nil || self.payloadRemaining > 0 }

    /// The next event from `buffer`, or nil when `buffer` holds nothing more to hand out
    /// (whatever was left of it is kept for the next call).
    mutating func next(from buffer: inout ByteBuffer) throws(YamuxError) -> YamuxFrameEvent? {
        if self.payloadRemaining > 0 {
            let available = buffer.readableBytes
            guard available > 0 else { return nil }
            let length = min(self.payloadRemaining, available)
            self.payloadRemaining -= length
            return .payload(buffer.readSlice(length: length)!, last: self.payloadRemaining == 0)
        }

        let header: YamuxFrameHeader
        do {
            if var partial = self.partialHeader {
                let wanted = YamuxFrameHeader.size - partial.readableBytes
                let taken = min(wanted, buffer.readableBytes)
                guard taken > 0 else { return nil }
                partial.writeImmutableBuffer(buffer.readSlice(length: taken)!)
                guard partial.readableBytes == YamuxFrameHeader.size else {
                    self.partialHeader = partial
                    return nil
                }
                self.partialHeader = nil
                header = try YamuxFrameHeader.read(from: &partial)!
            } else if let parsed = try YamuxFrameHeader.read(from: &buffer) {
                header = parsed
            } else {
                if buffer.readableBytes > 0 {
                    // Copied so the (large) receive buffer is not kept alive for a few bytes.
                    var partial = ByteBufferAllocator().buffer(capacity: YamuxFrameHeader.size)
                    partial.writeBuffer(&buffer)
                    self.partialHeader = partial
                }
                return nil
            }
        } catch {
            switch error {
            case .unsupportedVersion(let v): throw YamuxError.unsupportedVersion(v)
            case .unknownType(let t): throw YamuxError.unknownFrameType(t)
            }
        }
        // Only data frames carry a payload; for every other type `length` is a value.
        if header.type == .data, header.length > 0 {
            // The session applies the exact per-stream window check; this bound only keeps a
            // hostile length from being trusted at all.
            if header.length > self.maxDataLength {
                throw YamuxError.windowExceeded(streamID: header.streamID)
            }
            self.payloadRemaining = Int(header.length)
        }
        return .header(header)
    }
}
