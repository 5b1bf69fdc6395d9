@testable import MessagePack
import NIOCore
import Testing

/// Types that write and read their own MessagePack (`MessagePackSelfCodable`)
/// must be indistinguishable on the wire from their `Codable` form, at the
/// top and nested, and their misuse must end in typed errors.
@Suite("Self-coding types")
struct SelfCodingTests {
    /// Go's `struct{ X, Y int64; Label string }` through `Codable` only.
    struct CodablePoint: Codable, Equatable {
        var x: Int64
        var y: Int64
        var label: String
        enum CodingKeys: String, CodingKey {
            case x = "X"
            case y = "Y"
            case label = "Label"
        }
    }

    /// The same struct, self-coding: reads keys in any order, skips unknown ones.
    struct Point: Codable, Equatable, MessagePackSelfCodable {
        var x: Int64
        var y: Int64
        var label: String
        enum CodingKeys: String, CodingKey {
            case x = "X"
            case y = "Y"
            case label = "Label"
        }

        init(x: Int64, y: Int64, label: String) {
            self.x = x
            self.y = y
            self.label = label
        }

        func writeMessagePack(into buffer: inout ByteBuffer, options: MessagePackWriteOptions) throws {
            try buffer.writeMessagePackMapHeader(count: 3)
            try buffer.writeMessagePackString("X", options: options)
            buffer.writeMessagePackInteger(x)
            try buffer.writeMessagePackString("Y", options: options)
            buffer.writeMessagePackInteger(y)
            try buffer.writeMessagePackString("Label", options: options)
            try buffer.writeMessagePackString(label, options: options)
        }

        init(readingMessagePack reader: inout MessagePackReader) throws {
            (x, y, label) = (0, 0, "")
            for _ in 0..<(try reader.readMapHeader()) {
                switch try reader.readString() {
                case "X": x = try reader.readInteger()
                case "Y": y = try reader.readInteger()
                case "Label": label = try reader.readString()
                default: try reader.skipValue()
                }
            }
        }

        var codable: CodablePoint { CodablePoint(x: x, y: y, label: label) }
    }

    struct CodableShape: Codable, Equatable {
        var name: String
        var corners: [CodablePoint]
        var center: CodablePoint?
    }

    /// Self-coding points nested in a `Codable` struct.
    struct Shape: Codable, Equatable {
        var name: String
        var corners: [Point]
        var center: Point?
    }

    /// Writes what `write` says, to misuse the protocol.
    struct Misbehaving: Codable, MessagePackSelfCodable {
        struct Failure: Error, Equatable {}
        enum Write: Codable { case nothing, twoValues, fails, hugeString }
        enum Read: Codable { case lessThanTheValue, moreThanTheValue, fails }
        var write: Write = .nothing
        var read: Read = .fails

        init(write: Write) { self.write = write }

        func writeMessagePack(into buffer: inout ByteBuffer, options: MessagePackWriteOptions) throws {
            switch write {
            case .nothing: break
            case .twoValues:
                buffer.writeMessagePackInteger(1)
                buffer.writeMessagePackInteger(2)
            case .fails:
                buffer.writeMessagePackInteger(1)
                throw Failure()
            case .hugeString:
                buffer.writeMessagePackInteger(1)
                try buffer.writeMessagePackStringHeader(count: Int(UInt32.max) + 1, headers: options.stringHeaders)
            }
        }

        init(readingMessagePack reader: inout MessagePackReader) throws {
            _ = try reader.readArrayHeader()
            switch try reader.readInteger(as: Int.self) {
            case 0: read = .lessThanTheValue
            case 1:
                read = .moreThanTheValue
                try reader.skipValue()
                try reader.skipValue()
            default: throw Failure()
            }
        }
    }

    static let points = [
        Point(x: 1, y: -2, label: "a"),
        Point(x: .max, y: .min, label: String(repeating: "é", count: 200)),
        Point(x: 0, y: 0, label: ""),
    ]

    @Test("a self-coding value writes the bytes its Codable form writes, under both write presets", arguments: [MessagePackWriteOptions.goCompatible, .standard])
    func sameBytesAsCodable(options: MessagePackWriteOptions) throws {
        let encoder = MessagePackEncoder(options: options)
        for point in Self.points {
            #expect(try encoder.encode(point) == encoder.encode(point.codable))
        }
    }

