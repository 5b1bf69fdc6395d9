import MessagePack
import NIOCore

/// A reply as it came off the wire: its header and its body, undecoded.
struct RPCRawResponse: Sendable {
    var header: RPCResponseHeader
    var body: ByteBuffer
}

/// The client's half of one stream, on the channel's event loop: sends the one
/// request in flight and pairs the next two inbound messages (header, body)
/// with it.
///
/// Once anything goes wrong that leaves the stream out of step (a reply with
/// the wrong Seq, an unexpected message, a timeout or cancellation while the
/// reply may still come, a transport error) the handler turns ``State/unusable``
/// for good: every later request fails at once and late replies are dropped.
/// Closing the channel is the owner's job (``RPCClient/close()``), because
/// only the owner knows whether that means a TCP close or a yamux reset.
final class RPCClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var seq: UInt64
        var serviceMethod: String
        /// The caller, suspended until the reply. A continuation rather than an
        /// `EventLoopPromise`: awaiting a promise's future costs two allocations
        /// per call (the promise and its callback), resuming this costs none.
        /// Every path below resumes it exactly once: each one leaves the state
        /// that holds it.
        var continuation: UnsafeContinuation<RPCRawResponse, any Error>
        var deadline: RPCDeadline?
    }

    private enum State {
        case idle
        case awaitingHeader(Pending)
        case awaitingBody(Pending, RPCResponseHeader)
        case unusable(RPCError)
    }

    private var state: State = .idle
    /// The Seq of a call cancelled before it started.
    private var cancelledBeforeStart: UInt64?
    private var context: ChannelHandlerContext?
    private let limits: MessagePackLimits
    /// The stream's one deadline timer, and when it fires. A reply does not
    /// cancel it: the next call, whose deadline is usually later, keeps it,
    /// and when it fires it either fails the call in flight (its deadline
    /// passed) or re-arms for that call's deadline. So calls with a deadline
    /// (``MuxRPCClient`` gives every call one) schedule a timer about once
    /// per timeout rather than once per call (a scheduled task costs several
    /// allocations and a heap insertion and removal on the event loop).
    /// Deadlines stay in wall-clock terms until a timer is armed: a call
    /// that the running timer covers reads no clock here.
    private var timer: Scheduled<Void>?
    private var timerDeadline: RPCDeadline?

    init(limits: MessagePackLimits) {
        self.limits = limits
    }

    /// The channel, once the handler is in a pipeline.
    var channel: (any Channel)? { context?.channel }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(RPCError(code: .connectionClosed, message: "the RPC client handler was removed from the pipeline", isStreamUsable: false))
        self.context = nil
    }

    // MARK: Calls (from RPCClient, on the event loop)

    func start(request: ByteBuffer, seq: UInt64, serviceMethod: String, deadline: RPCDeadline?, continuation: UnsafeContinuation<RPCRawResponse, any Error>) {
        switch state {
        case .unusable(let error):
            continuation.resume(throwing: RPCError(code: .streamUnusable, message: "stream unusable after an earlier failure: \(error.message)", isStreamUsable: false, requestWasSent: false, cause: error))
            return
        case .awaitingHeader, .awaitingBody:
            // RPCClient admits one call at a time, so this is a bug above us.
            continuation.resume(throwing: RPCError(code: .callInProgress, message: "another call is in flight on this stream", isStreamUsable: true, requestWasSent: false))
            return
        case .idle:
            break
        }
        if cancelledBeforeStart == seq {
            cancelledBeforeStart = nil
            continuation.resume(throwing: RPCError(code: .cancelled, message: "the task was cancelled before \(serviceMethod) was sent", isStreamUsable: true, requestWasSent: false))
            return
        }
        guard let context, context.channel.isActive else {
            let error = RPCError(code: .connectionClosed, message: "the stream is closed", isStreamUsable: false, requestWasSent: false)
            state = .unusable(error)
            continuation.resume(throwing: error)
            return
        }
        let pending = Pending(seq: seq, serviceMethod: serviceMethod, continuation: continuation, deadline: deadline)
        if let deadline, timerDeadline.map({ $0 > deadline }) ?? true {
            armTimer(at: deadline, context: context)
        }
        state = .awaitingHeader(pending)
        // No write promise (it would cost two allocations per call): a write
        // fails only on a channel that is closing, and the close reaches this
        // handler as channelInactive (with errorCaught first for an I/O
        // error), which fails the call.
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
    }

    func cancel(seq: UInt64) {
        if case .idle = state {
            // The cancellation overtook the call itself (the task was cancelled
            // before `start` ran): `start` refuses it.
            cancelledBeforeStart = seq
            return
        }
        fail(seq: seq, RPCError(code: .cancelled, message: "the call was cancelled; the reply may still arrive, so the stream cannot be reused", isStreamUsable: false))
    }

    private func armTimer(at deadline: RPCDeadline, context: ChannelHandlerContext) {
        timer?.cancel()
        timerDeadline = deadline
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline.nioDeadline) {
            loopBound.value.timerFired()
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }

    /// The timer fired: fail the call in flight if its deadline has passed,
    /// or wait on for it.
    private func timerFired() {
        timer = nil
        timerDeadline = nil
        let pending: Pending
        switch state {
        case .awaitingHeader(let inFlight), .awaitingBody(let inFlight, _):
            pending = inFlight
        case .idle, .unusable:
            return
        }
        guard let deadline = pending.deadline, let context else { return }
        if deadline.hasPassed {
            fail(seq: pending.seq, RPCError(code: .deadlineExceeded, message: "no reply before the deadline; the stream cannot be reused", isStreamUsable: false))
        } else {
            armTimer(at: deadline, context: context)
        }
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        switch state {
        case .awaitingHeader(let pending):
            let header: RPCResponseHeader
            do {
                header = try RPCResponseHeader(from: message, limits: limits)
            } catch {
                fail(RPCError(code: .protocolViolation, message: "the response header is not a net/rpc header", isStreamUsable: false, cause: error))
                return
            }
            guard header.seq == pending.seq else {
                fail(RPCError(code: .protocolViolation, message: "response Seq \(header.seq) does not match request Seq \(pending.seq) (\(pending.serviceMethod))", isStreamUsable: false))
                return
            }
            state = .awaitingBody(pending, header)
        case .awaitingBody(let pending, let header):
            state = .idle
            pending.continuation.resume(returning: RPCRawResponse(header: header, body: message))
        case .idle:
            fail(RPCError(code: .protocolViolation, message: "the server sent a message while no call was in flight", isStreamUsable: false))
        case .unusable:
            // A late reply to a cancelled or timed-out call: drop it.
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(RPCError(code: .connectionClosed, message: "the stream closed before the reply arrived", isStreamUsable: false))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? RPCError {
            fail(error.streamUnusable())
        } else {
            fail(RPCError(code: .transportFailure, message: "the stream failed", isStreamUsable: false, cause: error))
        }
        context.fireErrorCaught(error)
    }

    // MARK: Failure

    /// Fails the call with `seq` if it is still in flight.
    private func fail(seq: UInt64, _ error: RPCError) {
        switch state {
        case .awaitingHeader(let pending), .awaitingBody(let pending, _):
            if pending.seq == seq { fail(error) }
        case .idle, .unusable:
            break
        }
    }

    /// Makes the stream unusable and fails the call in flight, if any.
    private func fail(_ error: RPCError) {
        let previous = state
        switch previous {
        case .unusable:
            return
        case .idle:
            state = .unusable(error)
            cancelTimer()
        case .awaitingHeader(let pending), .awaitingBody(let pending, _):
            state = .unusable(error)
            cancelTimer()
            pending.continuation.resume(throwing: error)
        }
    }
}
