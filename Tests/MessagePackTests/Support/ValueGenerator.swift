import MessagePack
import NIOCore

/// A small, seeded random generator (SplitMix64), so every corpus is the
/// same on every run and a failure reproduces.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Sizes at and around every MessagePack length boundary.
let lengthBoundaries = [0, 1, 15, 16, 31, 32, 33, 255, 256, 65_535, 65_536, 70_000]

/// Integers at and around every encoding boundary.
let integerBoundaries: [Int64] = [
    0, 1, 126, 127, 128, 254, 255, 256, 65_534, 65_535, 65_536,
    4_294_967_294, 4_294_967_295, 4_294_967_296, Int64.max - 1, Int64.max,
    -1, -2, -31, -32, -33, -127, -128, -129, -32_767, -32_768, -32_769,
    -2_147_483_647, -2_147_483_648, -2_147_483_649, Int64.min + 1, Int64.min,
]

/// Generates random values of every MessagePack type, with sizes biased
/// towards the encoding boundaries.
struct ValueGenerator {
    var random: SeededGenerator

    init(seed: UInt64) { random = SeededGenerator(seed: seed) }

    mutating func length(max: Int) -> Int {
        if Bool.random(using: &random) {
            return lengthBoundaries.filter { $0 <= max }.randomElement(using: &random)!
        }
        return Int.random(in: 0...max, using: &random)
    }

    mutating func string(length: Int) -> String {
        // Mix ASCII with 2-, 3- and 4-byte scalars in a random chunk of up to
        // 64 bytes, repeated to `length` UTF-8 bytes and padded with ASCII.
        let alphabet: [Unicode.Scalar] = ["a", "Z", "0", " ", "é", "€", "𝄞", "\u{7f}", "\u{0}"]
        var chunk = ""
        var chunkBytes = 0
        while chunkBytes < min(length, 64) {
            let scalar = alphabet.randomElement(using: &random)!
            let size = String(scalar).utf8.count
            if chunkBytes + size > min(length, 64) { break }
            chunk.unicodeScalars.append(scalar)
            chunkBytes += size
        }
        guard chunkBytes > 0 else { return String(repeating: "x", count: length) }
        let repeated = String(repeating: chunk, count: length / chunkBytes)
        return repeated + String(repeating: "x", count: length - repeated.utf8.count)
    }

    mutating func bytes(count: Int) -> ByteBuffer {
        // Random words, so large payloads cost little to make.
        var buffer = ByteBuffer()
        buffer.reserveCapacity(count + 8)
        for _ in 0..<(count / 8) { buffer.writeInteger(random.next()) }
        for _ in 0..<(count % 8) { buffer.writeInteger(UInt8.random(in: 0...255, using: &random)) }
        return buffer
    }

    /// Mostly short payloads, one in 32 up to past the 16-bit boundary.
    mutating func payloadMax() -> Int {
        Int.random(in: 0..<32, using: &random) == 0 ? 70_000 : 300
    }

    mutating func scalar() -> MessagePackValue {
        switch Int.random(in: 0..<11, using: &random) {
        case 0: return .nil
        case 1: return .bool(Bool.random(using: &random))
        case 2: return .int(integerBoundaries.randomElement(using: &random)!)
        case 3: return .int(Int64.random(in: Int64.min...Int64.max, using: &random) >> Int.random(in: 0..<63, using: &random))
        case 4: return .uint(UInt64.random(in: UInt64(Int64.max) + 1...UInt64.max, using: &random))
        case 5: return .float(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &random)).finiteOrZero)
        case 6: return .double(Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &random)).finiteOrZero)
        case 7: return .string(string(length: length(max: payloadMax())))
        case 8: return .binary(bytes(count: length(max: payloadMax())))
        case 9:
            let type = Int8.random(in: 0...127, using: &random)
            return .extension(type: type, payload: bytes(count: [1, 2, 4, 8, 16, 0, 3, 255, 256, 65_536].randomElement(using: &random)!))
        default:
            let seconds = [Int64(0), 1, 4_294_967_295, 4_294_967_296, 17_179_869_183, 17_179_869_184, -1, -62_135_596_800].randomElement(using: &random)!
            let nanoseconds = [UInt32(0), 1, 999_999_999].randomElement(using: &random)!
            return .timestamp(MessagePackTimestamp(seconds: seconds, nanoseconds: nanoseconds))
        }
    }

    /// A value nested up to `depth` levels; containers get boundary counts
    /// only near the top so the corpus stays a few megabytes.
    mutating func value(depth: Int) -> MessagePackValue {
        guard depth > 0, Int.random(in: 0..<3, using: &random) == 0 else { return scalar() }
        let count = depth >= 3 ? [0, 1, 15, 16, 17].randomElement(using: &random)! : Int.random(in: 0...4, using: &random)
        if Bool.random(using: &random) {
            return .array((0..<count).map { _ in value(depth: depth - 1) })
        }
        return .map((0..<count).map { _ in (key: value(depth: 0), value: value(depth: depth - 1)) })
    }
}

extension BinaryFloatingPoint {
    /// NaN payloads are not preserved by every conversion msgpack-c makes,
    /// so the random corpus keeps to finite values and infinities.
    var finiteOrZero: Self { isNaN ? 0 : self }
}

extension ByteBuffer {
    var bytes: [UInt8] { Array(readableBytesView) }
}

func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

/// Lets other tests run: these suites loop over thousands of values, and a
/// loop that never suspends holds one of the few cooperative threads that
/// every async test shares, long enough to make their timers fire.
func yieldNow() async {
    await Task.yield()
}
