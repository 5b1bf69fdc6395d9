import FoundationEssentials
import MessagePack
import NIOCore
import Testing

/// A Go-shaped request header: field names as Go spells them.
struct RequestHeader: Codable, Equatable {
    var serviceMethod: String
    var seq: UInt64

    enum CodingKeys: String, CodingKey {
        case serviceMethod = "ServiceMethod"
        case seq = "Seq"
    }
}

struct Inner: Codable, Equatable {
    var name: String
    var tags: [String]
    var score: Double?
}

enum Color: String, Codable, Equatable {
    case red, green
}

enum Shape: Codable, Equatable {
    case circle(radius: Double)
    case square(side: Int)
    case none
}

struct Everything: Codable, Equatable {
    var bool: Bool
    var int8: Int8
    var int16: Int16
    var int32: Int32
    var int64: Int64
    var uint8: UInt8
    var uint16: UInt16
    var uint32: UInt32
    var uint64: UInt64
    var int: Int
    var float: Float
    var double: Double
    var string: String
    var bytes: [UInt8]
    var data: Data
    var optional: Int?
    var missing: String?
    var inner: Inner
    var inners: [Inner]
    var matrix: [[Int]]
    var byName: [String: Inner]
    var byNumber: [Int: String]
    var color: Color
    var shapes: [Shape]
    var timestamp: MessagePackTimestamp
    var dynamic: MessagePackValue
}

@Suite("Codable")
struct CodableTests {
    static let everything = Everything(
        bool: true, int8: -8, int16: -1_600, int32: -320_000, int64: .min, uint8: 8, uint16: 1_600, uint32: 320_000,
        uint64: .max, int: 42, float: 1.25, double: -2.5e-300, string: "héllo €", bytes: [0, 1, 255], data: Data([9, 8, 7]),
        optional: 7, missing: nil, inner: Inner(name: "a", tags: ["x", "y"], score: nil),
        inners: (0..<20).map { Inner(name: "n\($0)", tags: [], score: Double($0)) },
        matrix: [[], [1], Array(0..<100)], byName: ["k": Inner(name: "v", tags: ["t"], score: 1)],
        byNumber: [1: "one", -2: "minus two"], color: .green,
        shapes: [.circle(radius: 1.5), .square(side: 2), .none],
        timestamp: MessagePackTimestamp(seconds: 1_700_000_000, nanoseconds: 5),
        dynamic: ["any": [1, "two", 3.0, nil]]
    )

    @Test("nested structs, optionals, enums, arrays and dictionaries round-trip", arguments: [MessagePackWriteOptions.goCompatible, .standard])
    func roundTrip(options: MessagePackWriteOptions) throws {
        let encoded = try MessagePackEncoder(options: options).encode(Self.everything)
        let decoded = try MessagePackDecoder().decode(Everything.self, from: encoded)
        #expect(decoded == Self.everything)
        // What msgpack-c reads from it is a map keyed by the coding keys.
        guard case .value(let value, let consumed) = ReferenceCodec.unpack(encoded.bytes) else {
            Issue.record("msgpack-c could not read our encoding")
            return
        }
        #expect(consumed == encoded.readableBytes)
        #expect(value["inner"]?["name"] == "a")
        guard case .map(let byNumber)? = value["byNumber"] else {
            Issue.record("byNumber is not a map")
            return
        }
        #expect(byNumber.contains { $0.key == .int(1) && $0.value == "one" }, "Int keys go out as integers")
        #expect(value["inners"]?[19]?["name"] == "n19")
        #expect(value["uint64"] == .uint(.max))
    }

    @Test("a struct encodes exactly as Go writes it: a map keyed by field name")
    func goShapedHeader() throws {
        let header = RequestHeader(serviceMethod: "Echo.Echo", seq: 1)
        let encoded = try MessagePackEncoder().encode(header)
        // fixmap(2), fixstr "ServiceMethod", fixstr "Echo.Echo", fixstr "Seq", 1
        let expected: [UInt8] = [0x82, 0xad] + Array("ServiceMethod".utf8) + [0xa9] + Array("Echo.Echo".utf8) + [0xa3] + Array("Seq".utf8) + [0x01]
        #expect(encoded.bytes == expected)
        #expect(try MessagePackDecoder().decode(RequestHeader.self, from: encoded) == header)
    }

    @Test("bytes are str towards Go, bin in the standard profile")
    func byteProfiles() throws {
        struct Blob: Codable { var payload: [UInt8] }
        let go = try MessagePackEncoder(options: .goCompatible).encode(Blob(payload: [1, 2]))
        #expect(go.bytes == [0x81, 0xa7] + Array("payload".utf8) + [0xa2, 1, 2])
        let standard = try MessagePackEncoder(options: .standard).encode(Blob(payload: [1, 2]))
        #expect(standard.bytes == [0x81, 0xa7] + Array("payload".utf8) + [0xc4, 2, 1, 2])
    }

    @Test("unknown keys are skipped, keys may come in any order, duplicates: last wins")
    func keyHandling() throws {
        let wire: MessagePackValue = ["Extra": ["deep": [1, 2, ["x": nil]]], "Seq": 5, "ServiceMethod": "A.B", "Seq ": 9, "Seq": 6]
        var buffer = ByteBuffer()
        try buffer.writeMessagePackValue(wire)
        #expect(try MessagePackDecoder().decode(RequestHeader.self, from: buffer) == RequestHeader(serviceMethod: "A.B", seq: 6))
    }

