import DemoServices
import MessagePack
import MsgpackRPC
import NIOCore
import Testing

/// Echo's arguments and reply write and read their own MessagePack: they
/// must be, byte for byte, what the `Codable` path and Go write, and read
/// what Go may send.
@Suite struct DemoServicesCodingTests {
    /// Go's `struct{ Msg []byte }`, through `Codable` only.
    struct GoMsg: Codable, Equatable {
        var msg: [UInt8]
        enum CodingKeys: String, CodingKey { case msg = "Msg" }
    }

    static let payloads: [[UInt8]] = [[], [1], Array(repeating: 7, count: 31), Array(repeating: 8, count: 32), Array(0...255), Array(repeating: 9, count: 70_000)]

    @Test(arguments: [MessagePackWriteOptions.goCompatible, .standard])
    func echoTypesWriteWhatCodableWrites(options: MessagePackWriteOptions) throws {
        let encoder = MessagePackEncoder(options: options)
        for payload in Self.payloads {
            let expected = try encoder.encode(GoMsg(msg: payload))
            #expect(try encoder.encode(EchoArgs(msg: payload)) == expected)
            #expect(try encoder.encode(EchoReply(msg: payload)) == expected)
        }
    }

    @Test func echoTypesReadStrBinNilUnknownKeysAndMissingFields() throws {
        let decoder = MessagePackDecoder()
        for payload in Self.payloads {
            for options in [MessagePackWriteOptions.goCompatible, .standard] {
                let bytes = try MessagePackEncoder(options: options).encode(GoMsg(msg: payload))
                #expect(try decoder.decode(EchoArgs.self, from: bytes) == EchoArgs(msg: payload))
                #expect(try decoder.decode(EchoReply.self, from: bytes) == EchoReply(msg: payload))
            }
        }
        var extra = ByteBuffer()
        try extra.writeMessagePackValue(["Other": [1, 2], "Msg": .binary(ByteBuffer(bytes: [4, 5])), "Last": nil])
        #expect(try decoder.decode(EchoArgs.self, from: extra) == EchoArgs(msg: [4, 5]))
        for empty: MessagePackValue in [nil, [:], ["Msg": nil], ["Unknown": "x"]] {
            var bytes = ByteBuffer()
            try bytes.writeMessagePackValue(empty)
            #expect(try decoder.decode(EchoReply.self, from: bytes) == EchoReply(msg: []))
        }
        var wrongType = ByteBuffer()
        try wrongType.writeMessagePackValue(["Msg": 5])
        #expect(throws: DecodingError.self) { _ = try decoder.decode(EchoArgs.self, from: wrongType) }
    }
}