    @Test("a self-decoding value reads its Codable form, keys in any order, unknown keys skipped")
    func readsCodableForm() throws {
        let decoder = MessagePackDecoder()
        for point in Self.points {
            #expect(try decoder.decode(Point.self, from: MessagePackEncoder().encode(point.codable)) == point)
        }
        var shuffled = ByteBuffer()
        try shuffled.writeMessagePackValue(["Extra": ["nested": [1, 2, 3]], "Label": "b", "Y": 7, "X": 6])
        #expect(try decoder.decode(Point.self, from: shuffled) == Point(x: 6, y: 7, label: "b"))
    }

    @Test("nested in Codable values, self-coding values encode and decode as their Codable twins do")
    func nestedInCodable() throws {
        let shape = Shape(name: "triangle", corners: Array(Self.points), center: Self.points[0])
        let twin = CodableShape(name: shape.name, corners: shape.corners.map(\.codable), center: shape.center?.codable)
        let encoder = MessagePackEncoder()
        let bytes = try encoder.encode(shape)
        #expect(bytes == (try encoder.encode(twin)))
        #expect(try MessagePackDecoder().decode(Shape.self, from: bytes) == shape)
        let none = Shape(name: "empty", corners: [], center: nil)
        #expect(try MessagePackDecoder().decode(Shape.self, from: encoder.encode(none)) == none)
    }

    @Test("a self-encoder that writes no value, or two, gets an EncodingError and leaves the buffer as it was", arguments: [Misbehaving.Write.nothing, .twoValues])
    func writesNotOneValue(write: Misbehaving.Write) throws {
        var buffer = ByteBuffer(bytes: [0xc0])
        #expect(throws: EncodingError.self) { try MessagePackEncoder().encode(Misbehaving(write: write), into: &buffer) }
        #expect(buffer == ByteBuffer(bytes: [0xc0]))
        // Nested, the same.
        #expect(throws: EncodingError.self) { try MessagePackEncoder().encode([Misbehaving(write: write)]) }
    }

    @Test("a self-encoder's own error passes through; a writer's error becomes an EncodingError carrying it")
    func encoderErrors() throws {
        var buffer = ByteBuffer()
        #expect(throws: Misbehaving.Failure()) { try MessagePackEncoder().encode(Misbehaving(write: .fails), into: &buffer) }
        #expect(buffer.readableBytes == 0)
        do {
            try MessagePackEncoder().encode(Misbehaving(write: .hugeString), into: &buffer)
            Issue.record("a 4 GiB string header was written")
        } catch let EncodingError.invalidValue(_, context) {
            let underlying = try #require(context.underlyingError as? MessagePackError)
            #expect(underlying.detail == .lengthNotEncodable(Int(UInt32.max) + 1))
        }
        #expect(buffer.readableBytes == 0)
    }

    @Test("a self-decoder that reads less or more than its value gets DecodingError.dataCorrupted, at the top and nested")
    func readsNotOneValue() throws {
        let decoder = MessagePackDecoder()
        var less = ByteBuffer()
        try less.writeMessagePackValue([0, "left unread"])
        var more = ByteBuffer()
        try more.writeMessagePackValue([1])
        for bytes in [less, more] {
            #expect {
                _ = try decoder.decode(Misbehaving.self, from: bytes)
            } throws: { error in
                guard case DecodingError.dataCorrupted(let context) = error else { return false }
                return context.underlyingError is MessagePackError
            }
            var list = ByteBuffer()
            try list.writeMessagePackArrayHeader(count: 1)
            list.writeImmutableBuffer(bytes)
            #expect(throws: DecodingError.self) { _ = try decoder.decode([Misbehaving].self, from: list) }
        }
    }

    @Test("reader errors become DecodingErrors carrying them; a self-decoder's own error passes through")
    func decoderErrors() throws {
        let decoder = MessagePackDecoder()
        var notAMap = ByteBuffer()
        try notAMap.writeMessagePackString("not a map")
        #expect {
            _ = try decoder.decode(Point.self, from: notAMap)
        } throws: { error in
            guard case DecodingError.typeMismatch(_, let context) = error else { return false }
            return context.underlyingError is MessagePackError
        }
        var wrongField = ByteBuffer()
        try wrongField.writeMessagePackValue(["X": "six"])
        #expect(throws: DecodingError.self) { _ = try decoder.decode(Point.self, from: wrongField) }
        var failing = ByteBuffer()
        try failing.writeMessagePackValue([2])
        #expect(throws: Misbehaving.Failure()) { _ = try decoder.decode(Misbehaving.self, from: failing) }
        // Truncated input never reaches the type: the scan stops it.
        let whole = try MessagePackEncoder().encode(Self.points[1])
        #expect(throws: DecodingError.self) { _ = try decoder.decode(Point.self, from: whole.getSlice(at: 0, length: whole.readableBytes - 1)!) }
    }
}
