/// The values of a server-streaming call, as a sequence: the call starts
/// when the first value is asked for, and each value is read from the
/// stream only when it is asked for, so a slow consumer holds the sender
/// back through the stream's flow control.
///
///     for try await frame in connection.stream("FileSystem.Logs", args, of: StreamFrame.self) {
///         …
///     }
///
/// Iterate it once. It ends when the server closes its side; it throws
/// what the call throws (``RPCError``: the server refused the method, a
/// value did not decode, the stream was reset). Cancelling the iterating
/// task, or dropping the iterator before the end, resets the stream; a
/// cancelled iteration ends with `nil`.
public struct RPCServerStream<Element: Decodable & Sendable>: AsyncSequence, Sendable {
    /// Runs the call, handing its inbound values to `consume`.
    public typealias Start = @Sendable (
        _ consume: @escaping @Sendable (RPCStreamingInbound<Element>) async throws -> Void
    ) async throws -> Void

    private let start: Start

    /// A sequence over the call that `start` makes. Transports make these
    /// (`MuxRPCConnection.stream(_:_:of:)`); make one to adapt another.
    public init(start: @escaping Start) {
        self.start = start
    }

    /// The server-streaming shape of a streaming call that `call` makes (on
    /// a connection, a pool, a client or a peer): writes `arguments` as the
    /// call's first value, then yields the values the server writes.
    public init<Arguments: Encodable & Sendable>(
        writing arguments: Arguments,
        through call: @escaping @Sendable (
            _ body: (RPCStreamingInbound<Element>, RPCStreamingWriter<Arguments>) async throws -> Void
        ) async throws -> Void
    ) {
        self.init { consume in
            try await call { inbound, writer in
                try await writer.write(arguments)
                try await consume(inbound)
            }
        }
    }

    /// Starts the call at its first `next()`.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(bridge: Bridge(start: start))
    }

    /// Reads the call's values one by one.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let bridge: Bridge

        /// The next value; nil once the server closed its side.
        public mutating func next() async throws -> Element? {
            try await bridge.next()
        }
    }

    /// Hands values from the task that runs the call to the iterating task,
    /// one asked-for value at a time: the call's task reads a value only
    /// after the iterator asks for one, so no value waits in between beyond
    /// the one handed over.
    final class Bridge {
        private let start: Start
        private var values: AsyncThrowingStream<Element, any Error>.AsyncIterator?
        private var demand: AsyncStream<Void>.Continuation?
        private var task: Task<Void, Never>?

        init(start: @escaping Start) {
            self.start = start
        }

        deinit {
            // Dropped before the end: the call's task resets the stream.
            task?.cancel()
            demand?.finish()
        }

        func next() async throws -> Element? {
            if values == nil { begin() }
            demand?.yield(())
            return try await values!.next()
        }

        private func begin() {
            let (values, valuesContinuation) = AsyncThrowingStream.makeStream(of: Element.self)
            let (demand, demandContinuation) = AsyncStream.makeStream(of: Void.self)
            let start = self.start
            let task = Task {
                do {
                    try await start { inbound in
                        var iterator = inbound.makeAsyncIterator()
                        for await _ in demand {
                            guard let value = try await iterator.next() else { return }
                            valuesContinuation.yield(value)
                        }
                    }
                    valuesContinuation.finish()
                } catch {
                    valuesContinuation.finish(throwing: error)
                }
            }
            // The iterating task was cancelled (or the iterator let go):
            // stop the call, which resets its stream.
            valuesContinuation.onTermination = { _ in task.cancel() }
            self.values = values.makeAsyncIterator()
            self.demand = demandContinuation
            self.task = task
        }
    }
}
