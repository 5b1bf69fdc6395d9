import MessagePack
@testable import MsgpackRPC
import NIOCore
import NIOEmbedded
import Testing

/// Values as a streaming call carries them: bare, back to back.
private func values(_ count: Int, size: Int = 40) throws -> (ByteBuffer, [ByteBuffer]) {
    var all = ByteBuffer()
    var each: [ByteBuffer] = []
    for n in 0..<count {
        let value = try MessagePackEncoder().encode(["N": String(repeating: "v", count: size + n % 7)])
        each.append(value)
        all.writeImmutableBuffer(value)
    }
    return (all, each)
}

@Suite("Streaming value decoder")
struct StreamValueDecoderTests {
    @Test("many values in one read come out one by one, in order")
    func manyValuesInOneRead() throws {
        let (all, each) = try values(200)
        var decoder = RPCStreamValueDecoder(maxValueSize: 1 << 20)
        decoder.append(all)
        var out: [ByteBuffer] = []
        while let value = try decoder.next() { out.append(value) }
        #expect(out == each)
        #expect(decoder.bufferedByteCount == 0)
        try decoder.checkEnd()
    }

    @Test("values split across reads, down to one byte a read, come out whole", arguments: [1, 3, 17, 64])
    func splitAcrossReads(chunk: Int) throws {
        let (all, each) = try values(30, size: 100)
        var decoder = RPCStreamValueDecoder(maxValueSize: 1 << 20)
        var out: [ByteBuffer] = []
        var offset = 0
        while offset < all.readableBytes {
            let length = min(chunk, all.readableBytes - offset)
            decoder.append(all.getSlice(at: offset, length: length)!)
            offset += length
            while let value = try decoder.next() { out.append(value) }
        }
        #expect(out == each)
        try decoder.checkEnd()
    }

    @Test("a value over maxValueSize fails on its header, before its payload arrives")
    func oversizeFailsOnItsHeader() throws {
        var decoder = RPCStreamValueDecoder(maxValueSize: 1024)
        // str32 claiming 4 GiB - 1: five bytes.
        decoder.append(ByteBuffer(bytes: [0xdb, 0xff, 0xff, 0xff, 0xff]))
        let error = #expect(throws: RPCError.self) { try decoder.next() }
        #expect(error?.code == .limitExceeded)
        #expect(decoder.bufferedStorageCapacity == 0)
        // A map whose entries add up past the limit fails as the sum crosses it.
        var summing = RPCStreamValueDecoder(maxValueSize: 1024)
        var bytes = ByteBuffer(bytes: [0x82, 0xa1, 0x61, 0xda, 0x02, 0x00])  // {"a": str16 of 512 …
        bytes.writeRepeatingByte(0x78, count: 512)
        bytes.writeBytes([0xa1, 0x62, 0xda, 0x02, 0x00])  // "b": str16 of 512 → past 1024
        summing.append(bytes)
        #expect(throws: RPCError.self) { try summing.next() }
        // After a failure nothing more comes out.
        let after = #expect(throws: RPCError.self) { try summing.next() }
        #expect(after?.code == .streamUnusable)
    }

    @Test("a value exactly maxValueSize long is taken")
    func valueAtTheLimit() throws {
        var value = ByteBuffer(bytes: [0xda, 0x03, 0xfd])  // str16 of 1021: 1024 bytes in all
        value.writeRepeatingByte(0x41, count: 1021)
        var decoder = RPCStreamValueDecoder(maxValueSize: 1024)
        decoder.append(value)
        #expect(try decoder.next()?.readableBytes == 1024)
    }

    @Test("bytes that are not msgpack are a protocol violation")
    func garbage() throws {
        var decoder = RPCStreamValueDecoder(maxValueSize: 1024)
        decoder.append(ByteBuffer(bytes: [0x01, 0xc1, 0x02]))
        #expect(try decoder.next() == ByteBuffer(bytes: [0x01]))
        let error = #expect(throws: RPCError.self) { try decoder.next() }
        #expect(error?.code == .protocolViolation)
    }

    @Test("nesting past the depth limit fails at that level")
    func tooDeep() throws {
        var decoder = RPCStreamValueDecoder(limits: MessagePackLimits(maxDepth: 8), maxValueSize: 1024)
        decoder.append(ByteBuffer(bytes: Array(repeating: 0x91, count: 9)))
        let error = #expect(throws: RPCError.self) { try decoder.next() }
        #expect(error?.code == .limitExceeded)
    }

    @Test("a stream that ends inside a value says so at its end")
    func endsInsideAValue() throws {
        let (all, _) = try values(2)
        var decoder = RPCStreamValueDecoder(maxValueSize: 1024)
        decoder.append(all.getSlice(at: 0, length: all.readableBytes - 1)!)
        #expect(try decoder.next() != nil)
        #expect(try decoder.next() == nil)
        let error = #expect(throws: RPCError.self) { try decoder.checkEnd() }
        #expect(error?.code == .protocolViolation)
    }

