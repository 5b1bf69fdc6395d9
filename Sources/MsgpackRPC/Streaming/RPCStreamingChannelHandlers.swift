import MessagePack
package import NIOCore

/// The inbound half of a streaming call's stream: splits the bytes into
/// values with an ``RPCStreamValueDecoder`` and passes each on. A value over
/// the limits or bytes that are not msgpack go to `errorCaught` further on,
/// and everything after is dropped; so does a stream that ends (its input
/// closed) inside a value.
final class RPCStreamFramer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var decoder: RPCStreamValueDecoder
    private var isFraming = false
    private var failed = false

    init(configuration: RPCStreamingConfiguration) {
        decoder = RPCStreamValueDecoder(limits: configuration.limits, maxValueSize: configuration.maxValueSize)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        decoder.append(unwrapInboundIn(data))
        // Re-entered from a value passed on below: the loop frames what was
        // just appended.
        guard !isFraming else { return }
        isFraming = true
        defer { isFraming = false }
        while !failed {
            do {
                guard let value = try decoder.next() else { return }
                context.fireChannelRead(wrapInboundOut(value))
            } catch {
                failed = true
                context.fireErrorCaught(error)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, !failed {
            do {
                try decoder.checkEnd()
            } catch {
                failed = true
                context.fireErrorCaught(error)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }
}

@available(*, unavailable)
extension RPCStreamFramer: Sendable {}

/// The server's side of one streaming call: reads the header, answers with
/// the ack (``RPCStreamingServerHandshake`` decides), and for a known method
/// hands the stream to its handler, in a task of its own, through a
/// `NIOAsyncChannel` whose reader holds back reads and whose writer waits for
/// writability. The task is cancelled when the stream closes or is reset.
final class RPCStreamingServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let registry: RPCStreamingRegistry
    private let configuration: RPCStreamingConfiguration
    private let abort: @Sendable (any Channel) -> Void
    private let connectionContext: (any Sendable)?
    private var handshake: RPCStreamingServerHandshake
    private var task: Task<Void, Never>?

    init(
        registry: RPCStreamingRegistry,
        configuration: RPCStreamingConfiguration,
        connectionContext: (any Sendable)? = nil,
        abort: @escaping @Sendable (any Channel) -> Void
    ) {
        self.connectionContext = connectionContext
        self.registry = registry
        self.configuration = configuration
        self.abort = abort
        self.handshake = RPCStreamingServerHandshake(decoder: configuration.decoder)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let registry = self.registry
        switch handshake.received(unwrapInboundIn(data), isKnown: { registry.contains($0) }) {
        case .accept(let method, let ack):
            guard let encoded = encode(ack, context: context) else { return }
            context.writeAndFlush(NIOAny(encoded), promise: nil)
            start(method, context: context)
        case .reject(let ack):
            guard let encoded = encode(ack, context: context) else { return }
            context.writeAndFlush(NIOAny(encoded)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        case .close:
            context.close(promise: nil)
        case .deliver(let value):
            context.fireChannelRead(wrapInboundOut(value))
        case .none:
            break
        }
    }

    private func encode(_ ack: RPCStreamingAck, context: ChannelHandlerContext) -> ByteBuffer? {
        do {
            return try configuration.encoder.encode(ack, allocator: context.channel.allocator)
        } catch {
            context.close(promise: nil)
            return nil
        }
    }

    private func start(_ method: String, context: ChannelHandlerContext) {
        guard let handler = registry.lookup(method) else { return }
        let channel = context.channel
        let asyncChannel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            asyncChannel = try NIOAsyncChannel(
                wrappingChannelSynchronously: channel,
                configuration: .init(
                    backPressureStrategy: .init(
                        lowWatermark: max(1, configuration.maxBufferedInboundValues / 2),
                        highWatermark: configuration.maxBufferedInboundValues
                    ),
                    isOutboundHalfClosureEnabled: true
                )
            )
        } catch {
            context.close(promise: nil)
            return
        }
        // The new handlers learn the current writability.
        channel.pipeline.syncOperations.fireChannelWritabilityChanged()
        let callContext = RPCStreamingContext(
            method: method, remoteAddress: channel.remoteAddress, eventLoop: channel.eventLoop, connectionContext: connectionContext
        )
        let configuration = self.configuration
        let abort = self.abort
        let allocator = channel.allocator
        let serve: @Sendable () async -> Void = {
            _ = try? await asyncChannel.executeThenClose { inbound, outbound in
                do {
                    try await handler.run(inbound, outbound, callContext, configuration, allocator)
                } catch {
                    // Reset, not FIN: the caller must not take a failed
                    // handler's values for a complete answer.
                    abort(channel)
                    throw error
                }
            }
        }
        let task: Task<Void, Never>
        if configuration.runsHandlersOnEventLoop, #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *) {
            task = Task(executorPreference: EventLoopTaskExecutor(eventLoop: channel.eventLoop)) { await serve() }
        } else {
            task = Task { await serve() }
        }
        self.task = task
        channel.closeFuture.whenComplete { _ in task.cancel() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, case .close = handshake.inputClosed() {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard case .streaming = handshake.state else {
            // A header over the limits, or not msgpack: nothing to answer.
            context.close(promise: nil)
            return
        }
        // The handler's inbound values end with the error; the stream
        // cannot be resynchronised, so it is reset.
        context.fireErrorCaught(error)
        abort(context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        task?.cancel()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        task?.cancel()
        task = nil
    }
}

@available(*, unavailable)
extension RPCStreamingServerHandler: Sendable {}

/// The caller's side of a streaming call's opening: waits for the ack
/// (``RPCStreamingClientHandshake`` decides), completes `ack` with the
/// outcome, then passes every value on.
final class RPCStreamingClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var handshake: RPCStreamingClientHandshake
    private let ack: EventLoopPromise<Void>

    init(method: String, decoder: MessagePackDecoder, ack: EventLoopPromise<Void>) {
        self.handshake = RPCStreamingClientHandshake(method: method, decoder: decoder)
        self.ack = ack
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        handle(handshake.received(unwrapInboundIn(data)), context: context)
    }

    private func handle(_ action: RPCStreamingClientHandshake.Action, context: ChannelHandlerContext) {
        switch action {
        case .established:
            ack.succeed(())
        case .fail(let error):
            ack.fail(error)
            context.close(promise: nil)
        case .deliver(let value):
            context.fireChannelRead(wrapInboundOut(value))
        case .none:
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, case .awaitingAck = handshake.state {
            handle(handshake.ended(nil), context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .awaitingAck = handshake.state {
            let failure = error as? RPCError ?? RPCError(
                code: .transportFailure, message: "the streaming call's stream failed before the ack: \(error)", isStreamUsable: false, cause: error
            )
            handle(handshake.ended(failure), context: context)
            return
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handle(handshake.ended(nil), context: context)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if case .awaitingAck = handshake.state { ack.fail(RPCError(code: .connectionClosed, message: "the streaming call's stream closed before the ack", isStreamUsable: false)) }
    }
}

@available(*, unavailable)
extension RPCStreamingClientHandler: Sendable {}

extension ChannelPipeline.SynchronousOperations {
    /// Serves `registry`'s streaming methods on this channel's byte stream,
    /// which starts with the caller's header. `abort` resets the stream (on
    /// a yamux stream an RST; on a connection of its own, a close): it is
    /// called when a handler throws or the stream's values fail.
    /// `connectionContext` reaches each handler in its context.
    package func addMsgpackRPCStreamingServer(
        _ registry: RPCStreamingRegistry,
        configuration: RPCStreamingConfiguration,
        connectionContext: (any Sendable)? = nil,
        abort: @escaping @Sendable (any Channel) -> Void
    ) throws {
        try addHandler(RPCStreamFramer(configuration: configuration))
        try addHandler(
            RPCStreamingServerHandler(
                registry: registry, configuration: configuration, connectionContext: connectionContext, abort: abort
            )
        )
    }
}

/// The caller's side of a streaming call, on any byte stream that a channel
/// carries; the transport above says how to abort it.
package enum RPCStreamingClient {
    /// A stream whose header is written and whose ack is awaited.
    package struct Opened: Sendable {
        package let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        package let ack: EventLoopFuture<Void>
        package let configuration: RPCStreamingConfiguration
    }

    /// Writes the header for `method` on `channel` and adds the handlers of
    /// the caller's side. Call on the channel's event loop, after anything
    /// the transport writes first (Nomad's 0x05).
    package static func configure(
        _ channel: any Channel,
        method: String,
        configuration: RPCStreamingConfiguration
    ) throws -> Opened {
        channel.eventLoop.preconditionInEventLoop()
        try configuration.validate()
        let header: ByteBuffer
        do {
            header = try configuration.encoder.encode(RPCStreamingHeader(method: method), allocator: channel.allocator)
        } catch {
            throw RPCError(code: .encodingFailed, message: "the header of streaming call \(method) does not encode: \(error)", isStreamUsable: false, requestWasSent: false, cause: error)
        }
        let ack = channel.eventLoop.makePromise(of: Void.self)
        try channel.pipeline.syncOperations.addHandler(RPCStreamFramer(configuration: configuration))
        try channel.pipeline.syncOperations.addHandler(RPCStreamingClientHandler(method: method, decoder: configuration.decoder, ack: ack))
        let asyncChannel = try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
            wrappingChannelSynchronously: channel,
            configuration: .init(
                backPressureStrategy: .init(
                    lowWatermark: max(1, configuration.maxBufferedInboundValues / 2),
                    highWatermark: configuration.maxBufferedInboundValues
                ),
                isOutboundHalfClosureEnabled: true
            )
        )
        channel.pipeline.syncOperations.fireChannelWritabilityChanged()
        channel.writeAndFlush(header, promise: nil)
        return Opened(channel: asyncChannel, ack: ack.futureResult, configuration: configuration)
    }

    /// Waits for the ack, then lends `body` the call's values and writer.
    /// When `body` returns, this side closes (FIN after what was written);
    /// when it throws or the task is cancelled, `abort` resets the stream.
    ///
    /// - Throws: ``RPCError`` `.serverError` with the server's text when it
    ///   refused the call (an unknown method), `.protocolViolation` when its
    ///   answer was no ack, `.connectionClosed` when the stream ended first;
    ///   otherwise what `body` throws.
    package static func run<Sending: Encodable & Sendable, Receiving: Decodable & Sendable, Result>(
        _ opened: Opened,
        sending: Sending.Type,
        receiving: Receiving.Type,
        abort: @escaping @Sendable () -> Void,
        _ body: (RPCStreamingInbound<Receiving>, RPCStreamingWriter<Sending>) async throws -> Result
    ) async throws -> Result {
        let configuration = opened.configuration
        let allocator = opened.channel.channel.allocator
        let eventLoop = opened.channel.channel.eventLoop
        return try await withTaskCancellationHandler {
            do {
                try await opened.ack.get()
            } catch {
                abort()
                _ = try? await opened.channel.executeThenClose { _, _ in }
                throw error
            }
            try Task.checkCancellation()
            return try await opened.channel.executeThenClose { inbound, outbound in
                do {
                    return try await body(
                        RPCStreamingInbound(values: inbound, decoder: configuration.decoder),
                        RPCStreamingWriter(outbound: outbound, encoder: configuration.encoder, allocator: allocator, eventLoop: eventLoop)
                    )
                } catch {
                    abort()
                    throw error
                }
            }
        } onCancel: {
            abort()
        }
    }
}
