public import NIOCore
import Synchronization

/// A yamux session over one connection: open streams, accept the peer's, ping, go away, close.
///
/// Create one with ``configure(on:role:configuration:)`` on a connected channel (typically in a
/// bootstrap's channel initializer). All work happens on the channel's event loop; these async
/// methods only hop there and back.
public final class YamuxSession: Sendable {
    /// The connection (TCP) channel the session runs on.
    public let channel: any Channel
    /// Client (odd stream ids) or server (even stream ids).
    public let role: YamuxRole
    private let handler: NIOLoopBound<YamuxSessionHandler>
    private let nextAcceptToken = Atomic<Int>(0)
    /// Why the session ended, once it has; readable from any thread. The
    /// methods below answer from it instead of hopping to the event loop,
    /// which may be gone: once a group has shut down, NIO drops work
    /// scheduled on its loops, so a hop there would never come back.
    private let endReason = EndReason()

    private init(channel: any Channel, role: YamuxRole, handler: YamuxSessionHandler) {
        self.channel = channel
        self.role = role
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
    }

    /// Installs a yamux session at the end of `channel`'s pipeline.
    ///
    /// - Important: Call on the channel's event loop (for example inside a channel initializer),
    ///   before the first byte is read.
    public static func configure(
        on channel: any Channel,
        role: YamuxRole,
        configuration: YamuxConfiguration = .init()
    ) throws -> YamuxSession {
        try Self.configure(on: channel, role: role, configuration: configuration, liveObjects: nil)
    }

    /// As ``configure(on:role:configuration:)``, counting the session and its streams in
    /// `liveObjects` while their memory is held.
    package static func configure(
        on channel: any Channel,
        role: YamuxRole,
        configuration: YamuxConfiguration,
        liveObjects: YamuxLiveObjects?
    ) throws -> YamuxSession {
        channel.eventLoop.preconditionInEventLoop()
        try configuration.validate()
        let handler = YamuxSessionHandler(role: role, configuration: configuration, liveObjects: liveObjects)
        try channel.pipeline.syncOperations.addHandler(handler)
        let session = YamuxSession(channel: channel, role: role, handler: handler)
        handler.onClose { [endReason = session.endReason] reason in endReason.value.withLock { $0 = reason } }
        return session
    }

    /// Why the session ended, or nil while it runs.
    private var ended: YamuxError? { endReason.value.withLock { $0 } }

    /// A box, so that the handler's close callback holds it and not the session.
    private final class EndReason: Sendable {
        let value = Mutex<YamuxError?>(nil)
    }

    /// Installs a yamux session on `channel` from any thread (hops to its event loop).
    public static func install(
        on channel: any Channel,
        role: YamuxRole,
        configuration: YamuxConfiguration = .init()
    ) -> EventLoopFuture<YamuxSession> {
        channel.eventLoop.submit {
            try Self.configure(on: channel, role: role, configuration: configuration)
        }
    }

    private var eventLoop: any EventLoop { self.channel.eventLoop }

    /// Opens a stream. The SYN goes out at once; data may be written before the peer's ACK.
    /// Waits (without limit) while `acceptBacklog` of our opens are still un-ACKed, as
    /// hashicorp does.
    ///
    /// - Throws: ``YamuxError`` if the session is closed, the peer sent GoAway, or a limit is hit.
    public func openStream() async throws -> YamuxStream {
        if let ended { throw ended }
        let promise = self.eventLoop.makePromise(of: YamuxStream.self)
        let handler = self.handler
        self.eventLoop.execute {
            handler.value.openStream { result in
                switch result {
                case .success(let channel):
                    do {
                        promise.succeed(try YamuxStream(channel: channel))
                    } catch {
                        channel.triggerUserOutboundEvent0(YamuxStreamResetEvent(), promise: nil)
                        promise.fail(error)
                    }
                case .failure(let error):
                    promise.fail(error)
                }
            }
        }
        return try await promise.futureResult.get()
    }

    /// The peer's streams, in the order they were opened. Taking a stream from the sequence is
    /// what accepts it (its ACK goes out then). Ends (returns nil) when the session closes
    /// normally or after our GoAway once the backlog is drained; throws ``YamuxError`` when it
    /// ends in error.
    public var inboundStreams: YamuxInboundStreams { YamuxInboundStreams(session: self) }

