public import ServiceLifecycle
import MuxRPCTransport

extension ConnectionPool: Service {
    /// Runs until the service group shuts down gracefully, then shuts the
    /// pool down with its grace period. Cancellation (a forced shutdown)
    /// closes everything at once.
    ///
    /// The pool serves calls whether or not this runs; running it ties the
    /// pool's shutdown to the application's.
    public func run() async throws {
        await runUntilGracefulShutdown(gracePeriod: configuration.shutdownGracePeriod, shutdown(gracePeriod:))
    }
}
