import Foundation
import KVService
import MuxRPC

// Puts a few values into a KV server and reads them back. Calls the server
// named on the command line ("host:port"), 127.0.0.1:8300 by default: this
// package's kv-server, or the Go server of Examples/GoKVServer.
//
//     swift run --package-path Examples kv-client [host:port]
let arguments = CommandLine.arguments.dropFirst()
guard let endpoint = Endpoint(arguments.first ?? "127.0.0.1:8300") else {
    print("usage: kv-client [host:port]")
    exit(2)
}

let client = try MuxRPCClient(endpoints: [endpoint])
let kv = KVClient(client: client)
for (key, value) in [("alpha", "first"), ("beta", "second")] {
    try await kv.put(key, Array(value.utf8))
}
for key in ["alpha", "beta", "gamma"] {
    if let value = try await kv.get(key) {
        print("\(key) = \(String(decoding: value, as: UTF8.self))")
    } else {
        print("\(key) is not set")
    }
}

// A handler's error reaches the caller as an RPCError whose message is the
// server's text.
do {
    try await kv.put("", [])
} catch let error as RPCError where error.code == .serverError {
    print("the server refused an empty key: \(error.message)")
}
await client.shutdown()