    /// Accepts the next inbound stream; nil when no more will come.
    public func accept() async throws -> YamuxStream? {
        let token = self.nextAcceptToken.add(1, ordering: .relaxed).newValue
        let promise = self.eventLoop.makePromise(of: YamuxStream?.self)
        let handler = self.handler
        let eventLoop = self.eventLoop
        return try await withTaskCancellationHandler {
            eventLoop.execute {
                handler.value.accept(token: token) { result in
                    switch result {
                    case .success(.some(let channel)):
                        do {
                            promise.succeed(try YamuxStream(channel: channel))
                        } catch {
                            channel.triggerUserOutboundEvent0(YamuxStreamResetEvent(), promise: nil)
                            promise.fail(error)
                        }
                    case .success(.none):
                        promise.succeed(nil)
                    case .failure(let error):
                        promise.fail(error)
                    }
                }
            }
            return try await promise.futureResult.get()
        } onCancel: {
            eventLoop.execute { handler.value.cancelAccept(token) }
        }
    }

    /// Sends a ping and returns the measured round-trip time.
    ///
    /// - Throws: ``YamuxError`` with code `.pingTimeout` if no answer comes within
    ///   `connectionWriteTimeout`, or the session's close reason.
    public func ping() async throws -> Duration {
        if let ended { throw ended }
        let promise = self.eventLoop.makePromise(of: Duration.self)
        let handler = self.handler
        self.eventLoop.execute {
            handler.value.sendPing { result in promise.completeWith(result.mapError { $0 as any Error }) }
            handler.value.flushIfNeeded()
        }
        return try await promise.futureResult.get()
    }

    /// The latest measured round-trip time (from pings and keepalives), if any.
    public var lastRTT: Duration? {
        get async {
            let handler = self.handler
            let rtt = try? await self.eventLoop.submit { handler.value.rtt.map { Duration.nanoseconds($0.nanoseconds) } }.get()
            return rtt ?? nil
        }
    }

    /// Sends GoAway(0): the peer may open no more streams; open streams carry on. Inbound
    /// streams the peer opens from now on are refused with RST.
    public func goAway() async {
        if ended != nil { return }
        let handler = self.handler
        try? await self.eventLoop.submit { handler.value.goAway() }.get()
    }

    /// Closes the session now: GoAway(0) is sent, every open stream fails with
    /// ``YamuxError`` `.sessionClosed`, and the connection is closed.
    public func close() async {
        if ended != nil { return }
        let handler = self.handler
        try? await self.eventLoop.submit {
            handler.value.closeSession(error: .sessionClosed, goAway: .normal)
        }.get()
        try? await self.channel.closeFuture.get()
    }

    /// Waits until the session has ended and returns why.
    public func waitForClose() async -> YamuxError {
        if let ended { return ended }
        let promise = self.eventLoop.makePromise(of: YamuxError.self)
        let handler = self.handler
        self.eventLoop.execute { handler.value.onClose { promise.succeed($0) } }
        return (try? await promise.futureResult.get()) ?? .sessionClosed
    }

    /// Calls `callback` on the session's event loop once the session has ended
    /// (at once if it already has), with the reason. Unlike
    /// ``waitForClose()`` it needs no task: a connection pool registers one per
    /// session to drop it the moment it fails.
    public func onClose(_ callback: @escaping @Sendable (YamuxError) -> Void) {
        let handler = self.handler
        self.eventLoop.execute { handler.value.onClose(callback) }
    }

    /// Calls `callback` on the session's event loop when the peer sends
    /// GoAway(0): it accepts no new streams, while open ones go on. Never
    /// called if the session ends without one (see ``onClose(_:)``).
    public func onRemoteGoAway(_ callback: @escaping @Sendable () -> Void) {
        let handler = self.handler
        self.eventLoop.execute { handler.value.onRemoteGoAway(callback) }
    }

    /// Number of streams currently in the session's stream map.
    public var streamCount: Int {
        get async {
            let handler = self.handler
            return (try? await self.eventLoop.submit { handler.value.numberOfStreams }.get()) ?? 0
        }
    }

    /// Counters of what the session has done so far.
    public var statistics: YamuxSessionStatistics {
        get async {
            let handler = self.handler
            return (try? await self.eventLoop.submit { handler.value.statistics }.get()) ?? .init()
        }
    }

    /// The session's internal state, for debugging.
    var debugState: String {
        get async {
            let handler = self.handler
            return (try? await self.eventLoop.submit { handler.value.debugState }.get()) ?? "unavailable"
        }
    }

    /// Whether the session has ended.
    public var isClosed: Bool {
        get async {
            let handler = self.handler
            return (try? await self.eventLoop.submit { handler.value.isClosed }.get()) ?? true
        }
    }
}

/// The async sequence of a session's inbound streams (see ``YamuxSession/inboundStreams``).
public struct YamuxInboundStreams: AsyncSequence, Sendable {
    /// Each element is a stream the peer opened, accepted as it is taken.
    public typealias Element = YamuxStream
    let session: YamuxSession

