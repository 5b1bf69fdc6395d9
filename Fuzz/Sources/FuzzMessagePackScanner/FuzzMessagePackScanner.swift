// MessagePackValueScanner over bytes that arrive in pieces.
//
// The payload (see FuzzInput) is appended to a buffer piece by piece, the
// scanner called after each piece, and each value it finds consumed, as a
// stream parser does. Its answers must agree with
// - a fresh scanner given the whole buffer at once (the same values, ending
//   at the same offsets, then the same error or the same "need more");
// - MessagePackReader: where the scanner finds a complete value, readValue
//   and skipValue succeed and end at the same offset; where readValue reads
//   a value, the scanner finds it too (unless it is over maxMessageSize);
// - the decoder: decoding a found value as MessagePackValue succeeds.
// knownLength never exceeds maxMessageSize.
//
// Mode bit 0 picks small limits (so that every limit is hit) or roomy ones.

import FuzzSupport
import MessagePack
import NIOCore

let smallLimits = MessagePackLimits(maxDepth: 8, maxByteLength: 300, maxContainerCount: 40, maxMessageSize: 512)
let roomyLimits = MessagePackLimits(maxDepth: 64, maxByteLength: 64 * 1024, maxContainerCount: 64 * 1024, maxMessageSize: 1 << 20)

enum Outcome: Equatable {
    case needMore
    /// The error's code and message (which holds its figures), without the
    /// offset: pieces and the whole buffer must agree on what went wrong.
    case error(MessagePackError.Code, String)
}

/// The values a fresh scanner finds in `bytes` given all at once: their
/// lengths, then why it stopped.
func wholeScan(_ bytes: ByteBuffer, limits: MessagePackLimits) -> (lengths: [Int], outcome: Outcome) {
    var buffer = bytes
    var lengths: [Int] = []
    while true {
        var scanner = MessagePackValueScanner(limits: limits)
        do throws(MessagePackError) {
            guard let length = try scanner.scan(buffer) else { return (lengths, .needMore) }
            fuzzCheck(length > 0 && length <= buffer.readableBytes, "whole scan: length \(length) of \(buffer.readableBytes)")
            lengths.append(length)
            buffer.moveReaderIndex(forwardBy: length)
        } catch {
            return (lengths, .error(error.code, error.message))
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    let limits = input.mode & 1 == 0 ? smallLimits : roomyLimits

    // Piece by piece.
    var scanner = MessagePackValueScanner(limits: limits)
    var buffer = ByteBuffer()
    var lengths: [Int] = []
    var outcome = Outcome.needMore
    input.forEachPiece { piece, _ in
        guard outcome == .needMore else { return }
        buffer.writeBytes(piece)
        while true {
            do throws(MessagePackError) {
                guard let length = try scanner.scan(buffer) else {
                    fuzzCheck(scanner.knownLength <= limits.maxMessageSize, "knownLength \(scanner.knownLength) over the limit")
                    return
                }
                fuzzCheck(length > 0 && length <= buffer.readableBytes, "length \(length) of \(buffer.readableBytes)")
                fuzzCheck(scanner.knownLength == 0, "knownLength \(scanner.knownLength) after a value was found")
                lengths.append(length)
                buffer.moveReaderIndex(forwardBy: length)
            } catch {
                outcome = .error(error.code, error.message)
                return
            }
        }
    }

    // All at once.
    let all = ByteBuffer(bytes: input.payload)
    let whole = wholeScan(all, limits: limits)
    fuzzCheck(whole.lengths == lengths, "pieces found \(lengths), the whole buffer \(whole.lengths)")
    fuzzCheck(whole.outcome == outcome, "pieces ended in \(outcome), the whole buffer in \(whole.outcome)")

    // Against the reader and the decoder.
    var offset = 0
    for length in lengths {
        let rest = all.getSlice(at: offset, length: all.readableBytes - offset)!
        var reader = MessagePackReader(rest, limits: limits)
        var readable = true
        do throws(MessagePackError) {
            _ = try reader.readValue()
            fuzzCheck(reader.offset == length, "readValue ends at \(reader.offset), the scanner at \(length)")
        } catch {
            // The scanner walks headers only: it does not look inside
            // strings or timestamps, which the reader checks.
            switch error.code {
            case .invalidUTF8, .invalidExtension: readable = false
            default: fuzzCheck(false, "the scanner found a value of \(length) bytes that readValue rejects: \(error)")
            }
        }
        var skipper = MessagePackReader(rest, limits: limits)
        fuzzCheck((try? skipper.skipValue()) != nil && skipper.offset == length, "skipValue does not end where the scanner does")
        if readable {
            let value = rest.getSlice(at: 0, length: length)!
            fuzzCheck((try? MessagePackDecoder(limits: limits).decode(MessagePackValue.self, from: value)) != nil, "the decoder rejects a value the scanner found")
        }
        offset += length
    }
    // Where the scanner stopped: if the reader reads a value there, the
    // scanner must have said why it did not (only the message size limit,
    // which the reader does not apply, may tell them apart).
    let rest = all.getSlice(at: offset, length: all.readableBytes - offset)!
    var reader = MessagePackReader(rest, limits: limits)
    if (try? reader.readValue()) != nil {
        var code: MessagePackError.Code?
        if case .error(let stopped, _) = outcome { code = stopped }
        if code != .messageSizeLimitExceeded {
            fuzzCheck(false, "readValue reads a value of \(reader.offset) bytes where the scanner stopped with \(outcome)")
        }
    }
    return 0
}
