public import NIOCore

/// Why the pool could not give a call a stream.
///
/// Every one of these happens before the request is written, so the call did
/// not run anywhere and trying it again (here later, or on another server) is
/// safe. Failures of the call itself, once it has a stream, are
/// `RPCError`s.
public struct ConnectionPoolError: Error, Sendable, CustomStringConvertible {
    /// What went wrong. A struct rather than an enum so that codes can be
    /// added without breaking exhaustive switches.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case shutDown, overloaded, tooManyWaiters, deadlineExceeded, cancelled
            case connectFailed, streamOpenFailed
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The pool is shutting down or has shut down.
        public static let shutDown = Code(.shutDown)
        /// Every stream this address may have is busy and the pool is set to
        /// fail fast rather than wait (``ConnectionPool/Configuration/BusyPolicy/failFast``).
        public static let overloaded = Code(.overloaded)
        /// As many callers as ``ConnectionPool/Configuration/maxWaitersPerAddress``
        /// already wait for this address.
        public static let tooManyWaiters = Code(.tooManyWaiters)
        /// The call's deadline passed while it waited for a stream.
        public static let deadlineExceeded = Code(.deadlineExceeded)
        /// The calling task was cancelled while it waited for a stream.
        public static let cancelled = Code(.cancelled)
        /// Connecting to the server failed (refused, unreachable, timed out).
        public static let connectFailed = Code(.connectFailed)
        /// Opening a stream failed, on a fresh session as well.
        public static let streamOpenFailed = Code(.streamOpenFailed)

        public var description: String {
            switch wrapped {
            case .shutDown: "shut down"
            case .overloaded: "overloaded"
            case .tooManyWaiters: "too many waiters"
            case .deadlineExceeded: "deadline exceeded"
            case .cancelled: "cancelled"
            case .connectFailed: "connect failed"
            case .streamOpenFailed: "stream open failed"
            }
        }
    }

    /// What went wrong.
    public var code: Code
    /// What happened, in words.
    public var message: String
    /// The server the call was for.
    public var address: SocketAddress?
    /// The underlying error, if any (a connect error, a `YamuxError`).
    public var cause: (any Error)?

    public init(code: Code, message: String, address: SocketAddress? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.address = address
        self.cause = cause
    }

    /// Always false: the pool fails a call only before its request is written.
    public var requestWasSent: Bool { false }

    public var description: String {
        var text = "connection pool: \(code): \(message)"
        if let address { text += " (\(address))" }
        if let cause { text += " [cause: \(cause)]" }
        return text
    }
}
