import CMsgpack
@_spi(Benchmarking) import MessagePack
import NIOCore

/// net/rpc's request header.
struct RequestHeader: Codable {
    var ServiceMethod: String
    var Seq: UInt64
}

/// The shape of a typical Consul read request (DC, node, ACL token and
/// blocking-query options).
struct QueryRequest: Codable {
    var Datacenter: String
    var Node: String
    var Token: String
    var AllowStale: Bool
    var MinQueryIndex: UInt64
    var MaxQueryTime: GoDuration
}

/// One RPC request as it goes on a stream: header, then body.
enum RPCMessage {
    static let header = RequestHeader(ServiceMethod: "Catalog.NodeServices", Seq: 48_213)
    static let body = QueryRequest(
        Datacenter: "dc1", Node: "node-42", Token: "", AllowStale: true,
        MinQueryIndex: 1_934, MaxQueryTime: GoDuration(.seconds(300))
    )

    /// The encoding every decode benchmark reads.
    static let encoded: ByteBuffer = {
        var buffer = ByteBuffer()
        try! writeRaw(into: &buffer)
        return buffer
    }()

    /// The same bytes as the Codable encoder writes, with one writer call per value.
    @inline(__always)
    static func writeRaw(into buffer: inout ByteBuffer) throws {
        try buffer.writeMessagePackMapHeader(count: 2)
        try buffer.writeMessagePackString("ServiceMethod")
        try buffer.writeMessagePackString(header.ServiceMethod)
        try buffer.writeMessagePackString("Seq")
        buffer.writeMessagePackInteger(header.Seq)
        try buffer.writeMessagePackMapHeader(count: 6)
        try buffer.writeMessagePackString("Datacenter")
        try buffer.writeMessagePackString(body.Datacenter)
        try buffer.writeMessagePackString("Node")
        try buffer.writeMessagePackString(body.Node)
        try buffer.writeMessagePackString("Token")
        try buffer.writeMessagePackString(body.Token)
        try buffer.writeMessagePackString("AllowStale")
        buffer.writeMessagePackBool(body.AllowStale)
        try buffer.writeMessagePackString("MinQueryIndex")
        buffer.writeMessagePackInteger(body.MinQueryIndex)
        try buffer.writeMessagePackString("MaxQueryTime")
        buffer.writeMessagePackInteger(body.MaxQueryTime.nanoseconds)
    }

    /// The same bytes again, all written into one reservation.
    @inline(__always)
    static func writePointer(into buffer: inout ByteBuffer) throws {
        typealias Writer = MessagePackPointerWriter
        let capacity = 2 * Writer.maxContainerHeaderLength + 9 * Writer.maxScalarLength + 80
            + Writer.maxLength(ofString: header.ServiceMethod) + Writer.maxLength(ofString: body.Datacenter)
            + Writer.maxLength(ofString: body.Node) + Writer.maxLength(ofString: body.Token)
        try buffer.writeMessagePack(reservingCapacity: capacity) { writer in
            writer.writeMapHeader(count: 2)
            writer.writeString("ServiceMethod")
            writer.writeString(header.ServiceMethod)
            writer.writeString("Seq")
            writer.writeInteger(header.Seq)
            writer.writeMapHeader(count: 6)
            writer.writeString("Datacenter")
            writer.writeString(body.Datacenter)
            writer.writeString("Node")
            writer.writeString(body.Node)
            writer.writeString("Token")
            writer.writeString(body.Token)
            writer.writeString("AllowStale")
            writer.writeBool(body.AllowStale)
            writer.writeString("MinQueryIndex")
            writer.writeInteger(body.MinQueryIndex)
            writer.writeString("MaxQueryTime")
            writer.writeInteger(body.MaxQueryTime.nanoseconds)
        }
    }

