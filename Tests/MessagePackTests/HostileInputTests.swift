@testable import MessagePack
import NIOCore
import Testing

/// Input from a peer that is broken or hostile: truncated, lying, deep,
/// invalid. Each gets a clear error (or "need more bytes"), never a crash or
/// a large allocation.
@Suite("Hostile input")
struct HostileInputTests {
    static func sample() throws -> ByteBuffer {
        var buffer = ByteBuffer()
        let value: MessagePackValue = [
            "ServiceMethod": "Echo.Echo", "Seq": .uint(.max),
            "Args": [1, -1, 300, -300, 70_000, 1.5, "x", .binary(ByteBuffer(repeating: 1, count: 300)), nil, true],
            "Nested": ["a": ["b": ["c": .timestamp(MessagePackTimestamp(seconds: 1, nanoseconds: 2))]]],
            "Ext": .extension(type: 5, payload: ByteBuffer(repeating: 9, count: 3)),
            "Long": .string(String(repeating: "y", count: 70_000)),
        ]
        try buffer.writeMessagePackValue(value)
        return buffer
    }

    @Test("every proper prefix of a valid message needs more bytes and consumes nothing")
    func everyPrefix() async throws {
        let whole = try Self.sample()
        let bytes = whole.bytes
        // Every prefix up to the long string's payload, then a stride through it.
        let lengths = Array(0..<(bytes.count - 70_000)) + Array(stride(from: bytes.count - 70_000, to: bytes.count, by: 997)) + [bytes.count - 1]
        for length in lengths {
            await yieldNow()
            var prefix = buffer(Array(bytes[0..<length]))
            #expect(try prefix.readMessagePackValue() == nil, "prefix of \(length) bytes")
            #expect(prefix.readableBytes == length)
            var decodable = buffer(Array(bytes[0..<length]))
            #expect(try MessagePackDecoder().decode(MessagePackValue.self, from: &decodable) == nil)
            #expect(decodable.readableBytes == length)
        }
        var complete = whole
        #expect(try complete.readMessagePackValue() != nil)
    }

    @Test("a scanner fed one byte at a time finds the end exactly once")
    func incrementalScanner() throws {
        let whole = try Self.sample()
        var scanner = MessagePackValueScanner()
        var received = ByteBuffer()
        var found: [Int] = []
        var input = whole
        // Bytes in pieces of 1, 2, 3, ... so headers split everywhere.
        var piece = 1
        while input.readableBytes > 0 {
            let slice = input.readSlice(length: min(piece, input.readableBytes))!
            received.writeImmutableBuffer(slice)
            if let length = try scanner.scan(received) { found.append(length) }
            piece = piece % 13 + 1
        }
        #expect(found == [whole.readableBytes])
    }

    @Test("the known length counts each payload whose header has come, and resets with each value")
    func knownLength() throws {
        var scanner = MessagePackValueScanner()
        #expect(scanner.knownLength == 0)
        // {"Msg": bin 300}: map, 3-byte key, bin16 header; the payload has not come.
        let start = buffer([0x81, 0xa3, 0x4d, 0x73, 0x67, 0xc5, 0x01, 0x2c])
        #expect(try scanner.scan(start) == nil)
        #expect(scanner.knownLength == 8 + 300)
        var whole = start
        whole.writeRepeatingByte(0x61, count: 300)
        #expect(try scanner.scan(whole) == 308)
        #expect(scanner.knownLength == 0)
    }

