// muxrpc-codec-demo: the MessagePack codec at work on what a net/rpc call
// puts on a stream (a request header, then the arguments, back to back with
// no length prefix), encoded as Go's go-msgpack would and read back the way
// a stream parser must: as bytes trickle in.

import MessagePack
import NIOCore

/// net/rpc's request header, with Go's field names.
struct RequestHeader: Codable {
    var serviceMethod: String
    var seq: UInt64

    enum CodingKeys: String, CodingKey {
        case serviceMethod = "ServiceMethod"
        case seq = "Seq"
    }
}

/// The arguments of Echo.Echo in the demo services.
struct EchoArgs: Codable {
    var Msg: [UInt8]
}

func hex(_ buffer: ByteBuffer) -> String {
    buffer.readableBytesView.map { byte in
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }.joined(separator: " ")
}

let encoder = MessagePackEncoder(options: .goCompatible)
var stream = ByteBuffer()
try encoder.encode(RequestHeader(serviceMethod: "Echo.Echo", seq: 1), into: &stream)
let headerLength = stream.readableBytes
try encoder.encode(EchoArgs(Msg: Array("hello, Go".utf8)), into: &stream)

print("A net/rpc request as go-msgpack writes it (\(stream.readableBytes) bytes):")
print("  header: \(hex(stream.getSlice(at: stream.readerIndex, length: headerLength)!))")
print("  args:   \(hex(stream.getSlice(at: stream.readerIndex + headerLength, length: stream.readableBytes - headerLength)!))")

// Read it back as a server would: bytes arrive 5 at a time; the scanner
// says "need more" until a whole value is there.
var received = ByteBuffer()
var scanner = MessagePackValueScanner()
var values: [MessagePackValue] = []
var input = stream
while input.readableBytes > 0 {
    received.writeImmutableBuffer(input.readSlice(length: min(5, input.readableBytes))!)
    while let length = try scanner.scan(received) {
        let value = received.readSlice(length: length)!
        var reader = MessagePackReader(value)
        values.append(try reader.readValue())
        print("  after \(stream.readableBytes - input.readableBytes) bytes: a complete value of \(length) bytes")
    }
}
print("Decoded values: \(values.map(\.description).joined(separator: ", "))")

let args = try MessagePackDecoder().decode(EchoArgs.self, from: stream.getSlice(at: stream.readerIndex + headerLength, length: stream.readableBytes - headerLength)!)
print("EchoArgs.Msg = \"\(String(decoding: args.Msg, as: UTF8.self))\"")

// Hostile input costs nothing: a 6-byte value claiming a 4 GiB string.
do {
    var lie = ByteBuffer(bytes: [0xdb, 0xff, 0xff, 0xff, 0xff, 0x41])
    _ = try lie.readMessagePackValue()
} catch {
    print("A lying length is refused at once: \(error)")
}