    /// Accepts the session's inbound streams one by one.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let session: YamuxSession
        /// The next inbound stream, accepted (its ACK is sent now); `nil` once the session has
        /// ended or, after a GoAway, once the accept backlog is drained.
        public mutating func next() async throws -> YamuxStream? {
            try await self.session.accept()
        }
    }

    /// An iterator that accepts the session's inbound streams.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(session: self.session) }
}

/// One yamux stream: a child `Channel` of the session, wrapped for async use.
///
/// Use ``executeThenClose(_:)`` (once): read with the inbound sequence, write with the outbound
/// writer, `outbound.finish()` half-closes (FIN) while reading goes on. When the body returns
/// the stream is closed gracefully (FIN after queued data); when it throws or its task is
/// cancelled, the stream is reset (RST). A stream dropped without ever being used is reset too.
public struct YamuxStream: Sendable {
    /// The yamux stream id (odd: opened by the client, even: by the server).
    public let id: UInt32
    /// The stream's child channel, for adding handlers or reading options.
    public let channel: any Channel
    private let lifetime: Lifetime

    /// Resets the stream if the last copy of it goes away unused.
    private final class Lifetime: Sendable {
        let channel: any Channel
        let used = Atomic<Bool>(false)
        init(channel: any Channel) { self.channel = channel }
        deinit {
            if !self.used.load(ordering: .relaxed) {
                self.channel.triggerUserOutboundEvent(YamuxStreamResetEvent(), promise: nil)
            }
        }
    }

    /// Called on the event loop before the channel is activated: reading waits (autoRead off)
    /// until ``executeThenClose(_:)`` installs its handlers, so no byte reaches an empty pipeline.
    init(channel: YamuxStreamChannel) throws {
        self.id = channel.streamID
        self.channel = channel
        self.lifetime = Lifetime(channel: channel)
        try channel.syncOptions!.setOption(.autoRead, value: false)
    }

    /// Scoped access to the stream. Graceful close after `body` returns; RST if it throws or
    /// the task is cancelled.
    ///
    /// - Throws: what `body` throws; ``YamuxError`` if the stream failed (reset by the peer,
    ///   session closed); `ChannelError.alreadyClosed`-style errors if called twice.
    public func executeThenClose<Result: Sendable>(
        _ body: (
            _ inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
            _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
        ) async throws -> Result
    ) async throws -> Result {
        guard !self.lifetime.used.exchange(true, ordering: .relaxed) else {
            throw YamuxError.streamClosed
        }
        let channel = self.channel
        let asyncChannel = try await channel.eventLoop.submit {
            // A stream that failed before it was used reports why, not "closed channel".
            if let stream = channel as? YamuxStreamChannel, !stream.isActive, let error = stream.terminationError {
                throw error
            }
            let asyncChannel = try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                wrappingChannelSynchronously: channel,
                configuration: .init(isOutboundHalfClosureEnabled: true)
            )
            // Tell the new handler the current writability, then start reading.
            channel.pipeline.syncOperations.fireChannelWritabilityChanged()
            try channel.syncOptions!.setOption(.autoRead, value: true)
            return asyncChannel
        }.get()
        return try await withTaskCancellationHandler {
            try await asyncChannel.executeThenClose { inbound, outbound in
                do {
                    return try await body(inbound, outbound)
                } catch {
                    channel.triggerUserOutboundEvent(YamuxStreamResetEvent(), promise: nil)
                    throw error
                }
            }
        } onCancel: {
            channel.triggerUserOutboundEvent(YamuxStreamResetEvent(), promise: nil)
        }
    }

    /// For handler-based use instead of ``executeThenClose(_:)`` (once): runs
    /// `configure` on the stream's event loop to set up its pipeline, then
    /// starts reading. The pipeline owns the stream from then on: closing the
    /// channel closes the stream gracefully. Returns what `configure` returns.
    public func configurePipeline<Result: Sendable>(
        _ configure: @escaping @Sendable (any Channel) throws -> Result
    ) async throws -> Result {
        guard !self.lifetime.used.exchange(true, ordering: .relaxed) else {
            throw YamuxError.streamClosed
        }
        let channel = self.channel
        return try await channel.eventLoop.submit {
            do {
                let result = try configure(channel)
                try channel.syncOptions!.setOption(.autoRead, value: true)
                // A session that began quiescing before these handlers existed
                // told an empty pipeline; tell the handlers now.
                if let stream = channel as? YamuxStreamChannel, stream.session.quiescing {
                    channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
                }
                return result
            } catch {
                channel.triggerUserOutboundEvent(YamuxStreamResetEvent(), promise: nil)
                throw error
            }
        }.get()
    }

    /// Aborts the stream: RST to the peer; pending reads and writes fail.
    public func reset() {
        self.channel.triggerUserOutboundEvent(YamuxStreamResetEvent(), promise: nil)
    }
}
