import MuxRPC
import NIOCore
import NIOPosix

// An application that uses SwiftNIO itself, with its own event loop group,
// and hands that group to MuxRPC: one set of threads for both. It builds
// against a wider swift-nio range than MuxRPC's own (Examples/Package.swift).
//
//     swift run --package-path Examples nio-neighbour
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

var services = RPCServiceRegistry()
services.registerInline(service: "Status", method: "Ping") { (_: RPCEmpty, _) in RPCEmpty() }
let server = MuxRPCServer(services: services, configuration: .init(host: "127.0.0.1", port: 0), group: group)
let address: SocketAddress = try await server.start()

let client = try MuxRPCClient(endpoints: [Endpoint(address)], group: group)
_ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
print("pinged \(address) on the application's own event loop group")

await client.shutdown()
await server.shutdown()
try await group.shutdownGracefully()
