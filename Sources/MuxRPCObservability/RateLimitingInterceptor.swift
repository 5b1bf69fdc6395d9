public import MsgpackRPC
import Synchronization
public import MuxRPCClientStack
import MuxRPCPool
import MuxRPCTransport

/// Limits the rate of calls with a token bucket: `ratePerSecond` tokens a
/// second, at most `burst` saved up. Each call (each attempt, on the client)
/// takes one token; the bucket is shared by every call through this instance,
/// whatever its method or endpoint (scope it with
/// `RPCScopedInterceptor.apply(_:to:)`, or use one instance per endpoint).
///
/// When the bucket is empty the call either fails at once
/// (``WhenEmpty/failFast``) or waits for its token
/// (``WhenEmpty/wait(upTo:)``). A waiting call never waits past the limit nor
/// past its own deadline (the request's effective deadline on the client, the
/// caller's deadline on the server): since tokens come at a known rate, the
/// wait is known when the call arrives, and a call whose token would come too
/// late fails at once rather than after a useless wait. Waiters are served in
/// arrival order: each reserves the next token as it comes.
///
/// A refused call throws a `MuxRPCError` with code
/// `MuxRPCError/Code/rateLimited` (`MuxRPCError/Code/cancelled` when its
/// task was cancelled while it waited), whose
/// `MuxRPCError/requestWasSent` is false: on the client nothing was
/// written, so `MuxRPCClient` tries it again within its retry budget. On
/// the server the caller gets a net/rpc error reply with the error's text.
public final class RateLimitingInterceptor: ClientInterceptor, RPCServerInterceptor, Sendable {
    /// What a call does when no token is left.
    public enum WhenEmpty: Sendable, Hashable {
        /// Fail at once with `MuxRPCError/Code/rateLimited`.
        case failFast
        /// Wait for a token for at most this long (and never past the call's
        /// deadline); fail at once when it would come later.
        case wait(upTo: Duration)
    }

    /// Tokens added per second.
    public let ratePerSecond: Double
    /// Tokens the bucket holds at most (and holds at first): the burst a
    /// quiet client may send at once.
    public let burst: Int
    /// What a call does when no token is left.
    public let whenEmpty: WhenEmpty

    private let bucket: Mutex<TokenBucket>
    private let now: @Sendable () -> Duration
    private let sleep: @Sendable (Duration) async throws -> Void

    /// - Parameters:
    ///   - ratePerSecond: tokens a second; must be positive.
    ///   - burst: the bucket's size; at least 1.
    ///   - whenEmpty: default: wait up to one second.
    ///   - clock: the clock tokens accrue and waiters sleep on. Tests pass a
    ///     manual one.
    public init<C: Clock>(
        ratePerSecond: Double,
        burst: Int,
        whenEmpty: WhenEmpty = .wait(upTo: .seconds(1)),
        clock: C = ContinuousClock()
    ) where C.Duration == Duration {
        precondition(ratePerSecond > 0 && ratePerSecond.isFinite, "RateLimitingInterceptor: ratePerSecond must be positive, not \(ratePerSecond)")
        precondition(burst >= 1, "RateLimitingInterceptor: burst must be at least 1, not \(burst)")
        self.ratePerSecond = ratePerSecond
        self.burst = burst
        self.whenEmpty = whenEmpty
        let start = clock.now
        self.now = { start.duration(to: clock.now) }
        self.sleep = { try await clock.sleep(for: $0) }
        self.bucket = Mutex(TokenBucket(rate: ratePerSecond, capacity: Double(burst), tokens: Double(burst), updated: .zero))
    }

    /// Tokens in the bucket now: negative while calls wait for reserved ones.
    public var availableTokens: Double {
        let now = self.now()
        return bucket.withLock { bucket in
            bucket.refill(at: now)
            return bucket.tokens
        }
    }

