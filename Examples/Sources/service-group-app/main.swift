import KVService
import Logging
import MuxRPC
import ServiceLifecycle

// A KV server and a client of it in one ServiceGroup, as a service that
// both serves and calls would run them. SIGTERM or SIGINT (Ctrl-C) starts a
// graceful shutdown: the group stops its services in reverse order, so the
// writer stops first, then the client drains, then the server finishes the
// calls it has and closes.
//
//     swift run --package-path Examples service-group-app

/// Writes a counter into the store once a second until graceful shutdown.
struct CounterWriter: Service {
    let kv: KVClient
    let logger: Logger

    func run() async throws {
        var count = 0
        while !Task.isShuttingDownGracefully {
            count += 1
            do {
                try await kv.put("counter", Array(String(count).utf8))
                let stored = try await kv.get("counter").map { String(decoding: $0, as: UTF8.self) } ?? "?"
                logger.info("counter is \(stored)")
            } catch {
                // The server may not be listening yet in the first moments:
                // the services of a group start together.
                logger.warning("call failed: \(error)")
            }
            // A second's pause, cut short when graceful shutdown starts.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
    }
}

let logger = Logger(label: "service-group-app")
let store = KVStore()
var services = RPCServiceRegistry()
store.register(into: &services)

let server = MuxRPCServer(services: services, configuration: .init(host: "127.0.0.1", port: 8301))
let client = try MuxRPCClient(endpoints: ["127.0.0.1:8301"])
let writer = CounterWriter(kv: KVClient(client: client), logger: logger)

let group = ServiceGroup(
    configuration: .init(
        services: [
            .init(service: server),
            .init(service: client),
            .init(service: writer),
        ],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    )
)
try await group.run()
