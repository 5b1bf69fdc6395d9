import DemoServices
import MsgpackRPC
import NIOCore
import Testing

/// A service registered as a whole through `RPCService`.
private struct KeyValueService: RPCService {
    struct Get: Codable, Sendable {
        var key: String
        enum CodingKeys: String, CodingKey { case key = "Key" }
    }
    struct Value: Codable, Sendable {
        var value: String
        enum CodingKeys: String, CodingKey { case value = "Value" }
    }

    let prefix: String

    func register(into registry: inout RPCServiceRegistry) {
        registry.register(service: "KV", method: "Get") { (arguments: Get, _) in
            Value(value: prefix + arguments.key)
        }
        registry.register(service: "KV", method: "Len") { (arguments: Get, _) in
            Int64(arguments.key.utf8.count)
        }
    }
}

@Suite struct RegistryTests {
    @Test func serviceProtocolRegistersEveryMethod() async throws {
        var registry = DemoServices.registry
        registry.register(KeyValueService(prefix: "v:"))
        #expect(registry.methodNames == [
            "Arith.Add", "Echo.Echo", "KV.Get", "KV.Len", "Status.Ping", "Test.Fail", "Test.Sleep",
        ])
        try await withServerAndClient(registry: registry) { _, client in
            let value = try await client.call("KV.Get", KeyValueService.Get(key: "a"), returning: KeyValueService.Value.self)
            #expect(value.value == "v:a")
            let length = try await client.call("KV.Len", KeyValueService.Get(key: "four"), returning: Int64.self)
            #expect(length == 4)
            let missing = await expectRPCError { _ = try await client.call("KV.Put", RPCEmpty(), returning: RPCEmpty.self) }
            #expect(missing?.message == "rpc: can't find method KV.Put")
        }
    }

    @Test func registeringAgainReplacesTheHandler() async throws {
        var registry = RPCServiceRegistry()
        registry.register(service: "A", method: "B") { (_: RPCEmpty, _) in "first" }
        registry.register(service: "A", method: "B") { (_: RPCEmpty, _) in "second" }
        try await withServerAndClient(registry: registry) { _, client in
            let reply = try await client.call("A.B", RPCEmpty(), returning: String.self)
            #expect(reply == "second")
        }
    }

    @Test func handlerErrorsBecomeReplies() async throws {
        struct Custom: Error, CustomStringConvertible { var description: String { "custom failure" } }
        var registry = RPCServiceRegistry()
        registry.register(service: "E", method: "Custom") { (_: RPCEmpty, _) -> RPCEmpty in throw Custom() }
        registry.register(service: "E", method: "Service") { (_: RPCEmpty, _) -> RPCEmpty in throw RPCError(serverError: "exact text") }
        try await withServerAndClient(registry: registry) { _, client in
            let custom = await expectRPCError { _ = try await client.call("E.Custom", RPCEmpty(), returning: RPCEmpty.self) }
            #expect(custom?.message == "custom failure")
            let service = await expectRPCError { _ = try await client.call("E.Service", RPCEmpty(), returning: RPCEmpty.self) }
            #expect(service?.message == "exact text")
            #expect(client.isUsable)
        }
    }
}