    /// Runs this interceptor around one attempt of a client call.
    public func intercept(
        _ request: ClientRequest,
        context: ClientContext,
        next: (ClientRequest, ClientContext) async throws -> ClientResponse
    ) async throws -> ClientResponse {
        // Read once: with a relative timeout every read is a new "now".
        let deadline = request.options.effectiveDeadline
        let waited = try await acquire(serviceMethod: context.serviceMethod, deadline: deadline, side: .client)
        var request = request
        if waited, request.options.timeout != nil {
            // The wait spent part of the timeout: pin the deadline so that the
            // call does not get the whole timeout again on top.
            request.options.deadline = deadline
            request.options.timeout = nil
        }
        return try await next(request, context)
    }

    /// Runs this interceptor around one call the server serves.
    public func intercept(
        _ request: RPCServerRequest,
        context: RPCServerContext,
        next: (RPCServerRequest, RPCServerContext) async throws -> RPCServerResponse
    ) async throws -> RPCServerResponse {
        _ = try await acquire(serviceMethod: context.serviceMethod, deadline: context.deadline, side: .server)
        return try await next(request, context)
    }

    /// Takes a token, waiting if allowed. Returns whether it waited.
    private func acquire(serviceMethod: String, deadline: RPCDeadline?, side: Side) async throws -> Bool {
        var limit: Duration
        switch whenEmpty {
        case .failFast: limit = .zero
        case .wait(let upTo): limit = upTo
        }
        var limitedByDeadline = false
        if let deadline {
            let remaining = deadline.timeRemaining
            if remaining < limit {
                limit = max(.zero, remaining)
                limitedByDeadline = true
            }
        }
        let now = self.now()
        let decision = bucket.withLock { $0.take(at: now, waitingAtMost: limit) }
        switch decision {
        case .granted:
            return false
        case .refused(let wait):
            let why: String
            if case .failFast = whenEmpty {
                why = "no token left (fail fast)"
            } else if limitedByDeadline {
                why = "the next token comes in \(wait), after the call's deadline"
            } else {
                why = "the next token comes in \(wait), later than the wait allowed"
            }
            throw refusal(.rateLimited, serviceMethod: serviceMethod, why: why, side: side)
        case .reserved(let wait):
            do {
                try await sleep(wait)
            } catch {
                // Cancelled while waiting: hand the reserved token back.
                bucket.withLock { $0.giveBack() }
                throw refusal(.cancelled, serviceMethod: serviceMethod, why: "cancelled while waiting for a token", side: side)
            }
            return true
        }
    }

    /// Which side refused a call, for the error's text.
    private enum Side { case client, server }

    /// The error for a call that got no token: what it says names the
    /// method, why, the limit, and that the call did not go ahead.
    private func refusal(_ code: MuxRPCError.Code, serviceMethod: String, why: String, side: Side) -> MuxRPCError {
        let outcome = side == .client ? "the request was not sent" : "the call was not run"
        return MuxRPCError(
            code: code,
            message: "rate limited: \(serviceMethod): \(why) (limit \(ratePerSecond)/s, burst \(burst)); \(outcome)"
        )
    }
}

/// The bucket's arithmetic, on durations since the interceptor was made.
struct TokenBucket: Sendable {
    enum Decision: Equatable {
        /// A token was there.
        case granted
        /// A token is reserved; it comes after this wait.
        case reserved(after: Duration)
        /// The next token would come after this wait, beyond the limit.
        case refused(wait: Duration)
    }

    let rate: Double
    let capacity: Double
    /// Below zero while waiters hold reservations on tokens not yet come.
    var tokens: Double
    var updated: Duration

    mutating func refill(at now: Duration) {
        guard now > updated else { return }
        tokens = min(capacity, tokens + (now - updated).seconds * rate)
        updated = now
    }

    mutating func take(at now: Duration, waitingAtMost limit: Duration) -> Decision {
        refill(at: now)
        if tokens >= 1 {
            tokens -= 1
            return .granted
        }
        let wait = Duration.nanoseconds(Int64(((1 - tokens) / rate * 1e9).rounded(.up)))
        guard wait <= limit else { return .refused(wait: wait) }
        tokens -= 1
        return .reserved(after: wait)
    }

    mutating func giveBack() {
        tokens = min(capacity, tokens + 1)
    }
}
