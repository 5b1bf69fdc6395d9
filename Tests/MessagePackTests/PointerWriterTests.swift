@_spi(Benchmarking) @testable import MessagePack
import NIOCore
import Testing

@Suite("Pointer writer")
struct PointerWriterTests {
    @Test("writes the same bytes as the ByteBuffer methods, in one reservation")
    func sameBytes() throws {
        var viaMethods = ByteBuffer()
        try viaMethods.writeMessagePackMapHeader(count: 7)
        try viaMethods.writeMessagePackString("ServiceMethod")
        try viaMethods.writeMessagePackString(String(repeating: "m", count: 40))
        try viaMethods.writeMessagePackString("Seq")
        viaMethods.writeMessagePackInteger(UInt64.max)
        try viaMethods.writeMessagePackString("n")
        viaMethods.writeMessagePackInteger(Int64.min)
        try viaMethods.writeMessagePackString("b")
        viaMethods.writeMessagePackBool(true)
        try viaMethods.writeMessagePackString("f")
        viaMethods.writeMessagePackDouble(1.5)
        try viaMethods.writeMessagePackString("z")
        viaMethods.writeMessagePackNil()
        try viaMethods.writeMessagePackString("a")
        try viaMethods.writeMessagePackArrayHeader(count: 2)
        try viaMethods.writeMessagePackBinary([1, 2, 3])
        viaMethods.writeMessagePackFloat(-2)

        var viaPointer = ByteBuffer(bytes: [0xee])
        viaPointer.moveReaderIndex(forwardBy: 1)
        let written = try viaPointer.writeMessagePack(reservingCapacity: 200) { writer in
            writer.writeMapHeader(count: 7)
            writer.writeString("ServiceMethod")
            writer.writeString(String(repeating: "m", count: 40))
            writer.writeString("Seq")
            writer.writeInteger(UInt64.max)
            writer.writeString("n")
            writer.writeInteger(Int64.min)
            writer.writeString("b")
            writer.writeBool(true)
            writer.writeString("f")
            writer.writeDouble(1.5)
            writer.writeString("z")
            writer.writeNil()
            writer.writeString("a")
            writer.writeArrayHeader(count: 2)
            [UInt8]([1, 2, 3]).withUnsafeBytes { writer.writeBinary($0) }
            writer.writeFloat(-2)
        }
        #expect(written == viaMethods.readableBytes)
        #expect(viaPointer == viaMethods)
    }

    @Test("too small a reservation writes nothing and says how much was needed")
    func capacityExceeded() throws {
        var buffer = ByteBuffer(bytes: [1, 2])
        #expect(throws: MessagePackError(.writerCapacityExceeded(needed: 16, capacity: 10), offset: nil)) {
            try buffer.writeMessagePack(reservingCapacity: 10) { writer in
                writer.writeString("abc")  // 4 bytes, room for 5 reserved
                writer.writeString("abcdefg")  // needs 4 written + 5 + 7 = 16
                writer.writeNil()  // ignored once over
            }
        }
        #expect(buffer.bytes == [1, 2])
        #expect(MessagePackPointerWriter.maxLength(ofString: "héllo") == 11)
    }

    @Test("legacy headers skip str8 here too")
    func legacyHeaders() throws {
        let text = String(repeating: "x", count: 40)
        var legacy = ByteBuffer()
        try legacy.writeMessagePack(reservingCapacity: 64) { $0.writeString(text) }
        #expect(legacy.bytes.prefix(3) == [0xda, 0x00, 40])
        var current = ByteBuffer()
        try current.writeMessagePack(reservingCapacity: 64, headers: .current) { $0.writeString(text) }
        #expect(current.bytes.prefix(2) == [0xd9, 40])
    }
}
