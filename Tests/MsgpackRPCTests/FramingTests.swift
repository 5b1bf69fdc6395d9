import InteropSupport
import MessagePack
import MsgpackRPC
import NIOCore
import NIOEmbedded
import Testing

@Suite struct FramingTests {
    /// Three messages back to back: a header, a 300-byte body, an empty map.
    static func stream() throws -> (ByteBuffer, [ByteBuffer]) {
        var messages: [ByteBuffer] = []
        var header = ByteBuffer()
        RPCRequestHeader(serviceMethod: "Echo.Echo", seq: 7, deadline: RPCDeadline(unixNanoseconds: 5)).write(to: &header)
        messages.append(header)
        messages.append(try MessagePackEncoder().encode(DemoServices.EchoArgs(msg: pattern(300))))
        messages.append(ByteBuffer(hex: "80"))
        var all = ByteBuffer()
        for message in messages { all.writeImmutableBuffer(message) }
        return (all, messages)
    }

    @Test func splitAtEveryByteBoundary() throws {
        let (all, messages) = try Self.stream()
        for split in 0...all.readableBytes {
            let channel = EmbeddedChannel(handler: RPCMessageFramer())
            try channel.writeInbound(all.getSlice(at: 0, length: split)!)
            try channel.writeInbound(all.getSlice(at: split, length: all.readableBytes - split)!)
            var received: [ByteBuffer] = []
            while let message = try channel.readInbound(as: ByteBuffer.self) { received.append(message) }
            #expect(received == messages, "split at \(split)")
            _ = try channel.finish()
        }
    }

    /// Thousands of messages in reads of odd sizes, so that nearly every
    /// read ends inside a message: all arrive, whole and in order.
    @Test func manyMessagesInReadsThatEndMidMessage() throws {
        let (all, messages) = try Self.stream()
        var stream = ByteBuffer()
        for _ in 0..<2_000 { stream.writeImmutableBuffer(all) }
        let channel = EmbeddedChannel(handler: RPCMessageFramer())
        var received = 0
        var offset = 0
        var size = 1
        while offset < stream.readableBytes {
            let length = min(size, stream.readableBytes - offset)
            try channel.writeInbound(stream.getSlice(at: offset, length: length)!)
            offset += length
            size = size % 997 + 13
            while let message = try channel.readInbound(as: ByteBuffer.self) {
                try #require(message == messages[received % messages.count], "message \(received)")
                received += 1
            }
        }
        #expect(received == 2_000 * messages.count)
        _ = try channel.finish()
    }

    @Test func oneByteAtATime() throws {
        let (all, messages) = try Self.stream()
        let channel = EmbeddedChannel(handler: RPCMessageFramer())
        var received: [ByteBuffer] = []
        for index in 0..<all.readableBytes {
            try channel.writeInbound(all.getSlice(at: index, length: 1)!)
            while let message = try channel.readInbound(as: ByteBuffer.self) { received.append(message) }
        }
        #expect(received == messages)
        _ = try channel.finish()
    }

    @Test func lyingLengthFailsAtOnce() throws {
        let channel = EmbeddedChannel(handler: RPCMessageFramer())
        // str32 claiming 4 GiB - 1: rejected on its 5-byte header, nothing buffered for it.
        #expect {
            try channel.writeInbound(ByteBuffer(hex: "db ff ff ff ff"))
        } throws: { error in
            (error as? RPCError)?.code == .limitExceeded && (error as? RPCError)?.isStreamUsable == false
        }
        _ = try? channel.finish()
    }

    @Test func endlessNestingAndMessageSizeFail() throws {
        let limits = MessagePackLimits(maxDepth: 8, maxMessageSize: 1024)
        let nested = EmbeddedChannel(handler: RPCMessageFramer(limits: limits))
        #expect {
            try nested.writeInbound(ByteBuffer(bytes: [UInt8](repeating: 0x91, count: 100)))
        } throws: { error in (error as? RPCError)?.code == .limitExceeded }
        _ = try? nested.finish()

        let big = EmbeddedChannel(handler: RPCMessageFramer(limits: limits))
        var buffer = ByteBuffer()
        _ = try buffer.writeMessagePackStringHeader(count: 2000)
        #expect {
            try big.writeInbound(buffer)
        } throws: { error in (error as? RPCError)?.code == .limitExceeded }
        _ = try? big.finish()
    }

    @Test func invalidByteIsAProtocolViolation() throws {
        let channel = EmbeddedChannel(handler: RPCMessageFramer())
        #expect {
            try channel.writeInbound(ByteBuffer(hex: "c1"))
        } throws: { error in (error as? RPCError)?.code == .protocolViolation }
        _ = try? channel.finish()
    }
}