    /// Reads header and body field by field, as a hand-written parser would.
    static func readRaw(_ reader: inout MessagePackReader) throws -> (String, UInt64, String, UInt64) {
        var method = ""
        var seq: UInt64 = 0
        for _ in 0..<(try reader.readMapHeader()) {
            switch try reader.readString() {
            case "ServiceMethod": method = try reader.readString()
            case "Seq": seq = try reader.readInteger()
            default: try reader.skipValue()
            }
        }
        var node = ""
        var index: UInt64 = 0
        for _ in 0..<(try reader.readMapHeader()) {
            switch try reader.readString() {
            case "Node": node = try reader.readString()
            case "MinQueryIndex": index = try reader.readInteger()
            default: try reader.skipValue()
            }
        }
        return (method, seq, node, index)
    }
}

/// msgpack-c doing the same work.
struct ReferencePacker {
    private var buffer = msgpack_sbuffer()
    private var packer = msgpack_packer()

    init() {
        msgpack_sbuffer_init(&buffer)
    }

    var size: Int { buffer.size }

    mutating func clear() { msgpack_sbuffer_clear(&buffer) }

    mutating func destroy() { msgpack_sbuffer_destroy(&buffer) }

    private mutating func withPacker(_ body: (inout msgpack_packer) -> Void) {
        withUnsafeMutablePointer(to: &buffer) { bufferPointer in
            msgpack_packer_init(&packer, bufferPointer, msgpack_sbuffer_write)
            body(&packer)
        }
    }

    private static func string(_ value: StaticString, _ packer: inout msgpack_packer) {
        msgpack_pack_v4raw(&packer, value.utf8CodeUnitCount)
        msgpack_pack_v4raw_body(&packer, value.utf8Start, value.utf8CodeUnitCount)
    }

    private static func string(_ value: String, _ packer: inout msgpack_packer) {
        var value = value
        value.withUTF8 { utf8 in
            msgpack_pack_v4raw(&packer, utf8.count)
            msgpack_pack_v4raw_body(&packer, utf8.baseAddress, utf8.count)
        }
    }

    mutating func packRequest() {
        withPacker { packer in
            msgpack_pack_map(&packer, 2)
            Self.string("ServiceMethod", &packer)
            Self.string(RPCMessage.header.ServiceMethod, &packer)
            Self.string("Seq", &packer)
            msgpack_pack_uint64(&packer, RPCMessage.header.Seq)
            msgpack_pack_map(&packer, 6)
            Self.string("Datacenter", &packer)
            Self.string(RPCMessage.body.Datacenter, &packer)
            Self.string("Node", &packer)
            Self.string(RPCMessage.body.Node, &packer)
            Self.string("Token", &packer)
            Self.string(RPCMessage.body.Token, &packer)
            Self.string("AllowStale", &packer)
            _ = RPCMessage.body.AllowStale ? msgpack_pack_true(&packer) : msgpack_pack_false(&packer)
            Self.string("MinQueryIndex", &packer)
            msgpack_pack_uint64(&packer, RPCMessage.body.MinQueryIndex)
            Self.string("MaxQueryTime", &packer)
            msgpack_pack_int64(&packer, RPCMessage.body.MaxQueryTime.nanoseconds)
        }
    }

    mutating func packBinary(_ payload: [UInt8]) {
        withPacker { packer in
            msgpack_pack_bin(&packer, payload.count)
            msgpack_pack_bin_body(&packer, payload, payload.count)
        }
    }

