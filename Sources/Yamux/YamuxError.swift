/// Everything that can go wrong in a yamux session or stream, and a
/// configuration that cannot work.
///
/// The description says what happened and what it means for the caller, for example
/// "stream window exceeded by peer (protocol error): session closed".
public struct YamuxError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A machine-checkable classification of the error. A struct rather than
    /// an enum so that codes can be added without breaking exhaustive switches.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case unsupportedVersion, unknownFrameType, windowExceeded, duplicateStream, unexpectedFIN, unexpectedData
            case remoteGoAwayProtocolError, remoteGoAwayInternalError, remoteGoAwayUnknownCode, remoteGoAway
            case streamReset, connectionClosed
            case sessionClosed, keepAliveTimeout, pingTimeout, connectionWriteTimeout, streamOpenTimeout
            case streamsExhausted, tooManyStreams, controlFrameFlood, unreadLimitExceeded, frameReadTimeout
            case localGoAway, streamClosed, invalidConfiguration
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        // Protocol errors by the peer: the session answers with GoAway(1) and closes.

        /// The peer sent a frame with a version other than 0.
        public static let unsupportedVersion = Code(.unsupportedVersion)
        /// The peer sent a frame of a type yamux does not have, or one that
        /// does not decode.
        public static let unknownFrameType = Code(.unknownFrameType)
        /// The peer sent more data on a stream than its window allowed.
        public static let windowExceeded = Code(.windowExceeded)
        /// The peer opened a stream id that is already in use.
        public static let duplicateStream = Code(.duplicateStream)
        /// The peer sent FIN on a stream in a state that cannot take it.
        public static let unexpectedFIN = Code(.unexpectedFIN)
        /// The peer sent data on a stream after closing it.
        public static let unexpectedData = Code(.unexpectedData)

        // The peer ended the session or a stream.

        /// The peer sent GoAway(protocol error): the session is closed.
        public static let remoteGoAwayProtocolError = Code(.remoteGoAwayProtocolError)
        /// The peer sent GoAway(internal error): the session is closed.
        public static let remoteGoAwayInternalError = Code(.remoteGoAwayInternalError)
        /// The peer sent GoAway with a code yamux does not define: the session is closed.
        public static let remoteGoAwayUnknownCode = Code(.remoteGoAwayUnknownCode)
        /// The peer sent GoAway(normal): streams open go on, new ones cannot be opened.
        public static let remoteGoAway = Code(.remoteGoAway)
        /// The peer reset the stream (RST); its data was discarded.
        public static let streamReset = Code(.streamReset)
        /// The connection under the session closed or failed.
        public static let connectionClosed = Code(.connectionClosed)

        // Local decisions and limits.

        /// The session is closed; nothing more can be done on it.
        public static let sessionClosed = Code(.sessionClosed)
        /// A keepalive ping went unanswered: the session is closed.
        public static let keepAliveTimeout = Code(.keepAliveTimeout)
        /// A ping went unanswered within the connection write timeout.
        public static let pingTimeout = Code(.pingTimeout)
        /// The connection did not take writes within the connection write
        /// timeout: the session is closed.
        public static let connectionWriteTimeout = Code(.connectionWriteTimeout)
        /// The peer did not acknowledge a stream within the stream open
        /// timeout: the session is closed.
        public static let streamOpenTimeout = Code(.streamOpenTimeout)
        /// The session has used every stream id it may; open a new session.
        public static let streamsExhausted = Code(.streamsExhausted)
        /// The session already has ``YamuxConfiguration/maxConcurrentStreams`` streams.
        public static let tooManyStreams = Code(.tooManyStreams)
        /// The peer does not read the control frames it provokes
        /// (``YamuxConfiguration/maxBufferedControlFrames``): the session is closed.
        public static let controlFrameFlood = Code(.controlFrameFlood)
        /// More than ``YamuxConfiguration/maxSessionUnreadBytes`` arrived and
        /// was not read: the session is closed.
        public static let unreadLimitExceeded = Code(.unreadLimitExceeded)
        /// The peer sent part of a frame and not the rest within
        /// ``YamuxConfiguration/frameReadTimeout``: the session is closed.
        public static let frameReadTimeout = Code(.frameReadTimeout)
        /// This session sent GoAway: no new streams can be opened on it.
        public static let localGoAway = Code(.localGoAway)
        /// The stream is closed for what was asked (a write after close).
        public static let streamClosed = Code(.streamClosed)
        /// A ``YamuxConfiguration`` value is out of range; nothing was started.
        public static let invalidConfiguration = Code(.invalidConfiguration)

        /// The code's name, for example "window exceeded".
        public var description: String {
            switch wrapped {
            case .unsupportedVersion: "unsupported version"
            case .unknownFrameType: "unknown frame type"
            case .windowExceeded: "window exceeded"
            case .duplicateStream: "duplicate stream"
            case .unexpectedFIN: "unexpected FIN"
            case .unexpectedData: "unexpected data"
            case .remoteGoAwayProtocolError: "remote GoAway protocol error"
            case .remoteGoAwayInternalError: "remote GoAway internal error"
            case .remoteGoAwayUnknownCode: "remote GoAway unknown code"
            case .remoteGoAway: "remote GoAway"
            case .streamReset: "stream reset"
            case .connectionClosed: "connection closed"
            case .sessionClosed: "session closed"
            case .keepAliveTimeout: "keepalive timeout"
            case .pingTimeout: "ping timeout"
            case .connectionWriteTimeout: "connection write timeout"
            case .streamOpenTimeout: "stream open timeout"
            case .streamsExhausted: "streams exhausted"
            case .tooManyStreams: "too many streams"
            case .controlFrameFlood: "control frame flood"
            case .unreadLimitExceeded: "unread limit exceeded"
            case .frameReadTimeout: "frame read timeout"
            case .localGoAway: "local GoAway"
            case .streamClosed: "stream closed"
            case .invalidConfiguration: "invalid configuration"
            }
        }
    }

    /// What kind of error this is.
    public let code: Code
    /// Human-readable explanation, including the consequence.
    public let message: String

    /// An error with `code`, explained by `message`.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { self.message }

    /// Whether this error is a protocol violation by the peer (answered with GoAway(1)).
    public var isPeerProtocolError: Bool {
        switch self.code {
        case .unsupportedVersion, .unknownFrameType, .windowExceeded, .duplicateStream, .unexpectedFIN,
            .unexpectedData:
            return true
        default:
            return false
        }
    }

    static func unsupportedVersion(_ v: UInt8) -> YamuxError {
        .init(code: .unsupportedVersion, message: "unsupported yamux version \(v) from peer (protocol error): session closed")
    }
    static func unknownFrameType(_ t: UInt8) -> YamuxError {
        .init(code: .unknownFrameType, message: "unknown yamux frame type \(t) from peer (protocol error): session closed")
    }
    static func windowExceeded(streamID: UInt32) -> YamuxError {
        .init(code: .windowExceeded, message: "stream window exceeded by peer (protocol error): session closed (stream \(streamID))")
    }
    static func duplicateStream(_ id: UInt32) -> YamuxError {
        .init(code: .duplicateStream, message: "peer opened stream \(id) twice (protocol error): session closed")
    }
    static func unexpectedFIN(_ id: UInt32) -> YamuxError {
        .init(code: .unexpectedFIN, message: "peer sent FIN on stream \(id) in a state that cannot take it (protocol error): session closed")
    }
    static func unexpectedData(_ id: UInt32) -> YamuxError {
        .init(code: .unexpectedData, message: "peer sent data on stream \(id) after closing it (protocol error): session closed")
    }
    static func invalidConfiguration(_ why: String) -> YamuxError {
        .init(code: .invalidConfiguration, message: "invalid yamux configuration: \(why)")
    }
    static let remoteProtocolError = YamuxError(code: .remoteGoAwayProtocolError, message: "peer sent GoAway(protocol error): session closed")
    static let remoteInternalError = YamuxError(code: .remoteGoAwayInternalError, message: "peer sent GoAway(internal error): session closed")
    static func remoteUnknownGoAway(_ code: UInt32) -> YamuxError {
        .init(code: .remoteGoAwayUnknownCode, message: "peer sent GoAway with unknown code \(code): session closed")
    }
    static let remoteGoAway = YamuxError(code: .remoteGoAway, message: "peer sent GoAway: no new streams can be opened on this session")
    static let localGoAway = YamuxError(code: .localGoAway, message: "this session sent GoAway: no new streams can be opened on it")
    static let streamReset = YamuxError(code: .streamReset, message: "stream reset (RST): its data was discarded")
    static let connectionClosed = YamuxError(code: .connectionClosed, message: "connection closed: session closed")
    static let sessionClosed = YamuxError(code: .sessionClosed, message: "session closed")
    static let keepAliveTimeout = YamuxError(code: .keepAliveTimeout, message: "keepalive ping not answered in time: session closed")
    static let pingTimeout = YamuxError(code: .pingTimeout, message: "ping not answered within the connection write timeout")
    static let connectionWriteTimeout = YamuxError(code: .connectionWriteTimeout, message: "connection not writable within the connection write timeout: session closed")
    static let streamOpenTimeout = YamuxError(code: .streamOpenTimeout, message: "peer did not acknowledge a stream within the stream open timeout: session closed")
    static let streamsExhausted = YamuxError(code: .streamsExhausted, message: "stream ids exhausted: open a new session")
    static let tooManyStreams = YamuxError(code: .tooManyStreams, message: "too many concurrent streams on this session (maxConcurrentStreams)")
    static let controlFrameFlood = YamuxError(code: .controlFrameFlood, message: "peer does not read the control frames it provokes (maxBufferedControlFrames exceeded): session closed")
    static let unreadLimitExceeded = YamuxError(code: .unreadLimitExceeded, message: "more than maxSessionUnreadBytes received and not read by the application across the session's streams: session closed")
    static let frameReadTimeout = YamuxError(code: .frameReadTimeout, message: "peer sent part of a frame and not the rest within frameReadTimeout: session closed")
    static let streamClosed = YamuxError(code: .streamClosed, message: "stream closed")
}
