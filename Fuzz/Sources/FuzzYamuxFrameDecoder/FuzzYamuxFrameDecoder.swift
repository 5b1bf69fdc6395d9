// The yamux frame parser (YamuxFrameParser, internal to Yamux: reached with
// @testable import, which the debug fuzz build allows) over bytes that
// arrive in pieces.
//
// The events it hands out, written back (each header's 12 bytes, then the
// payload pieces), must give back exactly the bytes it consumed, in order;
// each data frame's pieces add up to its length, and only the last is
// marked last. A reference parser that sees the whole payload at once must
// find the same frames and stop for the same reason. Mode byte: bit 0
// picks a small maximum data length (from the first control byte) instead of
// the 16 MiB the session uses with auto-tuning.

import FuzzSupport
import NIOCore
@testable import Yamux

struct Frame: Equatable {
    var header: YamuxFrameHeader
    var payload: [UInt8]
}

enum Stop: Equatable {
    case needMore
    case error(YamuxError.Code)
}

/// Frames in `bytes` as the protocol defines them, parsed all at once.
func reference(_ bytes: UnsafeRawBufferPointer, maxDataLength: UInt32) -> (frames: [Frame], stop: Stop) {
    var frames: [Frame] = []
    var offset = 0
    while bytes.count - offset >= YamuxFrameHeader.size {
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[offset + at]) << 8 | UInt16(bytes[offset + at + 1]) }
        func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) << 16 | UInt32(u16(at + 2)) }
        guard bytes[offset] == 0 else { return (frames, .error(.unsupportedVersion)) }
        guard let type = YamuxFrameType(rawValue: bytes[offset + 1]) else { return (frames, .error(.unknownFrameType)) }
        let header = YamuxFrameHeader(type: type, flags: YamuxFrameFlags(rawValue: u16(2)), streamID: u32(4), length: u32(8))
        var payloadLength = 0
        if type == .data {
            guard header.length <= maxDataLength else { return (frames, .error(.windowExceeded)) }
            payloadLength = Int(header.length)
        }
        let available = min(payloadLength, bytes.count - offset - YamuxFrameHeader.size)
        let start = offset + YamuxFrameHeader.size
        frames.append(Frame(header: header, payload: Array(bytes[start..<(start + available)])))
        offset = start + available
        if available < payloadLength { return (frames, .needMore) }
    }
    return (frames, .needMore)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    let maxDataLength: UInt32 = input.mode & 1 == 0 ? 16 * 1024 * 1024 : UInt32(count > 2 ? start.load(fromByteOffset: 2, as: UInt8.self) : 0) * 3
    var parser = YamuxFrameParser(maxDataLength: maxDataLength)
    var frames: [Frame] = []
    var consumed = ByteBuffer()
    var stop = Stop.needMore
    var payloadExpected = 0

    input.forEachPiece { piece, _ in
        guard stop == .needMore else { return }
        var buffer = ByteBuffer(bytes: piece)
        let before = buffer.readableBytes
        while true {
            let event: YamuxFrameEvent?
            do throws(YamuxError) {
                event = try parser.next(from: &buffer)
            } catch {
                stop = .error(error.code)
                return
            }
            guard let event else { break }
            switch event {
            case .header(let header):
                fuzzCheck(payloadExpected == 0, "a header while \(payloadExpected) payload bytes were due")
                header.write(to: &consumed)
                frames.append(Frame(header: header, payload: []))
                payloadExpected = header.type == .data ? Int(header.length) : 0
                fuzzCheck(parser.payloadRemaining == payloadExpected, "payloadRemaining \(parser.payloadRemaining), header says \(payloadExpected)")
            case .payload(let slice, let last):
                fuzzCheck(slice.readableBytes > 0, "an empty payload piece")
                fuzzCheck(slice.readableBytes <= payloadExpected, "a payload piece longer than the frame")
                payloadExpected -= slice.readableBytes
                fuzzCheck(last == (payloadExpected == 0), "last is \(last) with \(payloadExpected) bytes to come")
                consumed.writeImmutableBuffer(slice)
                frames[frames.count - 1].payload += Array(slice.readableBytesView)
            }
        }
        // Whatever the parser did not hand out, it kept (a partial header).
        fuzzCheck(buffer.readableBytes == 0, "the parser left \(buffer.readableBytes) of \(before) bytes unread and unkept")
    }

    let expected = reference(input.payload, maxDataLength: maxDataLength)
    fuzzCheck(frames == expected.frames, "frames differ from the reference: \(frames.count) vs \(expected.frames.count)")
    fuzzCheck(stop == expected.stop, "stopped with \(stop), the reference with \(expected.stop)")
    consumed.withUnsafeReadableBytes { written in
        fuzzCheck(written.count <= input.payload.count && written.elementsEqual(input.payload.prefix(written.count)), "the frames written back are not the bytes read")
    }
    return 0
}
