public import NIOCore

/// A Swift concurrency `TaskExecutor` that runs jobs on a NIO `EventLoop`.
///
/// NIO 2.101 gives an event loop a `SerialExecutor` (for actors) but no
/// `TaskExecutor`. With this one, a task started with
/// `Task(executorPreference:)` (or code inside `withTaskExecutorPreference`)
/// runs its nonisolated async code on the channel's own thread: the server
/// runs request handlers this way, so a request is read, handled and answered
/// without a thread hop. A client calling in such a task also avoids the hop
/// to and from the event loop.
///
/// Work that blocks or computes for long must not run here: it would stall
/// every other channel on that loop.
@available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *)
public final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    /// The loop jobs run on.
    public let eventLoop: any EventLoop

    /// An executor that runs every job it is given on `eventLoop`.
    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Runs `job` on the event loop, after the work already queued there.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        // Always through execute, never inline: enqueue may be called from a
        // job already running on this loop, and jobs must not nest.
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
