import MuxRPC
import Synchronization

/// A key-value service with typed arguments, served as `KV.Put` and
/// `KV.Get`. The same two methods, with the same field names, are what
/// Examples/GoKVServer serves in Go, so ``KVClient`` calls either.

/// `KV.Put`'s arguments. The coding keys are the field names a Go server's
/// `struct { Key string; Value []byte }` reads.
public struct PutArgs: Codable, Sendable {
    public var key: String
    public var value: [UInt8]

    public init(key: String, value: [UInt8]) {
        self.key = key
        self.value = value
    }

    enum CodingKeys: String, CodingKey {
        case key = "Key"
        case value = "Value"
    }
}

/// `KV.Get`'s arguments.
public struct GetArgs: Codable, Sendable {
    public var key: String

    public init(key: String) { self.key = key }

    enum CodingKeys: String, CodingKey { case key = "Key" }
}

/// `KV.Get`'s reply: the value, and whether the key was there at all.
public struct GetReply: Codable, Sendable {
    public var value: [UInt8]
    public var found: Bool

    public init(value: [UInt8], found: Bool) {
        self.value = value
        self.found = found
    }

    enum CodingKeys: String, CodingKey {
        case value = "Value"
        case found = "Found"
    }
}

/// The values, shared by every connection the server serves.
public final class KVStore: Sendable {
    private let values = Mutex<[String: [UInt8]]>([:])

    public init() {}

    /// Registers `KV.Put` and `KV.Get` on `registry`. Both only touch
    /// memory, so they run inline, on the connection's event loop.
    public func register(into registry: inout RPCServiceRegistry) {
        registry.registerInline(service: "KV", method: "Put") { (arguments: PutArgs, _) -> RPCEmpty in
            // The text reaches the caller as the error's message, as a Go
            // server's `errors.New("empty key")` would.
            guard !arguments.key.isEmpty else { throw RPCError(serverError: "empty key") }
            self.values.withLock { $0[arguments.key] = arguments.value }
            return RPCEmpty()
        }
        registry.registerInline(service: "KV", method: "Get") { (arguments: GetArgs, _) in
            let value = self.values.withLock { $0[arguments.key] }
            return GetReply(value: value ?? [], found: value != nil)
        }
    }
}

/// Typed calls to a KV service, through any ``MuxRPCClient``.
public struct KVClient: Sendable {
    public let client: MuxRPCClient

    public init(client: MuxRPCClient) { self.client = client }

    public func put(_ key: String, _ value: [UInt8]) async throws {
        _ = try await client.call("KV.Put", PutArgs(key: key, value: value), returning: RPCEmpty.self)
    }

    /// The value under `key`, or nil when there is none.
    public func get(_ key: String) async throws -> [UInt8]? {
        let reply = try await client.call("KV.Get", GetArgs(key: key), returning: GetReply.self)
        return reply.found ? reply.value : nil
    }
}
