@testable import MessagePack
import NIOCore
import Testing

/// Every format at every size boundary: the header we choose, and that the
/// value reads back.
@Suite("Round trips at every boundary")
struct RoundTripTests {
    /// Writes `value`, checks the first byte, and reads it back.
    func roundTrip(_ value: MessagePackValue, options: MessagePackWriteOptions = .standard, firstByte: UInt8, headerLength: Int) throws {
        var buffer = ByteBuffer()
        let written = try buffer.writeMessagePackValue(value, options: options)
        #expect(written == buffer.readableBytes)
        #expect(buffer.bytes.first == firstByte, "value \(value)")
        var reader = MessagePackReader(buffer)
        #expect(try reader.readValue() == value)
        #expect(reader.isAtEnd)
        var scanner = MessagePackValueScanner()
        #expect(try scanner.scan(buffer) == buffer.readableBytes)
        _ = headerLength
    }

    @Test("integers take the smallest form, non-negative ones unsigned")
    func integerForms() throws {
        let cases: [(Int64, UInt8)] = [
            (0, 0x00), (127, 0x7f), (128, 0xcc), (255, 0xcc), (256, 0xcd), (65_535, 0xcd), (65_536, 0xce),
            (4_294_967_295, 0xce), (4_294_967_296, 0xcf), (Int64.max, 0xcf),
            (-1, 0xff), (-32, 0xe0), (-33, 0xd0), (-128, 0xd0), (-129, 0xd1), (-32_768, 0xd1), (-32_769, 0xd2),
            (Int64(Int32.min), 0xd2), (Int64(Int32.min) - 1, 0xd3), (Int64.min, 0xd3),
        ]
        for (value, first) in cases {
            try roundTrip(.int(value), firstByte: first, headerLength: 1)
        }
        try roundTrip(.uint(UInt64.max), firstByte: 0xcf, headerLength: 1)
    }