    @Test("a large map (hash-indexed) decodes into a dictionary")
    func largeDictionary() throws {
        let dictionary = Dictionary(uniqueKeysWithValues: (0..<5_000).map { ("key\($0)", $0) })
        let encoded = try MessagePackEncoder().encode(dictionary)
        #expect(try MessagePackDecoder().decode([String: Int].self, from: encoded) == dictionary)
    }

    @Test("Go zero values: nil decodes as an empty array, map, string or bytes")
    func goNilsAsEmpty() throws {
        struct GoStruct: Codable, Equatable {
            var Items: [String]
            var Meta: [String: String]
            var Name: String
            var Blob: [UInt8]
        }
        let wire: MessagePackValue = ["Items": nil, "Meta": nil, "Name": nil, "Blob": nil]
        var buffer = ByteBuffer()
        try buffer.writeMessagePackValue(wire)
        #expect(try MessagePackDecoder().decode(GoStruct.self, from: buffer) == GoStruct(Items: [], Meta: [:], Name: "", Blob: []))
        #expect(throws: DecodingError.self) {
            try MessagePackDecoder(decodesNilAsEmpty: false).decode(GoStruct.self, from: buffer)
        }
    }

    @Test("an empty struct is an empty map, as Go writes struct{}{}")
    func emptyStruct() throws {
        struct Empty: Codable, Equatable {}
        #expect(try MessagePackEncoder().encode(Empty()).bytes == [0x80])
        #expect(try MessagePackDecoder().decode(Empty.self, from: buffer([0x80])) == Empty())
    }

    @Test("every integer encoding decodes into every field type that holds it")
    func integerFields() throws {
        struct Small: Codable { var v: UInt8 }
        struct Signed: Codable { var v: Int64 }
        for encoding: [UInt8] in [[0xcc, 200], [0xd1, 0, 200], [0xcf, 0, 0, 0, 0, 0, 0, 0, 200]] {
            let input = buffer([0x81, 0xa1, 0x76] + encoding)
            #expect(try MessagePackDecoder().decode(Small.self, from: input).v == 200)
            #expect(try MessagePackDecoder().decode(Signed.self, from: input).v == 200)
        }
        let negative = buffer([0x81, 0xa1, 0x76, 0xff])
        #expect(throws: DecodingError.self) { try MessagePackDecoder().decode(Small.self, from: negative) }
    }

    @Test("a type mismatch names the field and the offset")
    func mismatchContext() throws {
        var buffer = ByteBuffer()
        try buffer.writeMessagePackValue(["ServiceMethod": 5, "Seq": 1])
        do {
            _ = try MessagePackDecoder().decode(RequestHeader.self, from: buffer)
            Issue.record("decoding should fail")
        } catch let DecodingError.typeMismatch(_, context) {
            #expect(context.codingPath.map(\.stringValue) == ["ServiceMethod"])
            #expect(context.debugDescription == "MessagePack: expected string, found uint at byte offset 15")
        }
    }

    @Test("a missing key is keyNotFound")
    func missingKey() throws {
        #expect(throws: DecodingError.self) { try MessagePackDecoder().decode(RequestHeader.self, from: buffer([0x80])) }
    }

    @Test("classes encode their superclass through superEncoder")
    func inheritance() throws {
        class Base: Codable {
            var id: Int
            init(id: Int) { self.id = id }
        }
        final class Derived: Base {
            var name: String
            init(id: Int, name: String) {
                self.name = name
                super.init(id: id)
            }
            enum Keys: CodingKey { case name }
            required init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: Keys.self)
                name = try container.decode(String.self, forKey: .name)
                try super.init(from: container.superDecoder())
            }
            override func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Keys.self)
                try container.encode(name, forKey: .name)
                try super.encode(to: container.superEncoder())
            }
        }
        let encoded = try MessagePackEncoder().encode(Derived(id: 3, name: "d"))
        var copy = encoded
        #expect(try copy.readMessagePackValue() == ["name": "d", "super": ["id": 3]])
        let decoded = try MessagePackDecoder().decode(Derived.self, from: encoded)
        #expect(decoded.id == 3 && decoded.name == "d")
    }

    @Test("a container written to after a later sibling is a clear encoding error")
    func outOfOrderContainers() throws {
        struct Interleaved: Encodable {
            enum Keys: CodingKey { case a, b }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Keys.self)
                var first = container.nestedUnkeyedContainer(forKey: .a)
                var second = container.nestedUnkeyedContainer(forKey: .b)
                try second.encode(1)
                try first.encode(2)
            }
        }
        var buffer = ByteBuffer(bytes: [0xaa])
        #expect(throws: EncodingError.self) { try MessagePackEncoder().encode(Interleaved(), into: &buffer) }
        #expect(buffer.bytes == [0xaa], "a failed encode leaves the buffer as it was")
    }

    @Test("containers past 15 and 65,535 elements get their larger headers")
    func growingHeaders() throws {
        for count in [15, 16, 65_535, 65_536] {
            let array = Array(repeating: [Int8(1)], count: count)
            let encoded = try MessagePackEncoder().encode(array)
            #expect(try MessagePackDecoder().decode([[Int8]].self, from: encoded) == array)
            var reference = ByteBuffer()
            try reference.writeMessagePackValue(.array(Array(repeating: [1], count: count)))
            #expect(encoded == reference)
        }
    }

    @Test("appending to a buffer keeps what was there")
    func appendsAfterExistingBytes() throws {
        var buffer = ByteBuffer(bytes: [0x01, 0x02])
        buffer.moveReaderIndex(forwardBy: 1)
        try MessagePackEncoder().encode(Array(0..<20), into: &buffer)
        #expect(buffer.readInteger(as: UInt8.self) == 0x02)
        #expect(try MessagePackDecoder().decode([Int].self, from: buffer) == Array(0..<20))
    }
}
