package import NIOCore

extension EventLoopFuture where Value: Sendable {
    /// The future's result, or nil if `deadline` comes first.
    ///
    /// The one way MuxRPC's modules wait for something with a time limit: a
    /// graceful shutdown's grace period, a health check's ping, a stream
    /// opened under a call's deadline. (Racing `get()` in a task group would
    /// not do: `get()` ignores cancellation, so the group would wait for the
    /// future regardless.) The future goes on after a timeout; a caller that
    /// must dispose of a late value registers for it.
    package func result(before deadline: NIODeadline) async -> Result<Value, any Error>? {
        let promise = eventLoop.makePromise(of: Result<Value, any Error>?.self)
        let timer = eventLoop.scheduleTask(deadline: deadline) { promise.succeed(nil) }
        whenComplete { result in
            timer.cancel()
            promise.succeed(result)  // ignored if the timer was first
        }
        return try? await promise.futureResult.get() ?? nil
    }
}
