import MessagePack
import NIOCore

/// Serves one stream: reads a request header and its body, runs the method's
/// handler, writes the response, then reads the next request.
///
/// While a handler runs, messages that already arrived wait in a queue, and
/// the handler holds back `read()` so that a client sending faster than we
/// answer is slowed by TCP (or yamux) flow control instead of growing memory.
///
/// A reply that cannot be written yet (the channel is not writable: the
/// client does not read, or its yamux window is spent) pauses the stream the
/// same way: no further request is served and no more is read until the
/// channel is writable again. A client that pipelines requests and never
/// reads the replies so costs at most the channel's write buffer, one reply
/// and the requests that fit in its window, never more.
///
/// On NIO's `ChannelShouldQuiesceEvent` (graceful shutdown) the stream
/// finishes the request in progress and the complete requests already
/// received, then closes; an idle stream closes at once. When the client
/// closes its side (`ChannelEvent.inputClosed`: a yamux FIN, or EOF on a
/// connection that allows half-closure) the stream does the same, as Go's
/// `ServeCodec` does: it answers every complete request, then closes, so
/// the stream ends on both sides and frees everything it held. A request
/// cut short by the close is dropped.
///
/// A header that is not a header ends the stream, as Go's ServeCodec does; an
/// unknown method, arguments that do not decode, or a handler error become a
/// net/rpc error reply and the stream goes on.
final class RPCServerHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case awaitingHeader
        case awaitingBody(RPCRequestHeader)
        case running(seq: UInt64)
        case closed
    }

    private let server: RPCServer
    private var coders: RPCServerCoders
    private var state: State = .awaitingHeader
    private var queue = CircularBuffer<ByteBuffer>()
    private var readHeld = false
    /// Set by ChannelShouldQuiesceEvent, or by the client closing its side:
    /// close once idle.
    private var quiescing = false
    /// A reply waits for the channel to become writable: serve nothing more
    /// until it does.
    private var pausedForWritability = false
    /// Serving queued requests (guards against re-entry from a writability
    /// change fired while a reply is written).
    private var drainingQueue = false
    private var task: Task<Void, Never>?
    private var deadlineTimer: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    /// An EventLoopTaskExecutor when handlers run on the loop (stored untyped
    /// because TaskExecutor needs a newer OS on Apple platforms).
    private var executor: AnyObject?
    /// The peer's address, read once: channels cache it behind a lock.
    private var remoteAddress: SocketAddress??
    /// The last response written, handed to the next request's method to
    /// write into: by then the stream has sent it, so its memory is reused
    /// (two allocations a call saved).
    private var spareResponse: ByteBuffer?
    /// Counts dispatches, to tell whether a method finished inline.
    private var dispatches = 0
    private static let maxSpareResponseCapacity = 4096

    /// What the transport attached to this stream's connection, passed to every handler.
    private let connectionContext: (any Sendable)?

    init(server: RPCServer, connectionContext: (any Sendable)? = nil) {
        self.server = server
        self.connectionContext = connectionContext
        self.coders = RPCServerCoders(
            encoder: server.configuration.encoder,
            decoder: server.configuration.decoder,
            allocator: ByteBufferAllocator(),
            interceptors: server.configuration.interceptors
        )
    }

    private var isRunning: Bool {
        if case .running = state { return true }
        return false
    }

    /// Whether the next request may be served now.
    private var canServe: Bool { !isRunning && !pausedForWritability }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        coders.allocator = context.channel.allocator
        if server.configuration.runsHandlersOnEventLoop, #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *) {
            executor = EventLoopTaskExecutor(eventLoop: context.eventLoop)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        shutDown()
        self.context = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        if !canServe || !queue.isEmpty {
            queue.append(message)
        } else {
            process(message)
            if quiescing { closeIfQuiescedAndIdle() }
        }
    }

    func read(context: ChannelHandlerContext) {
        if canServe {
            context.read()
        } else {
            readHeld = true
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            closeIfQuiescedAndIdle()
        } else if case ChannelEvent.inputClosed = event {
            // The client sent all it will send. A request it cut short will
            // never complete: close now. Otherwise answer what is complete,
            // then close.
            if case .awaitingBody = state {
                shutDown()
                context.close(promise: nil)
                return
            }
            quiescing = true
            closeIfQuiescedAndIdle()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if pausedForWritability, context.channel.isWritable {
            pausedForWritability = false
            serveQueue(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    /// While quiescing, a stream with nothing running, queued or half-read
    /// is done.
    private func closeIfQuiescedAndIdle() {
        guard quiescing, case .awaitingHeader = state, queue.isEmpty, !pausedForWritability, let context else { return }
        shutDown()
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        shutDown()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A framing error (a value over the limits, bytes that are not
        // msgpack): the stream cannot be resynchronised.
        shutDown()
        context.close(promise: nil)
    }

    private func process(_ message: ByteBuffer) {
        switch state {
        case .awaitingHeader:
            do {
                state = .awaitingBody(try RPCRequestHeader(from: message, limits: server.configuration.limits))
            } catch {
                // Go: "rpc: server cannot decode request", then the codec closes.
                shutDown()
                context?.close(promise: nil)
            }
        case .awaitingBody(let header):
            state = .awaitingHeader
            dispatch(header, body: message)
        case .running, .closed:
            break
        }
    }

    private func dispatch(_ header: RPCRequestHeader, body: ByteBuffer) {
        guard let context else { return }
        let requestContext = RPCServerContext(
            serviceMethod: header.serviceMethod,
            seq: header.seq,
            deadline: header.deadline,
            traceContext: header.traceContext,
            remoteAddress: peerAddress(context),
            eventLoop: context.eventLoop,
            connectionContext: connectionContext
        )
        let method: RPCMethod
        switch server.registry.lookup(header.serviceMethod) {
        case .success(let found):
            method = found
        case .failure(let error):
            write(coders.errorResponse(error.message, context: requestContext), context: context)
            return
        }
        if let deadline = header.deadline, deadline.hasPassed {
            let message = "deadline exceeded before \(header.serviceMethod) ran"
            write(coders.errorResponse(message, context: requestContext), context: context)
            return
        }

        if let inline = method.invokeInline, coders.interceptors.isEmpty {
            // Registered inline: runs here and now. The response is written
            // without draining the queue: whoever called us (a read, or the
            // drain loop in `finish`) goes on with the next request, so
            // pipelined requests never nest calls on the stack.
            write(inline(body, requestContext, takeCoders()), context: context)
            return
        }

        state = .running(seq: header.seq)
        dispatches &+= 1
        let dispatch = dispatches
        let eventLoop = context.eventLoop
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        let coders = takeCoders()
        let seq = header.seq
        let task: Task<Void, Never>
        // Not `Task.immediate`, which would run task code on this event loop
        // thread, one the concurrency runtime does not own; methods that need
        // no task are registered inline instead (above). A task that prefers
        // the loop's executor costs one trip through the loop's queue.
        if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *), let executor = executor as? EventLoopTaskExecutor {
            task = Task(executorPreference: executor) {
                let response = await method.invoke(body, requestContext, coders)
                if eventLoop.inEventLoop {
                    loopBound.value.finish(response, seq: seq)
                } else {
                    eventLoop.execute { loopBound.value.finish(response, seq: seq) }
                }
            }
        } else {
            task = Task {
                let response = await method.invoke(body, requestContext, coders)
                eventLoop.execute { loopBound.value.finish(response, seq: seq) }
            }
        }
        guard dispatches == dispatch, case .running = state else {
            // Finished already, and maybe the next queued request dispatched
            // meanwhile.
            return
        }
        self.task = task
        if let deadline = header.deadline {
            // Honour the caller's deadline: it no longer waits after it, so
            // the handler's task is cancelled and the reply says why.
            deadlineTimer = eventLoop.scheduleTask(deadline: deadline.nioDeadline) { task.cancel() }
        }
    }

    private func peerAddress(_ context: ChannelHandlerContext) -> SocketAddress? {
        if let remoteAddress { return remoteAddress }
        let address = context.channel.remoteAddress
        remoteAddress = .some(address)
        return address
    }

    /// A handler finished: send its response and serve what is queued.
    private func finish(_ response: ByteBuffer, seq: UInt64) {
        guard case .running(let running) = state, running == seq, let context else { return }
        state = .awaitingHeader
        task = nil
        deadlineTimer?.cancel()
        deadlineTimer = nil
        write(response, context: context)
        serveQueue(context: context)
    }

    /// Serves the queued requests while it may, then reads on if a read was
    /// held back.
    private func serveQueue(context: ChannelHandlerContext) {
        guard !drainingQueue else { return }
        drainingQueue = true
        while canServe, let message = queue.popFirst() {
            process(message)
        }
        drainingQueue = false
        closeIfQuiescedAndIdle()
        if canServe, readHeld {
            readHeld = false
            context.read()
        }
    }

    /// The coders for the next method, handed the last response's buffer
    /// to write into (no longer held here).
    private func takeCoders() -> RPCServerCoders {
        var coders = self.coders
        coders.spareBuffer = spareResponse
        spareResponse = nil
        return coders
    }

    /// Sends a response and keeps its buffer for the next one. If the
    /// channel cannot take more, serving pauses until it can.
    private func write(_ response: ByteBuffer, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(response), promise: nil)
        if response.capacity <= Self.maxSpareResponseCapacity {
            spareResponse = response
        }
        if !context.channel.isWritable {
            pausedForWritability = true
        }
    }

    private func shutDown() {
        state = .closed
        task?.cancel()
        task = nil
        deadlineTimer?.cancel()
        deadlineTimer = nil
        queue.removeAll()
    }
}