    /// Unpacks header and body into msgpack-c objects and reads the same
    /// fields the reader benchmark reads.
    static func unpackRequest(_ bytes: [UInt8], into unpacked: inout msgpack_unpacked) -> (Int, UInt64, Int, UInt64) {
        var offset = 0
        var method = 0
        var seq: UInt64 = 0
        var node = 0
        var index: UInt64 = 0
        bytes.withUnsafeBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { chars in
                _ = msgpack_unpack_next(&unpacked, chars.baseAddress, chars.count, &offset)
                let header = unpacked.data.via.map
                for position in 0..<Int(header.size) {
                    let entry = header.ptr[position]
                    if key(entry.key, equals: "ServiceMethod") { method = Int(entry.val.via.str.size) }
                    if key(entry.key, equals: "Seq") { seq = entry.val.via.u64 }
                }
                _ = msgpack_unpack_next(&unpacked, chars.baseAddress, chars.count, &offset)
                let body = unpacked.data.via.map
                for position in 0..<Int(body.size) {
                    let entry = body.ptr[position]
                    if key(entry.key, equals: "Node") { node = Int(entry.val.via.str.size) }
                    if key(entry.key, equals: "MinQueryIndex") { index = entry.val.via.u64 }
                }
            }
        }
        return (method, seq, node, index)
    }

    private static func key(_ object: msgpack_object, equals name: StaticString) -> Bool {
        object.via.str.size == name.utf8CodeUnitCount
            && memcmp(object.via.str.ptr, name.utf8Start, name.utf8CodeUnitCount) == 0
    }

    static func unpackSize(_ bytes: [UInt8], into unpacked: inout msgpack_unpacked) -> Int {
        var offset = 0
        bytes.withUnsafeBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { chars in
                _ = msgpack_unpack_next(&unpacked, chars.baseAddress, chars.count, &offset)
            }
        }
        return Int(unpacked.data.via.bin.size)
    }
}

/// ``QueryRequest`` again, writing and reading itself (`MessagePackSelfCodable`,
/// go-msgpack's codecgen `Selfer`): what the encoder and decoder do instead of
/// `Codable` for such a type.
struct SelfCodingQueryRequest: Codable, MessagePackSelfCodable {
    var Datacenter: String
    var Node: String
    var Token: String
    var AllowStale: Bool
    var MinQueryIndex: UInt64
    var MaxQueryTime: GoDuration

    static let sample = SelfCodingQueryRequest(
        Datacenter: RPCMessage.body.Datacenter, Node: RPCMessage.body.Node, Token: RPCMessage.body.Token,
        AllowStale: RPCMessage.body.AllowStale, MinQueryIndex: RPCMessage.body.MinQueryIndex, MaxQueryTime: RPCMessage.body.MaxQueryTime
    )

    init(Datacenter: String, Node: String, Token: String, AllowStale: Bool, MinQueryIndex: UInt64, MaxQueryTime: GoDuration) {
        self.Datacenter = Datacenter
        self.Node = Node
        self.Token = Token
        self.AllowStale = AllowStale
        self.MinQueryIndex = MinQueryIndex
        self.MaxQueryTime = MaxQueryTime
    }

    func writeMessagePack(into buffer: inout ByteBuffer, options: MessagePackWriteOptions) throws {
        try buffer.writeMessagePackMapHeader(count: 6)
        try buffer.writeMessagePackString("Datacenter", options: options)
        try buffer.writeMessagePackString(Datacenter, options: options)
        try buffer.writeMessagePackString("Node", options: options)
        try buffer.writeMessagePackString(Node, options: options)
        try buffer.writeMessagePackString("Token", options: options)
        try buffer.writeMessagePackString(Token, options: options)
        try buffer.writeMessagePackString("AllowStale", options: options)
        buffer.writeMessagePackBool(AllowStale)
        try buffer.writeMessagePackString("MinQueryIndex", options: options)
        buffer.writeMessagePackInteger(MinQueryIndex)
        try buffer.writeMessagePackString("MaxQueryTime", options: options)
        buffer.writeMessagePackInteger(MaxQueryTime.nanoseconds)
    }

    init(readingMessagePack reader: inout MessagePackReader) throws {
        (Datacenter, Node, Token, AllowStale, MinQueryIndex, MaxQueryTime) = ("", "", "", false, 0, GoDuration(.zero))
        for _ in 0..<(try reader.readMapHeader()) {
            switch try reader.readString() {
            case "Datacenter": Datacenter = try reader.readString()
            case "Node": Node = try reader.readString()
            case "Token": Token = try reader.readString()
            case "AllowStale": AllowStale = try reader.readBool()
            case "MinQueryIndex": MinQueryIndex = try reader.readInteger()
            case "MaxQueryTime": MaxQueryTime = GoDuration(.nanoseconds(try reader.readInteger(as: Int64.self)))
            default: try reader.skipValue()
            }
        }
    }
}
