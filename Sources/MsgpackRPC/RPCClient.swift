public import MessagePack
public import NIOCore
import NIOConcurrencyHelpers

/// Calls net/rpc methods over one byte stream (a TCP connection, a yamux
/// stream, anything a NIO `Channel` carries), one call at a time, as Go's
/// `msgpackrpc.CallWithCodec` does on a Consul or Nomad stream.
///
///     let client = try channel.pipeline.syncOperations.addMsgpackRPCClient()
///     let reply = try await client.call("Echo.Echo", EchoArgs(msg: bytes), returning: EchoReply.self)
///
/// Every failure is an ``RPCError``. A server error (``RPCError/Code/serverError``)
/// leaves the stream usable. Anything that leaves the stream out of step
/// (a wrong Seq, a timeout, task cancellation, a transport error) makes it
/// unusable: ``isUsable`` turns false, later calls fail with
/// ``RPCError/Code/streamUnusable``, and the owner must close or reset the
/// stream (``close()``) rather than return it to a pool.
///
/// Arguments are encoded on the calling task, replies decoded there too; only
/// the write and the pairing of replies run on the event loop. To avoid the
/// hop to and from the loop, call from a task that prefers the channel's
/// ``EventLoopTaskExecutor``.
public final class RPCClient: Sendable {
    /// The stream the client talks over.
    public let channel: any Channel
    private let handler: NIOLoopBound<RPCClientHandler>
    private let state: NIOLockedValueBox<CallerState>
    private let encoder: MessagePackEncoder
    private let decoder: MessagePackDecoder

    /// The caller-side view of the stream, guarded by a lock: it lets `call`
    /// refuse a second concurrent call or a dead stream before encoding
    /// anything, and hands out Seq numbers.
    private struct CallerState {
        var nextSeq: UInt64 = 1
        var inFlight = false
        var failure: RPCError?
        /// The last request's buffer, reused for the next one: by then the
        /// transport has sent it and let go of it, so `clear()` keeps its
        /// memory instead of allocating (two allocations a call saved).
        var spareBuffer: ByteBuffer?
    }

    /// Requests whose buffer grew beyond this are not kept for reuse.
    private static let maxSpareBufferCapacity = 4096

    /// Settings for the client side of a stream.
    public struct Configuration: Sendable {
        /// Bounds on every value the server sends (replies and their headers).
        public var limits: MessagePackLimits
        /// How arguments are written. Default: Go-compatible.
        public var encoder: MessagePackEncoder
        /// How replies are read.
        public var decoder: MessagePackDecoder

        /// Settings with every value given. Without a `decoder`, replies are
        /// read by a `MessagePackDecoder` that enforces `limits`.
        public init(limits: MessagePackLimits = .default, encoder: MessagePackEncoder = MessagePackEncoder(), decoder: MessagePackDecoder? = nil) {
            self.limits = limits
            self.encoder = encoder
            self.decoder = decoder ?? MessagePackDecoder(limits: limits)
        }
    }

    /// Use ``NIOCore/ChannelPipeline/SynchronousOperations/addMsgpackRPCClient(configuration:)``.
    init(channel: any Channel, handler: RPCClientHandler, configuration: Configuration) {
        self.channel = channel
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        self.state = NIOLockedValueBox(CallerState())
        self.encoder = configuration.encoder
        self.decoder = configuration.decoder
    }

    /// False once a failure has left the stream out of step; close it then.
    public var isUsable: Bool {
        state.withLockedValue { $0.failure == nil }
    }

    /// Closes the stream (for TCP a close; for a yamux stream whatever its
    /// channel's close does).
    public func close() async throws {
        try await channel.close()
    }

    /// Calls `serviceMethod` ("Service.Method") with `arguments` and decodes the
    /// reply as `Reply`.
    ///
    /// - Throws: ``RPCError``. Check ``RPCError/isStreamUsable`` to know whether
    ///   the stream can carry the next call.
    public func call<Arguments: Encodable, Reply: Decodable>(
        _ serviceMethod: String,
        _ arguments: Arguments,
        returning: Reply.Type = Reply.self,
        options: RPCCallOptions = .defaults
    ) async throws -> Reply {
        let response = try await callRaw(serviceMethod, options: options) { buffer in
            try self.encoder.encode(arguments, into: &buffer)
        }
        do {
            return try decoder.decode(Reply.self, fromScanned: response.body)
        } catch {
            throw RPCError(code: .decodingFailed, message: "the reply to \(serviceMethod) does not decode as \(Reply.self)", isStreamUsable: true, cause: error)
        }
    }