    @Test("a 6-byte input claiming a 4 GiB string fails at once")
    func lyingLength() throws {
        let lie = buffer([0xdb, 0xff, 0xff, 0xff, 0xff, 0x41])
        var scanner = MessagePackValueScanner()
        #expect(throws: MessagePackError(.byteLengthLimitExceeded(length: 4_294_967_295, limit: 16 << 20), offset: 0)) {
            try scanner.scan(lie)
        }
        #expect(throws: DecodingError.self) { try MessagePackDecoder().decode(String.self, from: lie) }
        var reader = MessagePackReader(lie)
        #expect(throws: MessagePackError(.byteLengthLimitExceeded(length: 4_294_967_295, limit: 16 << 20), offset: 0)) {
            try reader.readString()
        }
    }

    @Test("a length within the limit but past the input is truncation, not a crash")
    func lengthPastEnd() throws {
        var reader = MessagePackReader(buffer([0xc6, 0x00, 0x01, 0x00, 0x00, 1, 2, 3]))
        #expect(throws: MessagePackError(.truncated(needed: 65_541, available: 8), offset: 0)) { try reader.readBinary() }
        #expect(reader.offset == 0)
    }

    @Test("an array claiming four billion elements fails at its header")
    func lyingCount() throws {
        var scanner = MessagePackValueScanner()
        #expect(throws: MessagePackError(.containerCountLimitExceeded(count: 4_294_967_295, limit: 1 << 20), offset: 0)) {
            try scanner.scan(buffer([0xdd, 0xff, 0xff, 0xff, 0xff]))
        }
        // Within the count limit but with no elements: need more bytes, and
        // reading it as complete input fails without reserving a million slots.
        var partial = buffer([0xdd, 0x00, 0x0f, 0x00, 0x00])
        #expect(try partial.readMessagePackValue() == nil)
        var reader = MessagePackReader(partial)
        #expect(throws: MessagePackError.self) { try reader.readValue() }
    }

    @Test("nesting deeper than the limit fails with the depth error", arguments: [1, 8, 64])
    func deepNesting(limit: Int) throws {
        let limits = MessagePackLimits(maxDepth: limit)
        // `limit` nested arrays are fine, one more is not.
        let fine = buffer(Array(repeating: 0x91, count: limit - 1) + [0x90])
        var scanner = MessagePackValueScanner(limits: limits)
        #expect(try scanner.scan(fine) == limit)
        var reader = MessagePackReader(fine, limits: limits)
        _ = try reader.readValue()

        let deep = buffer(Array(repeating: 0x91, count: limit) + [0x90])
        scanner = MessagePackValueScanner(limits: limits)
        #expect(throws: MessagePackError(.depthLimitExceeded(limit: limit), offset: limit)) { try scanner.scan(deep) }
        reader = MessagePackReader(deep, limits: limits)
        #expect(throws: MessagePackError(.depthLimitExceeded(limit: limit), offset: limit)) { try reader.readValue() }
    }

    @Test("a million levels of nesting costs no stack: rejected at the limit")
    func absurdNesting() throws {
        let deep = ByteBuffer(repeating: 0x91, count: 1_000_000)
        var scanner = MessagePackValueScanner()
        #expect(throws: MessagePackError(.depthLimitExceeded(limit: 64), offset: 64)) { try scanner.scan(deep) }
        #expect(throws: DecodingError.self) { try MessagePackDecoder().decode(MessagePackValue.self, from: deep) }
    }

    @Test("a total size above the limit fails as soon as the header says so")
    func messageSize() throws {
        let limits = MessagePackLimits(maxMessageSize: 100)
        var scanner = MessagePackValueScanner(limits: limits)
        #expect(throws: MessagePackError(.messageSizeLimitExceeded(size: 203, limit: 100), offset: 0)) {
            try scanner.scan(buffer([0xc5, 0x00, 200]))
        }
    }

    @Test("invalid UTF-8 in a str is an error for String, fine for bytes")
    func invalidUTF8() throws {
        let bad = buffer([0xa3, 0x61, 0xff, 0x62])
        var reader = MessagePackReader(bad)
        #expect(throws: MessagePackError(.invalidUTF8, offset: 0)) { try reader.readString() }
        reader = MessagePackReader(bad)
        #expect(try reader.readStringBytes().bytes == [0x61, 0xff, 0x62])
        #expect(throws: DecodingError.self) { try MessagePackDecoder().decode(String.self, from: bad) }
        #expect(try MessagePackDecoder().decode([UInt8].self, from: bad) == [0x61, 0xff, 0x62])
    }

    @Test("0xc1 is never a value")
    func neverUsedByte() throws {
        var reader = MessagePackReader(buffer([0x92, 0x01, 0xc1]))
        #expect(throws: MessagePackError(.invalidFormatByte(0xc1), offset: 2)) { try reader.readValue() }
        var scanner = MessagePackValueScanner()
        #expect(throws: MessagePackError(.invalidFormatByte(0xc1), offset: 2)) { try scanner.scan(buffer([0x92, 0x01, 0xc1])) }
    }

    @Test("trailing garbage after a complete value is an error for whole-buffer decoding")
    func trailingGarbage() throws {
        let input = buffer([0x01, 0x02])
        #expect(throws: DecodingError.self) { try MessagePackDecoder().decode(Int.self, from: input) }
        do {
            _ = try MessagePackDecoder().decode(Int.self, from: input)
        } catch let DecodingError.dataCorrupted(context) {
            #expect(context.underlyingError as? MessagePackError == MessagePackError(.trailingBytes(count: 1), offset: 1))
        }
        // The stream form leaves the next value for the next call.
        var stream = input
        #expect(try MessagePackDecoder().decode(Int.self, from: &stream) == 1)
        #expect(try MessagePackDecoder().decode(Int.self, from: &stream) == 2)
        #expect(stream.readableBytes == 0)
    }

    @Test("timestamps of a wrong length and out-of-range nanoseconds are rejected")
    func badTimestamps() throws {
        var reader = MessagePackReader(buffer([0xd5, 0xff, 0, 0]))
        #expect(throws: MessagePackError(.invalidExtension(type: -1, length: 2), offset: 0)) { try reader.readValue() }
        // 64-bit form with nanoseconds = 2^30 - 1 > 999,999,999.
        reader = MessagePackReader(buffer([0xd7, 0xff, 0xff, 0xff, 0xff, 0xfc, 0, 0, 0, 0]))
        #expect(throws: MessagePackError(.invalidExtension(type: -1, length: 8), offset: 0)) { try reader.readValue() }
    }

    @Test("random garbage never crashes the scanner, the reader or the decoder")
    func randomGarbage() async throws {
        var random = SeededGenerator(seed: 99)
        let limits = MessagePackLimits(maxByteLength: 1 << 16, maxContainerCount: 1 << 12, maxMessageSize: 1 << 20)
        for iteration in 0..<20_000 {
            if iteration % 100 == 0 { await yieldNow() }
            let length = Int.random(in: 0...32, using: &random)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            var scanner = MessagePackValueScanner(limits: limits)
            let scanned = try? scanner.scan(buffer(bytes))
            var reader = MessagePackReader(buffer(bytes), limits: limits)
            do {
                _ = try reader.readValue()
                // Whatever the reader accepts, the scanner framed the same way.
                #expect(scanned == reader.offset)
            } catch {
                // The scanner checks structure only, the reader content too
                // (UTF-8, timestamps), so only truncation must agree.
                if error.code == .truncated { #expect(scanned == nil) }
            }
            _ = try? MessagePackDecoder(limits: limits).decode(MessagePackValue.self, from: buffer(bytes))
        }
    }

    @Test("errors say what and where")
    func errorText() {
        let error = MessagePackError(.byteLengthLimitExceeded(length: 4_294_967_295, limit: 16), offset: 7)
        #expect(error.code == .byteLengthLimitExceeded)
        #expect(error.offset == 7)
        #expect(error.description == "MessagePack: payload length 4294967295 exceeds the limit of 16 bytes (MessagePackLimits.maxByteLength) at byte offset 7")
    }

    @Test("a self-coding type's own error carries its code and text")
    func errorOfYourOwn() {
        let error = MessagePackError(code: .invalidValue, message: "port 70000 is out of range")
        #expect(error.code == .invalidValue)
        #expect(error.offset == nil)
        #expect(error.description == "MessagePack: port 70000 is out of range")
    }
}