    @Test("every integer encoding reads into every type that holds the value")
    func integerConversions() throws {
        // 200 in every encoding that can carry it.
        let encodings: [[UInt8]] = [[0xcc, 200], [0xcd, 0, 200], [0xce, 0, 0, 0, 200], [0xcf, 0, 0, 0, 0, 0, 0, 0, 200],
                                    [0xd1, 0, 200], [0xd2, 0, 0, 0, 200], [0xd3, 0, 0, 0, 0, 0, 0, 0, 200]]
        for bytes in encodings {
            var reader = MessagePackReader(buffer(bytes))
            #expect(try reader.readInteger(as: UInt8.self) == 200)
            reader = MessagePackReader(buffer(bytes))
            #expect(try reader.readInteger(as: Int16.self) == 200)
            reader = MessagePackReader(buffer(bytes))
            #expect(throws: MessagePackError(.integerOverflow(value: "200", type: "Int8"), offset: 0)) {
                try reader.readInteger(as: Int8.self)
            }
            #expect(reader.offset == 0, "a failed read consumes nothing")
        }
        var negative = MessagePackReader(buffer([0xd0, 0x80]))
        #expect(throws: MessagePackError(.integerOverflow(value: "-128", type: "UInt64"), offset: 0)) {
            try negative.readInteger(as: UInt64.self)
        }
        var huge = MessagePackReader(buffer([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))
        #expect(throws: MessagePackError(.integerOverflow(value: "18446744073709551615", type: "Int64"), offset: 0)) {
            try huge.readInteger(as: Int64.self)
        }
    }

    @Test("strings at every length boundary, current and legacy headers", arguments: lengthBoundaries)
    func strings(length: Int) throws {
        let value = MessagePackValue.string(String(repeating: "s", count: length))
        let current: UInt8 = length < 32 ? 0xa0 | UInt8(length) : length < 256 ? 0xd9 : length < 65_536 ? 0xda : 0xdb
        try roundTrip(value, options: .standard, firstByte: current, headerLength: 1)
        let legacy: UInt8 = length < 32 ? 0xa0 | UInt8(length) : length < 65_536 ? 0xda : 0xdb
        try roundTrip(value, options: .goCompatible, firstByte: legacy, headerLength: 1)
    }

    @Test("binaries at every length boundary", arguments: lengthBoundaries)
    func binaries(length: Int) throws {
        let value = MessagePackValue.binary(ByteBuffer(repeating: 0xab, count: length))
        let first: UInt8 = length < 256 ? 0xc4 : length < 65_536 ? 0xc5 : 0xc6
        try roundTrip(value, firstByte: first, headerLength: 1)
    }

    @Test("arrays and maps at every count boundary", arguments: [0, 1, 15, 16, 65_535, 65_536])
    func containers(count: Int) throws {
        let array = MessagePackValue.array(Array(repeating: .nil, count: count))
        try roundTrip(array, firstByte: count < 16 ? 0x90 | UInt8(count) : count < 65_536 ? 0xdc : 0xdd, headerLength: 1)
        let map = MessagePackValue.map((0..<count).map { (key: .int(Int64($0)), value: .bool(true)) })
        try roundTrip(map, firstByte: count < 16 ? 0x80 | UInt8(count) : count < 65_536 ? 0xde : 0xdf, headerLength: 1)
    }

    @Test("extensions: fixext for 1, 2, 4, 8, 16 bytes, ext 8/16/32 otherwise")
    func extensions() throws {
        let cases: [(Int, UInt8)] = [(1, 0xd4), (2, 0xd5), (4, 0xd6), (8, 0xd7), (16, 0xd8), (0, 0xc7), (3, 0xc7), (255, 0xc7),
                                     (256, 0xc8), (65_535, 0xc8), (65_536, 0xc9)]
        for (length, first) in cases {
            try roundTrip(.extension(type: 42, payload: ByteBuffer(repeating: 7, count: length)), firstByte: first, headerLength: 1)
            try roundTrip(.extension(type: -128, payload: ByteBuffer(repeating: 7, count: length)), firstByte: first, headerLength: 1)
        }
    }

    @Test("timestamps take the 32-, 64- or 96-bit form")
    func timestamps() throws {
        try roundTrip(.timestamp(MessagePackTimestamp(seconds: 0)), firstByte: 0xd6, headerLength: 1)
        try roundTrip(.timestamp(MessagePackTimestamp(seconds: 4_294_967_295)), firstByte: 0xd6, headerLength: 1)
        try roundTrip(.timestamp(MessagePackTimestamp(seconds: 4_294_967_296)), firstByte: 0xd7, headerLength: 1)
        try roundTrip(.timestamp(MessagePackTimestamp(seconds: 1, nanoseconds: 999_999_999)), firstByte: 0xd7, headerLength: 1)
        try roundTrip(.timestamp(MessagePackTimestamp(seconds: 17_179_869_184)), firstByte: 0xc7, headerLength: 1)
        try roundTrip(.timestamp(MessagePackTimestamp(seconds: -1, nanoseconds: 5)), firstByte: 0xc7, headerLength: 1)
    }

    @Test("nil, bools and floats")
    func scalars() throws {
        try roundTrip(.nil, firstByte: 0xc0, headerLength: 1)
        try roundTrip(.bool(false), firstByte: 0xc2, headerLength: 1)
        try roundTrip(.bool(true), firstByte: 0xc3, headerLength: 1)
        try roundTrip(.float(1.5), firstByte: 0xca, headerLength: 1)
        try roundTrip(.double(-1.5e300), firstByte: 0xcb, headerLength: 1)
        try roundTrip(.float(.greatestFiniteMagnitude), firstByte: 0xca, headerLength: 1)
    }

    @Test("strings and binaries read as slices without copying")
    func slices() throws {
        var input = ByteBuffer()
        try input.writeMessagePackString("hello")
        try input.writeMessagePackBinary([1, 2, 3])
        var reader = MessagePackReader(input)
        let string = try reader.readStringBytes()
        let binary = try reader.readBinary()
        #expect(String(buffer: string) == "hello")
        #expect(binary.bytes == [1, 2, 3])
        // Slices share the input's storage.
        input.withUnsafeReadableBytes { whole in
            string.withUnsafeReadableBytes { part in
                #expect(part.baseAddress == whole.baseAddress! + 1)
            }
        }
    }

    @Test("float 64 reads into Float only when exact")
    func floatNarrowing() throws {
        var exact = ByteBuffer()
        exact.writeMessagePackDouble(0.5)
        var reader = MessagePackReader(exact)
        #expect(try reader.readFloat() == 0.5)
        var inexact = ByteBuffer()
        inexact.writeMessagePackDouble(0.1)
        reader = MessagePackReader(inexact)
        #expect(throws: MessagePackError.self) { try reader.readFloat() }
    }
}