    @Test("a lying length reserves no more than a few times the bytes received")
    func lyingLengthReservesLittle() throws {
        var decoder = RPCStreamValueDecoder(maxValueSize: 16 << 20)
        // bin32 claiming 15 MiB, then 100 bytes of it in two reads.
        decoder.append(ByteBuffer(bytes: [0xc6, 0x00, 0xf0, 0x00, 0x00]))
        #expect(try decoder.next() == nil)
        decoder.append(ByteBuffer(repeating: 0, count: 100))
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedStorageCapacity < 4096)
    }

    @Test("the framer handler passes values on and reports a stream that ends inside one")
    func framerHandler() throws {
        let (all, each) = try values(5)
        let channel = EmbeddedChannel(handler: RPCStreamFramer(configuration: .init(maxValueSize: 1024)))
        try channel.writeInbound(all.getSlice(at: 0, length: all.readableBytes - 2)!)
        for value in each.dropLast() { #expect(try channel.readInbound(as: ByteBuffer.self) == value) }
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(throws: RPCError.self) { try channel.throwIfErrorCaught() }
    }
}

@Suite("Streaming call handshake")
struct StreamingHandshakeTests {
    private static func encoded<T: Encodable>(_ value: T) throws -> ByteBuffer { try MessagePackEncoder().encode(value) }

    @Test("the header and ack are Nomad's: {\"Method\": str} and {\"Error\": str}")
    func wireForm() throws {
        #expect(try Self.encoded(RPCStreamingHeader(method: "A.B")) == ByteBuffer(bytes: [0x81, 0xa6] + Array("Method".utf8) + [0xa3] + Array("A.B".utf8)))
        #expect(try Self.encoded(RPCStreamingAck(error: "")) == ByteBuffer(bytes: [0x81, 0xa5] + Array("Error".utf8) + [0xa0]))
    }

    @Test("server: a known method is accepted, then every value is delivered; input closed while streaming is no close")
    func serverAccepts() throws {
        var handshake = RPCStreamingServerHandshake()
        guard case .accept(let method, let ack) = handshake.received(try Self.encoded(RPCStreamingHeader(method: "Stream.Count")), isKnown: { $0 == "Stream.Count" }) else {
            Issue.record("not accepted"); return
        }
        #expect(method == "Stream.Count" && ack.error.isEmpty)
        #expect(handshake.state == .streaming(method: "Stream.Count"))
        guard case .deliver(let value) = handshake.received(ByteBuffer(bytes: [0x80]), isKnown: { _ in false }) else {
            Issue.record("value not delivered"); return
        }
        #expect(value == ByteBuffer(bytes: [0x80]))
        guard case .none = handshake.inputClosed() else { Issue.record("closed while streaming"); return }
    }

    @Test("server: an unknown method is rejected with Nomad's text, and later values are dropped")
    func serverRejects() throws {
        var handshake = RPCStreamingServerHandshake()
        guard case .reject(let ack) = handshake.received(try Self.encoded(RPCStreamingHeader(method: "X.Y")), isKnown: { _ in false }) else {
            Issue.record("not rejected"); return
        }
        #expect(ack.error == "Unknown rpc method: \"X.Y\"")
        #expect(handshake.state == .closed)
        guard case .none = handshake.received(ByteBuffer(bytes: [0x80]), isKnown: { _ in true }) else { Issue.record("value after close"); return }
    }

    @Test("server: a first value that is no header, or a close before one, closes without an answer")
    func serverCloses() throws {
        var notAHeader = RPCStreamingServerHandshake()
        guard case .close(let error) = notAHeader.received(ByteBuffer(bytes: [0x07]), isKnown: { _ in true }) else {
            Issue.record("not closed"); return
        }
        #expect(error.code == .protocolViolation)
        var closedEarly = RPCStreamingServerHandshake()
        guard case .close = closedEarly.inputClosed() else { Issue.record("not closed"); return }
        #expect(closedEarly.state == .closed)
    }

    @Test("client: an empty Error establishes the call; values after it are delivered")
    func clientEstablished() throws {
        var handshake = RPCStreamingClientHandshake(method: "Stream.Count")
        guard case .established = handshake.received(try Self.encoded(RPCStreamingAck(error: ""))) else { Issue.record("not established"); return }
        guard case .deliver = handshake.received(ByteBuffer(bytes: [0x80])) else { Issue.record("not delivered"); return }
        guard case .none = handshake.ended(nil) else { Issue.record("end after the ack failed the call"); return }
    }

    @Test("client: the server's Error fails the call with its text; no ack, or a close first, fails too")
    func clientFails() throws {
        var refused = RPCStreamingClientHandshake(method: "X.Y")
        guard case .fail(let error) = refused.received(try Self.encoded(RPCStreamingAck(error: "Unknown rpc method: \"X.Y\""))) else {
            Issue.record("not failed"); return
        }
        #expect(error.code == .serverError && error.message == "Unknown rpc method: \"X.Y\"")
        guard case .none = refused.received(ByteBuffer(bytes: [0x80])) else { Issue.record("value after failure"); return }

        var garbled = RPCStreamingClientHandshake(method: "X.Y")
        guard case .fail(let notAnAck) = garbled.received(ByteBuffer(bytes: [0x2a])) else { Issue.record("not failed"); return }
        #expect(notAnAck.code == .protocolViolation)

        var closed = RPCStreamingClientHandshake(method: "X.Y")
        guard case .fail(let closedError) = closed.ended(nil) else { Issue.record("not failed"); return }
        #expect(closedError.code == .connectionClosed)
    }
}
