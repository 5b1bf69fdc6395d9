import MessagePack
public import MsgpackRPC

/// The demo streaming methods (Nomad's streaming RPC), the same as the Go
/// streaming peer's client expects (Tests/GoPeers/stream-peer):
///
/// | method | caller writes | server writes |
/// | --- | --- | --- |
/// | Stream.Count | {"Count": int64} | {"N": 0} … {"N": Count-1}, then closes its side |
/// | Stream.Echo | any values | each value back as it reads it, until the caller closes its side |
public enum DemoStreamingServices {
    /// Registers Stream.Count and Stream.Echo.
    public static func register(into registry: inout RPCStreamingRegistry) {
        registry.register(service: "Stream", method: "Count") {
            (inbound: RPCStreamingInbound<CountArgs>, writer: RPCStreamingWriter<CountFrame>, _) in
            var values = inbound.makeAsyncIterator()
            guard let arguments = try await values.next() else { return }
            var n: Int64 = 0
            while n < arguments.count {
                try await writer.write(CountFrame(n: n))
                n += 1
            }
        }
        registry.register(service: "Stream", method: "Echo") {
            (inbound: RPCStreamingInbound<MessagePackValue>, writer: RPCStreamingWriter<MessagePackValue>, _) in
            for try await value in inbound {
                try await writer.write(value)
            }
        }
    }

    /// A registry holding just the demo streaming methods.
    public static var registry: RPCStreamingRegistry {
        var registry = RPCStreamingRegistry()
        register(into: &registry)
        return registry
    }

    /// Stream.Count's first value: Go's `struct{ Count int64 }`.
    public struct CountArgs: Codable, Hashable, Sendable {
        public var count: Int64
        public init(count: Int64) { self.count = count }
        enum CodingKeys: String, CodingKey { case count = "Count" }
    }

    /// Each value Stream.Count writes: Go's `struct{ N int64 }`.
    public struct CountFrame: Codable, Hashable, Sendable {
        public var n: Int64
        public init(n: Int64) { self.n = n }
        enum CodingKeys: String, CodingKey { case n = "N" }
    }
}
