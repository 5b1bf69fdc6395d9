public import NIOCore

/// Every failure of the MuxRPC layer itself: a configuration that cannot
/// work, a connection that could not be made, a call the client, the pool or
/// a rate limiter refused.
///
/// A call through `MuxRPCClient` or `ConnectionPool` throws one of two
/// types: a `MuxRPCError` when MuxRPC could not get the call onto a stream,
/// or an `RPCError` when the call on its stream failed (the server's error
/// reply among them). Both say whether the request was sent
/// (``requestWasSent``) and whether trying again is safe (``isRetrySafe``).
/// Anything else comes from your own code: an interceptor's error,
/// unchanged. The MuxRPC module's article "Handling errors" lists every
/// code, with whether the client retries it and whether it counts against
/// the endpoint.
///
///     do {
///         let reply = try await client.call("Echo.Echo", args, returning: EchoReply.self)
///     } catch let error as MuxRPCError where error.code == .connectionRefused {
///         print(error)   // "connection refused: 10.0.0.5:8300"
///     }
public struct MuxRPCError: Error, Sendable, CustomStringConvertible {
    /// What went wrong. A struct rather than an enum so that codes can be
    /// added without breaking exhaustive switches.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case invalidConfiguration, shutDown
            case noEndpoints, allEndpointsUnavailable
            case overloaded, tooManyWaiters, deadlineExceeded, cancelled, rateLimited
            case connectionRefused, unreachable, connectTimeout, connectFailed, streamOpenFailed
            case preambleRefused, handshakeTimeout, closedBeforePreamble
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        // Set-up.

        /// A configuration value cannot work; nothing was started or dialled.
        /// ``MuxRPCError/message`` names the value and the rule it breaks.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The client, the pool or the server is shutting down or has shut down.
        public static let shutDown = Code(.shutDown)

        // The client's choice of endpoint.

        /// The client knows no endpoint (the resolver has not answered, or
        /// its list is empty).
        public static let noEndpoints = Code(.noEndpoints)
        /// Every endpoint's circuit breaker is open or probing.
        public static let allEndpointsUnavailable = Code(.allEndpointsUnavailable)

        // Waiting for a stream, or for a rate limiter's token.

        /// Every stream the endpoint may have is busy and the pool is set to
        /// fail fast rather than wait
        /// (`ConnectionPool/Configuration/BusyPolicy/failFast`).
        public static let overloaded = Code(.overloaded)
        /// As many callers as `ConnectionPool/Configuration/maxWaitersPerAddress`
        /// already wait for the endpoint.
        public static let tooManyWaiters = Code(.tooManyWaiters)
        /// The call's deadline passed before its request was written: while
        /// it waited for endpoints, a stream or a retry.
        public static let deadlineExceeded = Code(.deadlineExceeded)
        /// The calling task was cancelled before the request was written.
        public static let cancelled = Code(.cancelled)
        /// A `RateLimitingInterceptor` refused the call: no token came in
        /// time. On the server the caller receives this error's text as a
        /// net/rpc error reply.
        public static let rateLimited = Code(.rateLimited)

        // Reaching the server.

        /// The server's host refused the TCP connection: nothing listens on
        /// that port (ECONNREFUSED).
        public static let connectionRefused = Code(.connectionRefused)
        /// No route to the server's host or its network (EHOSTUNREACH,
        /// ENETUNREACH).
        public static let unreachable = Code(.unreachable)
        /// The TCP connection was not established within
        /// ``MuxRPCConnection/Configuration/connectTimeout``.
        public static let connectTimeout = Code(.connectTimeout)
        /// Connecting failed for another reason; ``MuxRPCError/cause`` holds
        /// the underlying error.
        public static let connectFailed = Code(.connectFailed)
        /// Opening a stream failed, on a fresh session as well.
        public static let streamOpenFailed = Code(.streamOpenFailed)

        // A server refusing a connection before it carried any call:
        // reported to ConnectionPreambleHandler's `onRefused`, never to a
        // call, so only the package sees them.

        /// The connection's first byte asked for something this server does
        /// not serve: an unknown mode, TLS it does not offer, or plaintext
        /// where it requires TLS.
        package static let preambleRefused = Code(.preambleRefused)
        /// No preamble arrived within
        /// ``ConnectionPreambleConfiguration/handshakeTimeout``.
        package static let handshakeTimeout = Code(.handshakeTimeout)
        /// The connection closed before its preamble arrived.
        package static let closedBeforePreamble = Code(.closedBeforePreamble)

        /// The code's name, for example "connection refused".
        public var description: String {
            switch wrapped {
            case .invalidConfiguration: "invalid configuration"
            case .shutDown: "shut down"
            case .noEndpoints: "no endpoints"
            case .allEndpointsUnavailable: "all endpoints unavailable"
            case .overloaded: "overloaded"
            case .tooManyWaiters: "too many waiters"
            case .deadlineExceeded: "deadline exceeded"
            case .cancelled: "cancelled"
            case .rateLimited: "rate limited"
            case .connectionRefused: "connection refused"
            case .unreachable: "unreachable"
            case .connectTimeout: "connect timeout"
            case .connectFailed: "connect failed"
            case .streamOpenFailed: "stream open failed"
            case .preambleRefused: "preamble refused"
            case .handshakeTimeout: "handshake timeout"
            case .closedBeforePreamble: "closed before preamble"
            }
        }
    }

    /// What went wrong.
    public var code: Code
    /// What happened, in words, for example "connection refused"; the
    /// ``description`` adds the server's address.
    public var message: String
    /// The server concerned, when there is one.
    public var address: SocketAddress?
    /// Whether the request may have reached the server. False for every
    /// error MuxRPC raises today: it fails a call only before writing its
    /// request. A call that was not sent did not run.
    public var requestWasSent: Bool
    /// The underlying error, if any: NIO's connect error, a `YamuxError`.
    public var cause: (any Error)?

    /// An error with every property given.
    public init(
        code: Code,
        message: String,
        address: SocketAddress? = nil,
        requestWasSent: Bool = false,
        cause: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.address = address
        self.requestWasSent = requestWasSent
        self.cause = cause
    }

    /// Whether trying the call again, here later or on another server, is
    /// safe and may succeed: the request was not sent, and the failure is
    /// not one that another attempt repeats (a passed deadline, a
    /// cancellation, a shutdown, a bad configuration). `MuxRPCClient`
    /// retries exactly these, within its retry budget.
    public var isRetrySafe: Bool { CallFailure(self).isRetrySafe }

    /// The message, then the server's address when there is one, for
    /// example "connection refused: 10.0.0.5:8300".
    public var description: String {
        guard let address else { return message }
        return "\(message): \(address.hostAndPort)"
    }
}

extension MuxRPCError {
    /// A configuration that cannot work, `what` naming it ("connection pool",
    /// "socket reads").
    package static func invalidConfiguration(_ what: String, _ why: String) -> MuxRPCError {
        MuxRPCError(code: .invalidConfiguration, message: "invalid \(what) configuration: \(why)")
    }
}
