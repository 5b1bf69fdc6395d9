public import MessagePack
public import MsgpackRPC
public import NIOCore

/// The demo services every MuxRPC demo program and interop test uses, the same
/// as the Go peer's (Tests/GoPeers/rpc-peer):
///
/// | method | arguments | reply |
/// | --- | --- | --- |
/// | Status.Ping | empty | empty |
/// | Echo.Echo | {"Msg": bytes} | {"Msg": bytes} |
/// | Arith.Add | {"A": int64, "B": int64} | {"Sum": int64} (wrapping, as Go's int64 addition) |
/// | Test.Fail | {"Message": string} | an error with that message |
/// | Test.Sleep | {"Ms": int64} | empty, after sleeping (cancelled by the caller's deadline) |
public enum DemoServices {
    /// Registers all five methods. The four that only compute are inline
    /// (they run on the event loop, without a task); Test.Sleep waits, so it
    /// is async.
    public static func register(into registry: inout RPCServiceRegistry) {
        registry.registerInline(service: "Status", method: "Ping") { (_: RPCEmpty, _) in RPCEmpty() }
        registry.registerInline(service: "Echo", method: "Echo") { (arguments: EchoArgs, _) in
            EchoReply(msg: arguments.msg)
        }
        registry.registerInline(service: "Arith", method: "Add") { (arguments: AddArgs, _) in
            AddReply(sum: arguments.a &+ arguments.b)
        }
        registry.registerInline(service: "Test", method: "Fail") { (arguments: FailArgs, _) -> RPCEmpty in
            throw RPCError(serverError: arguments.message)
        }
        registry.register(service: "Test", method: "Sleep") { (arguments: SleepArgs, _) in
            try await Task.sleep(for: .milliseconds(arguments.ms))
            return RPCEmpty()
        }
    }

    /// A registry holding just the demo services.
    public static var registry: RPCServiceRegistry {
        var registry = RPCServiceRegistry()
        register(into: &registry)
        return registry
    }

    /// Echo.Echo's arguments: Go's `struct{ Msg []byte }`. Self-coding
    /// (``MessagePackSelfCodable``), as a hot path's types should be.
    public struct EchoArgs: Codable, Hashable, Sendable, MessagePackSelfCodable {
        public var msg: [UInt8]
        public init(msg: [UInt8]) { self.msg = msg }
        enum CodingKeys: String, CodingKey { case msg = "Msg" }

        public func writeMessagePack(into buffer: inout ByteBuffer, options: MessagePackWriteOptions) throws {
            try MsgStruct.write(msg, into: &buffer, options: options)
        }

        public init(readingMessagePack reader: inout MessagePackReader) throws {
            msg = try MsgStruct.read(from: &reader)
        }
    }

    /// Echo.Echo's reply: Go's `struct{ Msg []byte }`, self-coding too.
    public struct EchoReply: Codable, Hashable, Sendable, MessagePackSelfCodable {
        public var msg: [UInt8]
        public init(msg: [UInt8]) { self.msg = msg }
        enum CodingKeys: String, CodingKey { case msg = "Msg" }

        public func writeMessagePack(into buffer: inout ByteBuffer, options: MessagePackWriteOptions) throws {
            try MsgStruct.write(msg, into: &buffer, options: options)
        }

        public init(readingMessagePack reader: inout MessagePackReader) throws {
            msg = try MsgStruct.read(from: &reader)
        }
    }

    /// The MessagePack form of Go's `struct{ Msg []byte }`, which Echo's
    /// arguments and reply share: a one-entry map.
    private enum MsgStruct {
        static let keyName: StaticString = "Msg"
        static var key: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: keyName.utf8Start, count: keyName.utf8CodeUnitCount) }

        static func write(_ msg: [UInt8], into buffer: inout ByteBuffer, options: MessagePackWriteOptions) throws {
            try buffer.writeMessagePackMapHeader(count: 1)
            try buffer.writeMessagePackStringBytes(key, headers: options.stringHeaders)
            _ = try msg.withUnsafeBytes { bytes in try buffer.writeMessagePackBytes(bytes, options: options) }
        }

        /// Go's rules: unknown keys are skipped, a missing field or a nil
        /// (a nil map, a nil slice) is empty.
        static func read(from reader: inout MessagePackReader) throws(MessagePackError) -> [UInt8] {
            if reader.nextIsNil() {
                try reader.readNil()
                return []
            }
            var msg: [UInt8] = []
            for _ in 0..<(try reader.readMapHeader()) {
                if try reader.readString(equals: key) {
                    if reader.nextIsNil() {
                        try reader.readNil()
                        msg = []
                    } else {
                        msg = try reader.withStringBytes { Array($0) }
                    }
                } else {
                    try reader.skipValue()
                }
            }
            return msg
        }
    }

    /// Arith.Add's arguments: Go's `struct{ A, B int64 }`.
    public struct AddArgs: Codable, Hashable, Sendable {
        public var a: Int64
        public var b: Int64
        public init(a: Int64, b: Int64) {
            self.a = a
            self.b = b
        }
        enum CodingKeys: String, CodingKey {
            case a = "A"
            case b = "B"
        }
    }

    /// Arith.Add's reply: Go's `struct{ Sum int64 }`.
    public struct AddReply: Codable, Hashable, Sendable {
        public var sum: Int64
        public init(sum: Int64) { self.sum = sum }
        enum CodingKeys: String, CodingKey { case sum = "Sum" }
    }

    /// Test.Fail's arguments: Go's `struct{ Message string }`.
    public struct FailArgs: Codable, Hashable, Sendable {
        public var message: String
        public init(message: String) { self.message = message }
        enum CodingKeys: String, CodingKey { case message = "Message" }
    }

    /// Test.Sleep's arguments: Go's `struct{ Ms int64 }`.
    public struct SleepArgs: Codable, Hashable, Sendable {
        public var ms: Int64
        public init(ms: Int64) { self.ms = ms }
        enum CodingKeys: String, CodingKey { case ms = "Ms" }
    }
}
