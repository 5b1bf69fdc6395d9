import MuxRPC

// Arguments and replies are Codable. The coding keys are the field names of
// the Go structs a Consul-style server would use.
struct AddArgs: Codable, Sendable {
    var a: Int64
    var b: Int64
    enum CodingKeys: String, CodingKey { case a = "A", b = "B" }
}

struct AddReply: Codable, Sendable {
    var sum: Int64
    enum CodingKeys: String, CodingKey { case sum = "Sum" }
}

// A server: register methods, then listen. It speaks Consul's and Nomad's
// multiplexed modes and plain net/rpc on the one port.
var services = RPCServiceRegistry()
services.register(service: "Arith", method: "Add") { (arguments: AddArgs, _) in
    AddReply(sum: arguments.a + arguments.b)
}
let server = MuxRPCServer(services: services, configuration: .init(host: "127.0.0.1", port: 8300))
try await server.start()

// A client. Consul's multiplexed mode is the default: say .nomadMultiplex
// for a Nomad server, .plain for one net/rpc connection per call.
let client = try MuxRPCClient(endpoints: ["127.0.0.1:8300"], configuration: .init(mode: .consulMultiplex))
let reply = try await client.call("Arith.Add", AddArgs(a: 2, b: 3), returning: AddReply.self)
print("2 + 3 = \(reply.sum)")

await client.shutdown()
await server.shutdown()
