// Arbitrary bytes into the MessagePack decoder and reader.
//
// The whole input is one MessagePack value (or garbage). It is decoded into a
// dynamic MessagePackValue and into Codable structs (one shaped like
// net/rpc's request header, one with a field of every kind the decoder has a
// path for), then walked with MessagePackReader: value by value, and with the
// typed reads. Errors are expected; what counts as a finding is a crash, a
// hang, a large allocation, or a broken invariant (fuzzCheck):
// - a value that decodes reads the same through MessagePackReader and
//   ByteBuffer.readMessagePackValue, and ends where skipValue ends;
// - a decoded value, written back, decodes to an equal value;
// - a failed read leaves the reader where it was.

import FoundationEssentials
import FuzzSupport
import MessagePack
import NIOCore

/// Small limits: a length field that lies cannot make the decoder reserve much.
let limits = MessagePackLimits(maxDepth: 64, maxByteLength: 1024, maxContainerCount: 256, maxMessageSize: 16 * 1024)
let decoder = MessagePackDecoder(limits: limits)
let strictDecoder = MessagePackDecoder(limits: limits, decodesNilAsEmpty: false)

/// Go's rpc.Request, as net/rpc sends it before each call's arguments.
struct RequestHeader: Codable {
    var serviceMethod: String
    var seq: UInt64
    var deadline: Int64?
    var traceparent: String?
    enum CodingKeys: String, CodingKey {
        case serviceMethod = "ServiceMethod", seq = "Seq", deadline = "Deadline", traceparent = "Traceparent"
    }
}

enum Kind: String, Codable { case a, b }

/// One field for each decoding path: integers of each width, floats, strings,
/// bytes, dates, nested keyed and unkeyed containers, dictionaries, dynamic
/// values, timestamps and a raw-value enum. One-letter keys, so that the
/// fuzzer finds them.
struct Everything: Codable {
    var a: Int8?
    var b: UInt16?
    var c: Int32?
    var d: UInt?
    var e: Float?
    var f: Double?
    var g: String?
    var h: [UInt8]?
    var i: Data?
    var j: Date?
    var k: [Int64]?
    var l: [String: Bool]?
    var m: [RequestHeader]?
    var n: MessagePackValue?
    var o: MessagePackTimestamp?
    var p: Kind?
    var q: [[UInt8]]?
    var r: Bool
    var s: [Int: String]?
}