    /// Sends a request whose body `writeBody` appends to the buffer after the
    /// header, and returns the reply's header and undecoded body. A non-empty
    /// `Error` throws ``RPCError/Code/serverError``.
    func callRaw(
        _ serviceMethod: String,
        options: RPCCallOptions,
        writeBody: (inout ByteBuffer) throws -> Void
    ) async throws -> RPCRawResponse {
        if Task.isCancelled {
            throw RPCError(code: .cancelled, message: "the task was cancelled before \(serviceMethod) was sent", isStreamUsable: true, requestWasSent: false)
        }
        var (seq, request) = try begin()
        var callError: RPCError?
        defer { end(callError, spareBuffer: request) }
        do {
            let deadline = options.effectiveDeadline
            if let deadline, deadline.hasPassed {
                throw RPCError(code: .deadlineExceeded, message: "the deadline passed before \(serviceMethod) was sent", isStreamUsable: true, requestWasSent: false)
            }
            if request == nil {
                request = channel.allocator.buffer(capacity: 64 + serviceMethod.utf8.count)
            }
            // Reuses the memory when nothing else holds the buffer any more.
            request!.clear()
            let header = RPCRequestHeader(
                serviceMethod: serviceMethod,
                seq: seq,
                deadline: options.propagatesDeadline ? deadline : nil,
                traceContext: options.traceContext
            )
            header.write(to: &request!)
            do {
                try writeBody(&request!)
            } catch {
                throw RPCError(code: .encodingFailed, message: "the arguments of \(serviceMethod) could not be encoded; nothing was sent", isStreamUsable: true, requestWasSent: false, cause: error)
            }
            let response = try await send(request!, seq: seq, serviceMethod: serviceMethod, deadline: deadline)
            if !response.header.error.isEmpty {
                throw RPCError(code: .serverError, message: response.header.error, isStreamUsable: true)
            }
            return response
        } catch let error as RPCError {
            callError = error
            throw error
        }
    }

    private func send(_ request: ByteBuffer, seq: UInt64, serviceMethod: String, deadline: RPCDeadline?) async throws -> RPCRawResponse {
        let eventLoop = channel.eventLoop
        let handler = self.handler
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                if eventLoop.inEventLoop {
                    handler.value.start(request: request, seq: seq, serviceMethod: serviceMethod, deadline: deadline, continuation: continuation)
                } else {
                    eventLoop.execute {
                        handler.value.start(request: request, seq: seq, serviceMethod: serviceMethod, deadline: deadline, continuation: continuation)
                    }
                }
            }
        } onCancel: {
            // Runs after start on the same loop (execute is FIFO, and a caller
            // on the loop started the call before suspending), so the call it
            // cancels is this one, identified by its Seq.
            eventLoop.execute { handler.value.cancel(seq: seq) }
        }
    }

    /// Admits one call: refuses a dead stream or a second call in flight.
    private func begin() throws(RPCError) -> (seq: UInt64, buffer: ByteBuffer?) {
        let result: Result<(seq: UInt64, buffer: ByteBuffer?), RPCError> = state.withLockedValue { state in
            if let failure = state.failure {
                return .failure(RPCError(code: .streamUnusable, message: "stream unusable after an earlier failure: \(failure.message)", isStreamUsable: false, requestWasSent: false, cause: failure))
            }
            if state.inFlight {
                return .failure(RPCError(code: .callInProgress, message: "another call is in flight on this stream; net/rpc streams carry one call at a time", isStreamUsable: true, requestWasSent: false))
            }
            state.inFlight = true
            defer { state.nextSeq &+= 1 }
            let buffer = state.spareBuffer
            state.spareBuffer = nil
            return .success((state.nextSeq, buffer))
        }
        return try result.get()
    }

    private func end(_ error: RPCError?, spareBuffer: ByteBuffer?) {
        state.withLockedValue { state in
            state.inFlight = false
            if let spareBuffer, spareBuffer.capacity <= Self.maxSpareBufferCapacity {
                state.spareBuffer = spareBuffer
            }
            if let error, !error.isStreamUsable, state.failure == nil {
                state.failure = error
            }
        }
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// Adds the handlers that make this channel's byte stream an RPC client
    /// stream (the framing decoder and the client handler) and returns the
    /// client that calls over it. Call on the channel's event loop, e.g. in a
    /// bootstrap's channel initializer.
    public func addMsgpackRPCClient(configuration: RPCClient.Configuration = .init()) throws -> RPCClient {
        let handler = RPCClientHandler(limits: configuration.limits)
        try addHandler(RPCMessageFramer(limits: configuration.limits))
        try addHandler(handler)
        // handlerAdded ran synchronously, so the handler knows its channel.
        guard let channel = handler.channel else { throw ChannelError.ioOnClosedChannel }
        return RPCClient(channel: channel, handler: handler, configuration: configuration)
    }
}
