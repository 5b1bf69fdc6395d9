import FoundationEssentials
import MessagePack
import NIOCore
import Testing

/// The Codable encoder and decoder reuse their per-call state between
/// messages (spare slots); none of it may leak from one message to the next.
@Suite("Codable state reuse")
struct ReuseTests {
    struct Outer: Codable, Equatable {
        var name: String
        var inner: Inner
        var list: [Inner]
    }

    /// Keeps its container after `init(from:)` / `encode(to:)` return, which
    /// Codable allows: the encoding or decoding it holds must not be reused.
    final class Escaper: Codable, @unchecked Sendable {
        nonisolated(unsafe) static var keptDecoding: KeyedDecodingContainer<CodingKeys>?
        nonisolated(unsafe) static var keptEncoding: KeyedEncodingContainer<CodingKeys>?
        var value: Int
        enum CodingKeys: String, CodingKey { case value }
        init(value: Int) { self.value = value }
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            value = try container.decode(Int.self, forKey: .value)
            Self.keptDecoding = container
        }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(value, forKey: .value)
            Self.keptEncoding = container
        }
    }

    static let sample = Outer(
        name: "outer",
        inner: Inner(name: "a", tags: ["x", "y"], score: 1.5),
        list: [Inner(name: "b", tags: [], score: nil), Inner(name: "c", tags: ["z"], score: 2)]
    )

    @Test("messages encoded and decoded one after another do not see each other's state")
    func sequential() throws {
        let encoder = MessagePackEncoder()
        let decoder = MessagePackDecoder()
        let first = try encoder.encode(Self.sample)
        for _ in 0..<100 {
            #expect(try encoder.encode(Self.sample) == first)
            #expect(try decoder.decode(Outer.self, from: first) == Self.sample)
            #expect(try decoder.decode(RequestHeader.self, from: encoder.encode(RequestHeader(serviceMethod: "A.B", seq: 7))) == RequestHeader(serviceMethod: "A.B", seq: 7))
        }
    }

    @Test("a failed encode or decode leaves nothing behind for the next one")
    func afterFailures() throws {
        let encoder = MessagePackEncoder()
        let decoder = MessagePackDecoder()
        let good = try encoder.encode(Self.sample)
        var bad = ByteBuffer()
        try bad.writeMessagePackValue(["name": "n", "inner": ["name": 5], "list": []])
        for _ in 0..<10 {
            do {
                _ = try decoder.decode(Outer.self, from: bad)
                Issue.record("decoding should fail")
            } catch let DecodingError.typeMismatch(_, context) {
                #expect(context.codingPath.map(\.stringValue) == ["inner", "name"])
            }
            #expect(try decoder.decode(Outer.self, from: good) == Self.sample)
            #expect(try encoder.encode(Self.sample) == good)
        }
    }

    @Test("coding paths in errors of nested and array elements are right after reuse")
    func nestedPaths() throws {
        var bad = ByteBuffer()
        try bad.writeMessagePackValue(["name": "n", "inner": ["name": "i", "tags": []], "list": [["name": "ok", "tags": []], ["name": "x", "tags": [1]]]])
        for _ in 0..<3 {
            do {
                _ = try MessagePackDecoder().decode(Outer.self, from: bad)
                Issue.record("decoding should fail")
            } catch let DecodingError.typeMismatch(_, context) {
                #expect(context.codingPath.map(\.stringValue) == ["list", "1", "tags", "0"])
            }
        }
    }

    @Test("an escaped container keeps working, and later messages are unaffected")
    func escapedContainers() throws {
        let encoder = MessagePackEncoder()
        let decoder = MessagePackDecoder()
        let encoded = try encoder.encode(Escaper(value: 42))
        let other = try encoder.encode(Self.sample)
        #expect(try decoder.decode(Escaper.self, from: encoded).value == 42)
        #expect(try decoder.decode(Outer.self, from: other) == Self.sample)
        // The kept container still reads its own message.
        #expect(try Escaper.keptDecoding?.decode(Int.self, forKey: .value) == 42)
        #expect(try encoder.encode(Self.sample) == other)
        Escaper.keptDecoding = nil
        Escaper.keptEncoding = nil
    }

    @Test("many tasks encoding and decoding at once get their own results")
    func concurrent() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    let encoder = MessagePackEncoder()
                    let decoder = MessagePackDecoder()
                    for index in 0..<500 {
                        var value = Self.sample
                        value.name = "task \(task) message \(index)"
                        value.list[0].tags = Array(repeating: "t", count: index % 20)
                        let decoded = try decoder.decode(Outer.self, from: encoder.encode(value))
                        #expect(decoded == value)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test("a map past the arena's limit still decodes (each map then has its own index)")
    func pastArenaLimit() throws {
        let many = (0..<600).map { Inner(name: "n\($0)", tags: [], score: Double($0)) }
        let encoded = try MessagePackEncoder().encode(many)
        #expect(try MessagePackDecoder().decode([Inner].self, from: encoded) == many)
    }
}