/// A type that reads itself through `init(from:)` with an unkeyed container.
struct Pair: Decodable {
    var first: String
    var second: Int
    init(from decoder: any Decoder) throws {
        var container = try decoder.unkeyedContainer()
        first = try container.decode(String.self)
        second = try container.decode(Int.self)
        _ = try? container.decodeNil()
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let buffer = ByteBuffer(bytes: bytes)

    // The dynamic value, three ways.
    let decoded = try? decoder.decode(MessagePackValue.self, from: buffer)
    var reader = MessagePackReader(buffer, limits: limits)
    let read = try? reader.readValue()
    if let decoded {
        fuzzCheck(read == decoded, "MessagePackReader.readValue disagrees with the decoder")
        fuzzCheck(reader.isAtEnd, "the decoder took the whole buffer, the reader did not")
        var copy = buffer
        let viaBuffer = try? copy.readMessagePackValue(limits: limits)
        fuzzCheck(viaBuffer == .some(decoded), "readMessagePackValue disagrees with the decoder")
        fuzzCheck(copy.readableBytes == 0, "readMessagePackValue left bytes behind")
        var skipper = MessagePackReader(buffer, limits: limits)
        fuzzCheck((try? skipper.skipValue()) != nil && skipper.isAtEnd, "skipValue does not end where the value ends")

        // Written back and decoded again: the same value.
        var written = ByteBuffer()
        do {
            try written.writeMessagePackValue(decoded)
            let again = try decoder.decode(MessagePackValue.self, from: written)
            fuzzCheck(again == decoded, "a decoded value written back decodes differently: \(decoded) -> \(again)")
        } catch {
            fuzzCheck(false, "a decoded value cannot be written back and decoded: \(decoded): \(error)")
        }
    }

    // Codable structs.
    _ = try? decoder.decode(RequestHeader.self, from: buffer)
    _ = try? decoder.decode(Everything.self, from: buffer)
    _ = try? strictDecoder.decode(Everything.self, from: buffer)
    _ = try? decoder.decode([Pair].self, from: buffer)
    _ = try? decoder.decode([String: [Date]].self, from: buffer)
    var streaming = buffer
    while (try? decoder.decode(RequestHeader.self, from: &streaming)) != nil {}

    readerWalk(buffer)
    return 0
}

/// Walks the input with MessagePackReader's typed reads, trying the read the
/// next format byte asks for and a few it does not; on an error, skips the
/// value or, if that fails too, one byte.
func readerWalk(_ buffer: ByteBuffer) {
    var reader = MessagePackReader(buffer, limits: limits)
    let key = "ServiceMethod"
    var steps = 0
    while !reader.isAtEnd, steps < 4096 {
        steps += 1
        let before = reader.offset
        // Reads that do not match the type must fail and leave the reader in place.
        func attempt<T>(_ read: (inout MessagePackReader) throws(MessagePackError) -> T) -> Bool {
            let at = reader.offset
            do {
                _ = try read(&reader)
                fuzzCheck(reader.offset > at, "a read succeeded without moving the reader")
                return true
            } catch {
                fuzzCheck(reader.offset == at, "a failed read moved the reader from \(at) to \(reader.offset)")
                return false
            }
        }
        var moved = false
        switch try? reader.peekType() {
        case .nil: moved = attempt { r throws(MessagePackError) in try r.readNil() }
        case .bool: moved = attempt { r throws(MessagePackError) in try r.readBool() }
        case .int, .uint:
            _ = attempt { r throws(MessagePackError) in try r.readBool() }
            if !attempt({ r throws(MessagePackError) in try r.readInteger(as: UInt8.self) }),
                !attempt({ r throws(MessagePackError) in try r.readInteger(as: Int16.self) }),
                !attempt({ r throws(MessagePackError) in try r.readInteger(as: UInt32.self) })
            {
                moved = attempt { r throws(MessagePackError) in try r.readInteger(as: Int64.self) }
                    || attempt { r throws(MessagePackError) in try r.readInteger(as: UInt64.self) }
            } else {
                moved = true
            }
        case .float:
            if !attempt({ r throws(MessagePackError) in try r.readDouble() }) {
                moved = attempt { r throws(MessagePackError) in try r.readFloat() }
            } else {
                moved = true
            }
        case .double:
            if !attempt({ r throws(MessagePackError) in try r.readFloat() }) {
                moved = attempt { r throws(MessagePackError) in try r.readDouble() }
            } else {
                moved = true
            }
        case .string:
            _ = attempt { r throws(MessagePackError) in try r.readExtension() }
            moved = attempt { r throws(MessagePackError) in try r.readString() }
            if !moved {
                moved = key.utf8.withContiguousStorageIfAvailable { key in
                    attempt { r throws(MessagePackError) in try r.readString(equals: UnsafeRawBufferPointer(key)) }
                } ?? false
            }
        case .binary:
            _ = attempt { r throws(MessagePackError) in try r.readString() }
            moved = attempt { r throws(MessagePackError) in try r.withStringBytes { $0.count } }
        case .extension:
            if !attempt({ r throws(MessagePackError) in try r.readTimestamp() }) {
                moved = attempt { r throws(MessagePackError) in try r.readExtension() }
            } else {
                moved = true
            }
        case .array:
            _ = attempt { r throws(MessagePackError) in try r.readMapHeader() }
            moved = attempt { r throws(MessagePackError) in try r.readArrayHeader() }
        case .map:
            _ = attempt { r throws(MessagePackError) in try r.readArrayHeader() }
            moved = attempt { r throws(MessagePackError) in try r.readMapHeader() }
        case nil:
            break
        }
        if !moved {
            if (try? reader.skipValue()) == nil || reader.offset == before {
                reader.offset = before + 1
            }
        }
    }
}
