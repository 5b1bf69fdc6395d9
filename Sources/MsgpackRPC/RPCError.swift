/// Every failure of a call, a stream or a request, as one typed error.
///
/// Besides what went wrong (``code``, ``message``), an error says whether the
/// stream it happened on can carry another call (``isStreamUsable``). A remote
/// error (the server's handler failed, or it did not know the method) leaves
/// the stream in step, so it stays usable, exactly as with Go's net/rpc. A
/// transport failure, a protocol violation, a timeout or a cancellation leaves
/// the stream in an unknown position (a reply may still be on its way), so the
/// stream must be closed or reset and never reused.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. A struct rather than an enum so that new
    /// codes can be added without breaking exhaustive switches.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case serverError, deadlineExceeded, cancelled, protocolViolation, limitExceeded
            case connectionClosed, streamUnusable, callInProgress, encodingFailed, decodingFailed
            case transportFailure
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The server answered with a non-empty `Error`: its handler failed, the
        /// method is unknown, or the arguments did not decode. ``RPCError/message``
        /// is the server's text, unchanged.
        public static let serverError = Code(.serverError)
        /// The call's deadline or timeout passed before the reply arrived.
        public static let deadlineExceeded = Code(.deadlineExceeded)
        /// The calling task was cancelled while the call was in flight.
        public static let cancelled = Code(.cancelled)
        /// The peer broke the protocol: a reply with the wrong Seq, a header that
        /// is not a header, a message where none was expected.
        public static let protocolViolation = Code(.protocolViolation)
        /// The peer sent a value beyond `MessagePackLimits` (a lying length, an
        /// endless or too deeply nested value).
        public static let limitExceeded = Code(.limitExceeded)
        /// The stream closed before the reply arrived.
        public static let connectionClosed = Code(.connectionClosed)
        /// An earlier failure made this stream unusable; close it and use another.
        public static let streamUnusable = Code(.streamUnusable)
        /// Another call is already in flight on this stream (net/rpc allows one).
        public static let callInProgress = Code(.callInProgress)
        /// The arguments could not be encoded; nothing was sent.
        public static let encodingFailed = Code(.encodingFailed)
        /// The reply arrived but did not decode into the requested type.
        public static let decodingFailed = Code(.decodingFailed)
        /// Writing to or reading from the stream failed.
        public static let transportFailure = Code(.transportFailure)

        /// The code's name, for example "deadline exceeded".
        public var description: String {
            switch wrapped {
            case .serverError: "server error"
            case .deadlineExceeded: "deadline exceeded"
            case .cancelled: "cancelled"
            case .protocolViolation: "protocol violation"
            case .limitExceeded: "limit exceeded"
            case .connectionClosed: "connection closed"
            case .streamUnusable: "stream unusable"
            case .callInProgress: "call in progress"
            case .encodingFailed: "encoding failed"
            case .decodingFailed: "decoding failed"
            case .transportFailure: "transport failure"
            }
        }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What happened. For ``Code/serverError`` exactly the server's `Error` text
    /// (what Go's `rpc.ServerError` holds).
    public var message: String
    /// Whether the stream can carry another call. When false, close or reset
    /// the stream; the client refuses further calls on it.
    public var isStreamUsable: Bool
    /// The underlying error, if any (a `MessagePackError`, a `DecodingError`, a
    /// NIO `ChannelError`).
    public var cause: (any Error)?
    /// Whether the request may have reached the server. False only when the
    /// client knows nothing was written (refused before sending, the stream
    /// already closed): then the call did not run and may be retried
    /// elsewhere. True whenever in doubt.
    public var requestWasSent: Bool

    /// An error with every property given.
    public init(code: Code, message: String, isStreamUsable: Bool, requestWasSent: Bool = true, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.isStreamUsable = isStreamUsable
        self.requestWasSent = requestWasSent
        self.cause = cause
    }

    /// What a service handler throws to send `message` to the caller exactly
    /// as written, as the net/rpc reply's `Error` (a Go client sees it as
    /// `rpc.ServerError(message)` and may compare strings).
    ///
    /// Anything a handler throws becomes an error reply; for errors other
    /// than an `RPCError` the text is `String(describing: error)`. The caller
    /// receives an ``RPCError`` with code ``Code/serverError`` and this
    /// message, and its stream stays usable.
    public init(serverError message: String) {
        self.init(code: .serverError, message: message, isStreamUsable: true)
    }

    /// The code and message, and the cause when there is one.
    public var description: String {
        var text = "\(code): \(message)"
        if !isStreamUsable { text += " (stream unusable: close it)" }
        if let cause { text += " [cause: \(cause)]" }
        return text
    }

    /// The same error, marked as having left the stream unusable.
    func streamUnusable() -> RPCError {
        var copy = self
        copy.isStreamUsable = false
        return copy
    }
}
