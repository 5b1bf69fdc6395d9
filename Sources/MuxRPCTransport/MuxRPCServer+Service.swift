public import ServiceLifecycle

extension MuxRPCServer: Service {
    /// Serves until the service group shuts down gracefully, then shuts the
    /// server down as ``shutdown()`` does: it stops accepting connections,
    /// lets calls in flight finish within
    /// ``Configuration/shutdownGracePeriod``, closes what is left, and
    /// returns. Cancellation (a forced shutdown) closes every connection at
    /// once.
    ///
    /// Starts the server first unless ``start()`` was called already, so
    /// that the address is known before the group runs; a server shut down
    /// already returns at once.
    ///
    /// - Throws: what ``start()`` throws, when it starts the server.
    public func run() async throws {
        if try await startUnlessStarted() == .shutDown { return }
        await runUntilGracefulShutdown(gracePeriod: configuration.shutdownGracePeriod, shutdown(gracePeriod:))
    }
}
