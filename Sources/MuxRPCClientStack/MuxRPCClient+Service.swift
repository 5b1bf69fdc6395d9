public import ServiceLifecycle
import MuxRPCPool
import MuxRPCTransport

extension MuxRPCClient: Service {
    /// Runs until the service group shuts down gracefully, then shuts the
    /// client down; cancellation closes everything at once. The client
    /// serves calls whether or not this runs.
    public func run() async throws {
        await runUntilGracefulShutdown(gracePeriod: configuration.pool.shutdownGracePeriod, shutdown(gracePeriod:))
    }
}
