import MessagePack
import NIOCore
import Testing

/// Our codec against msgpack-c on a generated corpus, in both directions.
@Suite("Agreement with msgpack-c")
struct ReferenceAgreementTests {
    static let corpusSize = 2_000

    /// Made once and shared: generating values is most of these tests' time.
    /// Made in a task that yields, not in a `static let` initializer: every
    /// test touching such a static would block in its one-time initialization
    /// (seconds in debug builds), and two of them hold both cooperative
    /// threads, stalling every other test in the process.
    static let corpusTask = Task {
        var generator = ValueGenerator(seed: 1)
        var corpus: [MessagePackValue] = []
        corpus.reserveCapacity(corpusSize)
        for index in 0..<corpusSize {
            if index % 50 == 0 { await yieldNow() }
            corpus.append(generator.value(depth: 4))
        }
        return corpus
    }

    static var corpus: [MessagePackValue] {
        get async { await corpusTask.value }
    }

    @Test("what we write is byte for byte what msgpack-c writes (current spec)")
    func bytesMatchStandard() async throws {
        for value in await Self.corpus {
            await yieldNow()
            var ours = ByteBuffer()
            try ours.writeMessagePackValue(value, options: .standard)
            #expect(ours.bytes == ReferenceCodec.pack(value), "value: \(value)")
        }
    }

    @Test("with legacy string headers we match msgpack-c's old-spec raw, as go-msgpack writes")
    func bytesMatchLegacy() async throws {
        for value in await Self.corpus {
            await yieldNow()
            var ours = ByteBuffer()
            try ours.writeMessagePackValue(value, options: .goCompatible)
            #expect(ours.bytes == ReferenceCodec.pack(value, legacyStrings: true), "value: \(value)")
        }
    }

    @Test("msgpack-c reads what we write to the same value")
    func referenceReadsOurs() async throws {
        for value in await Self.corpus {
            await yieldNow()
            for options in [MessagePackWriteOptions.standard, .goCompatible] {
                var ours = ByteBuffer()
                try ours.writeMessagePackValue(value, options: options)
                #expect(ReferenceCodec.unpack(ours.bytes) == .value(value, consumed: ours.readableBytes))
            }
        }
    }

    @Test("we read what msgpack-c writes to the same value")
    func weReadReference() async throws {
        for value in await Self.corpus {
            await yieldNow()
            for legacy in [false, true] {
                var bytes = buffer(ReferenceCodec.pack(value, legacyStrings: legacy))
                let total = bytes.readableBytes
                #expect(try bytes.readMessagePackValue() == value)
                #expect(bytes.readableBytes == 0, "consumed \(total - bytes.readableBytes) of \(total)")
            }
        }
    }

    @Test("integer boundaries agree in every direction", arguments: integerBoundaries)
    func integerBoundary(_ value: Int64) throws {
        var ours = ByteBuffer()
        ours.writeMessagePackInteger(value)
        #expect(ours.bytes == ReferenceCodec.pack(.int(value)))
        var reader = MessagePackReader(ours)
        #expect(try reader.readInteger(as: Int64.self) == value)
    }

    @Test("unsigned integers above Int64.max agree")
    func largeUnsigned() throws {
        for value in [UInt64(Int64.max) + 1, UInt64.max - 1, UInt64.max] {
            var ours = ByteBuffer()
            ours.writeMessagePackInteger(value)
            #expect(ours.bytes == ReferenceCodec.pack(.uint(value)))
            #expect(ReferenceCodec.unpack(ours.bytes) == .value(.uint(value), consumed: 9))
        }
    }

    @Test("NaN and infinities survive both codecs")
    func specialFloats() throws {
        for value: MessagePackValue in [.double(.nan), .double(.infinity), .double(-.infinity), .float(.nan), .float(-.infinity), .double(-0.0)] {
            var ours = ByteBuffer()
            try ours.writeMessagePackValue(value)
            #expect(ours.bytes == ReferenceCodec.pack(value))
            var copy = ours
            #expect(try copy.readMessagePackValue() == value)
        }
    }
}
