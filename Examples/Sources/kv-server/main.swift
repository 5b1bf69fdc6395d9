import KVService
import MuxRPC

// Serves KV.Put and KV.Get on 127.0.0.1:8300, in Consul's and Nomad's
// multiplexed modes and plain net/rpc alike, until the process is stopped.
//
//     swift run --package-path Examples kv-server
let store = KVStore()
var services = RPCServiceRegistry()
store.register(into: &services)

let server = MuxRPCServer(services: services, configuration: .init(host: "127.0.0.1", port: 8300))
let address = try await server.start()
print("KV server listening on \(address)")
try await server.run()
