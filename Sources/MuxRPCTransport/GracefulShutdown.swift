import ServiceLifecycle

/// What a `Service.run()` of ours does: wait for the service group's
/// graceful shutdown, then `shutdown` with `gracePeriod`; if the task is
/// cancelled instead (a forced shutdown), `shutdown` with no grace at all.
package func runUntilGracefulShutdown(gracePeriod: Duration, _ shutdown: (Duration) async -> Void) async {
    do {
        try await gracefulShutdown()
        await shutdown(gracePeriod)
    } catch {
        await shutdown(.zero)
    }
}
