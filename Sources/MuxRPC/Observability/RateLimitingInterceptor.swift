public import MsgpackRPC
import Synchronization

/// Limits the rate of calls with a token bucket: `ratePerSecond` tokens a
/// second, at most `burst` saved up. Each call (each attempt, on the client)
/// takes one token; the bucket is shared by every call through this instance,
/// whatever its method or endpoint (scope it with
/// ``RPCScopedInterceptor/apply(_:to:)``, or use one instance per endpoint).
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
/// A refused call throws ``RateLimitedError``, whose
/// ``RateLimitedError/requestWasSent`` is false: on the client nothing was
/// written, so trying later or elsewhere is safe. On the server the caller
/// gets a net/rpc error reply with the error's text.
public final class RateLimitingInterceptor: ClientInterceptor, RPCServerInterceptor, Sendable {
    /// What a call does when no token is left.
    public enum WhenEmpty: Sendable, Hashable {
        /// Fail at once with ``RateLimitedError/Code/noToken``.
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

    public func intercept(
        _ request: RPCServerRequest,
        context: RPCServerContext,
        next: (RPCServerRequest, RPCServerContext) async throws -> RPCServerResponse
    ) async throws -> RPCServerResponse {
        _ = try await acquire(serviceMethod: context.serviceMethod, deadline: context.deadline, side: .server)
        return try await next(request, context)
    }

    /// Takes a token, waiting if allowed. Returns whether it waited.
    private func acquire(serviceMethod: String, deadline: RPCDeadline?, side: RateLimitedError.Side) async throws -> Bool {
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
            let code: RateLimitedError.Code
            if case .failFast = whenEmpty { code = .noToken } else { code = limitedByDeadline ? .deadlineTooSoon : .waitTooLong }
            throw RateLimitedError(code: code, serviceMethod: serviceMethod, side: side, wait: wait,
                                   ratePerSecond: ratePerSecond, burst: burst)
        case .reserved(let wait):
            do {
                try await sleep(wait)
            } catch {
                // Cancelled while waiting: hand the reserved token back.
                bucket.withLock { $0.giveBack() }
                throw RateLimitedError(code: .cancelled, serviceMethod: serviceMethod, side: side, wait: wait,
                                       ratePerSecond: ratePerSecond, burst: burst)
            }
            return true
        }
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

/// A call refused by a ``RateLimitingInterceptor``. It did not run: on the
/// client its request was never written.
public struct RateLimitedError: Error, Sendable, CustomStringConvertible {
    /// Why the call got no token.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable { case noToken, waitTooLong, deadlineTooSoon, cancelled }
        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The bucket was empty and the interceptor fails fast.
        public static let noToken = Code(.noToken)
        /// The next token would come later than the longest wait allowed.
        public static let waitTooLong = Code(.waitTooLong)
        /// The next token would come after the call's deadline.
        public static let deadlineTooSoon = Code(.deadlineTooSoon)
        /// The calling task was cancelled while it waited for a token.
        public static let cancelled = Code(.cancelled)

        public var description: String {
            switch wrapped {
            case .noToken: "no token"
            case .waitTooLong: "wait too long"
            case .deadlineTooSoon: "deadline too soon"
            case .cancelled: "cancelled"
            }
        }
    }

    /// Which side refused the call.
    public enum Side: Sendable, Hashable { case client, server }

    /// Why the call got no token.
    public var code: Code
    /// "Service.Method".
    public var serviceMethod: String
    /// Which side refused it.
    public var side: Side
    /// How long the call would have had to wait for its token (for
    /// ``Code/cancelled``, how long it was to wait).
    public var wait: Duration
    /// The limiter's rate, for the message.
    public var ratePerSecond: Double
    /// The limiter's burst, for the message.
    public var burst: Int

    /// Always false: a rate-limited call never reaches the wire (on the
    /// server, never reaches the handler), so retrying it is safe.
    public var requestWasSent: Bool { false }

    public var description: String {
        let why: String
        switch code {
        case .noToken: why = "no token left (fail fast)"
        case .waitTooLong: why = "the next token comes in \(wait), later than the wait allowed"
        case .deadlineTooSoon: why = "the next token comes in \(wait), after the call's deadline"
        default: why = "cancelled while waiting for a token"
        }
        let outcome = side == .client ? "the request was not sent" : "the call was not run"
        return "rate limited: \(serviceMethod): \(why) (limit \(ratePerSecond)/s, burst \(burst)); \(outcome)"
    }
}
