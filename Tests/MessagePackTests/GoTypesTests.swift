import FoundationEssentials
import MessagePack
import NIOCore
import Testing

/// Go's time.Time and time.Duration, checked against bytes that Go 1.19's
/// `Time.MarshalBinary` and hashicorp/go-msgpack 0.5.5 produced.
@Suite("Go types")
struct GoTypesTests {
    static func hex(_ text: String) -> [UInt8] {
        text.split(separator: " ").map { UInt8($0, radix: 16)! }
    }

    /// (unix seconds, nanoseconds, zone offset, Go's MarshalBinary bytes)
    static let goTimes: [(Int64, Int32, Int?, String)] = [
        (-62_135_596_800, 0, nil, "01 00 00 00 00 00 00 00 00 00 00 00 00 ff ff"),  // time.Time{}
        (0, 0, nil, "01 00 00 00 0e 77 91 f7 00 00 00 00 00 ff ff"),
        (1_700_000_000, 123_456_789, nil, "01 00 00 00 0e dc e5 e8 00 07 5b cd 15 ff ff"),
        (1_700_000_000, 5, 3_600, "01 00 00 00 0e dc e5 e8 00 00 00 00 05 00 3c"),
        (-1, 999_999_999, nil, "01 00 00 00 0e 77 91 f6 ff 3b 9a c9 ff ff ff"),
    ]

    @Test("GoTime writes and reads Go's MarshalBinary bytes")
    func marshalBinary() throws {
        for (seconds, nanoseconds, offset, bytes) in Self.goTimes {
            let time = GoTime(unixSeconds: seconds, nanoseconds: nanoseconds, utcOffsetSeconds: offset)
            #expect(time.marshalBinary() == Self.hex(bytes))
            #expect(try GoTime(marshaledBinary: Self.hex(bytes)) == time)
        }
        #expect(try GoTime(marshaledBinary: Self.hex(Self.goTimes[0].3)).isZero)
        #expect(GoTime.zero.marshalBinary() == Self.hex(Self.goTimes[0].3))
    }

    @Test("version 2 (zone offset with seconds) reads and writes")
    func versionTwo() throws {
        let time = GoTime(unixSeconds: 10, nanoseconds: 0, utcOffsetSeconds: 3_661)
        let bytes = time.marshalBinary()
        #expect(bytes.count == 16 && bytes[0] == 2)
        #expect(try GoTime(marshaledBinary: bytes) == time)
    }

    @Test("malformed time bytes are rejected with a reason")
    func malformed() {
        #expect(throws: MessagePackError.self) { try GoTime(marshaledBinary: [UInt8]()) }
        #expect(throws: MessagePackError.self) { try GoTime(marshaledBinary: [3] + Array(repeating: 0, count: 14)) }
        #expect(throws: MessagePackError.self) { try GoTime(marshaledBinary: [1] + Array(repeating: 0, count: 13)) }
        #expect(throws: MessagePackError.self) { try GoTime(marshaledBinary: Self.hex("01 00 00 00 0e 77 91 f7 ff ff ff ff ff ff")) }
    }

    /// go-msgpack's encoding of
    /// `S{When: time.Unix(1700000000, 123456789).UTC(), D: 1500 * time.Millisecond, B: []byte{1, 2}, S: "x"}`.
    static let goStruct = hex("84 a1 42 a2 01 02 a1 44 ce 59 68 2f 00 a1 53 a1 78 a4 57 68 65 6e af 01 00 00 00 0e dc e5 e8 00 07 5b cd 15 ff ff")

    struct GoShaped: Codable, Equatable {
        var B: [UInt8]
        var D: GoDuration
        var S: String
        var When: GoTime
    }

    static let goShaped = GoShaped(
        B: [1, 2], D: GoDuration(.milliseconds(1_500)), S: "x",
        When: GoTime(unixSeconds: 1_700_000_000, nanoseconds: 123_456_789)
    )

    @Test("a Go struct with time.Time, time.Duration and []byte decodes, and encodes to Go's exact bytes")
    func goStructBytes() throws {
        #expect(try MessagePackDecoder().decode(GoShaped.self, from: buffer(Self.goStruct)) == Self.goShaped)
        #expect(try MessagePackEncoder().encode(Self.goShaped).bytes == Self.goStruct)
    }

    @Test("Date goes out as Go time towards Go, as a timestamp in the standard profile, and reads from both")
    func dates() throws {
        struct Event: Codable, Equatable { var at: Date }
        let event = Event(at: Date(timeIntervalSince1970: 1_700_000_000.5))
        let go = try MessagePackEncoder(options: .goCompatible).encode(event)
        #expect(go.bytes == [0x81, 0xa2, 0x61, 0x74, 0xaf] + GoTime(unixSeconds: 1_700_000_000, nanoseconds: 500_000_000).marshalBinary())
        let standard = try MessagePackEncoder(options: .standard).encode(event)
        var reader = MessagePackReader(standard)
        _ = try reader.readMapHeader()
        _ = try reader.readString()
        #expect(try reader.readTimestamp() == MessagePackTimestamp(seconds: 1_700_000_000, nanoseconds: 500_000_000))
        #expect(try MessagePackDecoder().decode(Event.self, from: go) == event)
        #expect(try MessagePackDecoder().decode(Event.self, from: standard) == event)
    }

    @Test("GoDuration converts to and from Duration, saturating at Go's limits")
    func durations() {
        #expect(GoDuration(.seconds(2)).nanoseconds == 2_000_000_000)
        #expect(GoDuration(nanoseconds: 1_500).duration == .nanoseconds(1_500))
        #expect(GoDuration(.seconds(Int64.max)).nanoseconds == .max)
        #expect(GoDuration(.seconds(Int64.min)).nanoseconds == .min)
        #expect(GoDuration(.seconds(-1)).nanoseconds == -1_000_000_000)
    }
}
