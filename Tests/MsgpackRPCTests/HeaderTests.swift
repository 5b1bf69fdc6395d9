import MessagePack
import MsgpackRPC
import NIOCore
import Testing

@Suite struct HeaderTests {
    // Bytes Go 1.19 + go-msgpack 0.5.5 wrote for rpc.Request / rpc.Response.
    static let goRequest = "82 a3 53 65 71 01 ad 53 65 72 76 69 63 65 4d 65 74 68 6f 64 a9 45 63 68 6f 2e 45 63 68 6f"
    static let goResponse = "83 a5 45 72 72 6f 72 a0 a3 53 65 71 cd 01 2c ad 53 65 72 76 69 63 65 4d 65 74 68 6f 64 a9 45 63 68 6f 2e 45 63 68 6f"
    static let goErrorResponse = "83 a5 45 72 72 6f 72 a4 62 6f 6f 6d a3 53 65 71 02 ad 53 65 72 76 69 63 65 4d 65 74 68 6f 64 a3 58 2e 59"

    @Test func requestHeaderIsGosBytes() throws {
        var buffer = ByteBuffer()
        RPCRequestHeader(serviceMethod: "Echo.Echo", seq: 1).write(to: &buffer)
        #expect(buffer.hex == Self.goRequest)
        #expect(try RPCRequestHeader(from: ByteBuffer(hex: Self.goRequest)) == RPCRequestHeader(serviceMethod: "Echo.Echo", seq: 1))
    }

    @Test func responseHeaderIsGosBytes() throws {
        var buffer = ByteBuffer()
        RPCResponseHeader(serviceMethod: "Echo.Echo", seq: 300).write(to: &buffer)
        #expect(buffer.hex == Self.goResponse)
        buffer.clear()
        RPCResponseHeader(serviceMethod: "X.Y", seq: 2, error: "boom").write(to: &buffer)
        #expect(buffer.hex == Self.goErrorResponse)
        #expect(try RPCResponseHeader(from: ByteBuffer(hex: Self.goErrorResponse)) == RPCResponseHeader(serviceMethod: "X.Y", seq: 2, error: "boom"))
    }

    @Test func extensionsRoundTrip() throws {
        let header = RPCRequestHeader(
            serviceMethod: "Arith.Add", seq: .max,
            deadline: RPCDeadline(unixNanoseconds: 1_700_000_000_123_456_789),
            traceContext: RPCTraceContext(traceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", traceState: "congo=t61rcWkgMzE")
        )
        var buffer = ByteBuffer()
        header.write(to: &buffer)
        #expect(try RPCRequestHeader(from: buffer) == header)
        // Without a trace state, Tracestate is not sent.
        var noState = header
        noState.traceContext?.traceState = ""
        buffer.clear()
        noState.write(to: &buffer)
        #expect(try RPCRequestHeader(from: buffer) == noState)
        var reader = MessagePackReader(buffer)
        #expect(try reader.readMapHeader() == 4)
    }

    @Test func unknownKeysAnyOrderAndNilsAreAccepted() throws {
        var buffer = ByteBuffer()
        _ = try buffer.writeMessagePackMapHeader(count: 6)
        _ = try buffer.writeMessagePackString("Extra")
        _ = try buffer.writeMessagePackMapHeader(count: 1)
        _ = try buffer.writeMessagePackString("nested")
        _ = try buffer.writeMessagePackArrayHeader(count: 2)
        _ = buffer.writeMessagePackInteger(1)
        _ = buffer.writeMessagePackNil()
        _ = try buffer.writeMessagePackString("ServiceMethod")
        _ = try buffer.writeMessagePackString("A.B")
        _ = try buffer.writeMessagePackString("Error")
        _ = try buffer.writeMessagePackString("bad")
        _ = try buffer.writeMessagePackString("Seq")
        _ = buffer.writeMessagePackInteger(Int64(42))  // signed form, as Nomad writes
        _ = try buffer.writeMessagePackString("Tracestate")
        _ = buffer.writeMessagePackNil()
        _ = try buffer.writeMessagePackString("Zzz")
        _ = buffer.writeMessagePackBool(true)
        let request = try RPCRequestHeader(from: buffer)
        #expect(request == RPCRequestHeader(serviceMethod: "A.B", seq: 42))
        let response = try RPCResponseHeader(from: buffer)
        #expect(response == RPCResponseHeader(serviceMethod: "A.B", seq: 42, error: "bad"))
    }

    /// Extensions of another type are skipped, as a Go server skips keys it has no field
    /// for: the header still reads, without the extension.
    @Test(arguments: [
        ("Deadline", "a5 73 6f 6f 6e 21"),  // a string
        ("Deadline", "cb 3f f0 00 00 00 00 00 00"),  // a float64
        ("Deadline", "cf ff ff ff ff ff ff ff ff"),  // uint64 max, past Int64
        ("Deadline", "92 01 02"),  // an array
        ("Traceparent", "2a"),  // an integer
        ("Traceparent", "a2 c3 28"),  // a str that is not UTF-8
        ("Tracestate", "c3"),  // a bool
    ])
    func extensionsOfAnotherTypeAreSkipped(key: String, valueHex: String) throws {
        var buffer = ByteBuffer()
        _ = try buffer.writeMessagePackMapHeader(count: 3)
        _ = try buffer.writeMessagePackString("ServiceMethod")
        _ = try buffer.writeMessagePackString("Echo.Echo")
        _ = try buffer.writeMessagePackString(key)
        buffer.writeImmutableBuffer(ByteBuffer(hex: valueHex))
        _ = try buffer.writeMessagePackString("Seq")
        _ = buffer.writeMessagePackInteger(UInt64(7))
        #expect(try RPCRequestHeader(from: buffer) == RPCRequestHeader(serviceMethod: "Echo.Echo", seq: 7))
    }

    @Test func serviceMethodMayComeAsBin() throws {
        // {"Seq": 1, "ServiceMethod": bin8 "Echo.Echo"}
        let header = try RPCRequestHeader(from: ByteBuffer(hex: "82 a3 53 65 71 01 ad 53 65 72 76 69 63 65 4d 65 74 68 6f 64 c4 09 45 63 68 6f 2e 45 63 68 6f"))
        #expect(header == RPCRequestHeader(serviceMethod: "Echo.Echo", seq: 1))
    }

    @Test func malformedHeadersThrow() {
        #expect(throws: MessagePackError.self) { try RPCRequestHeader(from: ByteBuffer(hex: "a3 41 2e 42")) }  // a string, not a map
        #expect(throws: MessagePackError.self) { try RPCRequestHeader(from: ByteBuffer(hex: "81 a3 53 65 71 a1 41")) }  // Seq is a string
        #expect(throws: MessagePackError.self) { try RPCResponseHeader(from: ByteBuffer(hex: "81 a3 53 65 71 ff")) }  // Seq is -1
    }

    @Test func emptyStructIsGosEmptyMap() throws {
        let encoded = try MessagePackEncoder().encode(RPCEmpty())
        #expect(encoded.hex == "80")
        // A Go client may send nil for empty arguments.
        _ = try MessagePackDecoder().decode(RPCEmpty.self, from: ByteBuffer(hex: "c0"))
    }
}
