import Foundation
import KVService
import MuxRPC

// Calls the Go KV server of Examples/GoKVServer, which serves the way a
// Consul server does: 0x04 first, then a yamux session, net/rpc with
// MessagePack on every stream. Examples/run-go-example.sh builds and starts
// the Go server and runs this against it.
//
//     Examples/run-go-example.sh
let arguments = CommandLine.arguments.dropFirst()
guard let endpoint = Endpoint(arguments.first ?? "127.0.0.1:8300") else {
    print("usage: call-go-server [host:port]")
    exit(2)
}

// Consul's mode is the default; it is spelled out here because it is what
// the Go server expects. A call that sets no deadline gets this one.
let configuration = MuxRPCClient.Configuration(mode: .consulMultiplex, defaultTimeout: .seconds(5))
let client = try MuxRPCClient(endpoints: [endpoint], configuration: configuration)
let kv = KVClient(client: client)

try await kv.put("greeting", Array("hello from Swift".utf8))
let value = try await kv.get("greeting")
print("greeting = \(value.map { String(decoding: $0, as: UTF8.self) } ?? "(not set)")")

// Go's `errors.New("empty key")` arrives as the error's message.
do {
    try await kv.put("", [])
    print("the Go server took an empty key")
    exit(1)
} catch let error as RPCError where error.code == .serverError {
    print("the Go server refused an empty key: \(error.message)")
}
await client.shutdown()
