import DemoServices
import TestSupport
import MessagePack
@testable import MsgpackRPC
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

    @Test func aMessageThatNeverCompletesFailsAfterThePartialMessageTimeout() throws {
        let (all, _) = try Self.stream()
        let channel = EmbeddedChannel(handler: RPCMessageFramer(partialMessageTimeout: .seconds(60)))
        // The header, and 10 bytes of the body.
        try channel.writeInbound(all.getSlice(at: 0, length: all.readableBytes - 300)!)
        #expect(try channel.readInbound(as: ByteBuffer.self) != nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        try channel.throwIfErrorCaught()
        // More of the same body: its time still runs from its first byte.
        try channel.writeInbound(ByteBuffer(repeating: 0, count: 10))
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        let error = #expect(throws: RPCError.self) { try channel.throwIfErrorCaught() }
        #expect(error?.code == .limitExceeded)
        _ = try? channel.finish()
    }

    @Test func messagesThatCompleteAreNeverTimedOut() throws {
        let (all, messages) = try Self.stream()
        let channel = EmbeddedChannel(handler: RPCMessageFramer(partialMessageTimeout: .seconds(60)))
        // Nearly every read ends inside a message, and each message completes in time.
        var stream = ByteBuffer()
        for _ in 0..<20 { stream.writeImmutableBuffer(all) }
        var received = 0
        while stream.readableBytes > 0 {
            try channel.writeInbound(stream.readSlice(length: min(200, stream.readableBytes))!)
            while try channel.readInbound(as: ByteBuffer.self) != nil { received += 1 }
            // A 304-byte body spans at most three 200-byte reads: 50 s, within the 60.
            channel.embeddedEventLoop.advanceTime(by: .seconds(25))
            try channel.throwIfErrorCaught()
        }
        // And idle between messages for as long as it likes.
        channel.embeddedEventLoop.advanceTime(by: .hours(1))
        try channel.throwIfErrorCaught()
        #expect(received == 20 * messages.count)
        _ = try channel.finish()
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

    /// A 1 MiB body arriving in 256 KiB reads (as MuxRPC's connections read)
    /// is copied once into a buffer made for all of it as soon as a second
    /// read has to be kept, not again each time the buffer doubles.
    @Test func largeMessageIsGatheredIntoOneBuffer() throws {
        var header = ByteBuffer()
        RPCRequestHeader(serviceMethod: "Echo.Echo", seq: 1).write(to: &header)
        let body = try MessagePackEncoder().encode(DemoServices.EchoArgs(msg: pattern(1 << 20)))
        var all = header
        all.writeImmutableBuffer(body)
        let framer = RPCMessageFramer()
        let channel = EmbeddedChannel(handler: framer)
        let piece = 256 * 1024
        var received: [ByteBuffer] = []
        var offset = 0
        while offset < all.readableBytes {
            let length = min(piece, all.readableBytes - offset)
            try channel.writeInbound(all.getSlice(at: offset, length: length)!)
            offset += length
            if offset == 2 * piece {
                // The body's headers said how long it is: room for all of it now.
                #expect(framer.bufferedStorageCapacity >= body.readableBytes)
            }
            while let message = try channel.readInbound(as: ByteBuffer.self) { received.append(message) }
        }
        #expect(received == [header, body])
        _ = try channel.finish()
    }

    /// Room is made for what a message's headers announce only up to a few
    /// times the bytes that came: a header that lies about a length (within
    /// the limits) and is followed by a trickle costs little memory.
    @Test func announcedLengthIsTrustedOnlyAsBytesArrive() throws {
        let framer = RPCMessageFramer()
        let channel = EmbeddedChannel(handler: framer)
        var announced = ByteBuffer()
        _ = try announced.writeMessagePackStringHeader(count: 8 << 20)
        announced.writeRepeatingByte(0x61, count: 1024 - announced.readableBytes)
        try channel.writeInbound(announced)
        try channel.writeInbound(ByteBuffer(repeating: 0x61, count: 1024))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        let received = 2048
        #expect(framer.bufferedStorageCapacity <= 2 * RPCMessageFramer.reservationFactor * received)
        _ = try? channel.finish()
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
