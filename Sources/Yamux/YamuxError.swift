/// Everything that can go wrong in a yamux session or stream.
///
/// The description says what happened and what it means for the caller, for example
/// "stream window exceeded by peer (protocol error): session closed".
public struct YamuxError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A machine-checkable classification of the error.
    public enum Code: Hashable, Sendable {
        // Protocol errors by the peer: we answer with GoAway(1) and close the session.
        /// The peer sent a frame with a version other than 0.
        case unsupportedVersion
        /// The peer sent a frame type that does not exist.
        case unknownFrameType
        /// The peer sent more data on a stream than its window allowed.
        case windowExceeded
        /// The peer opened a stream id that is already in use.
        case duplicateStream
        /// The peer sent FIN on a stream in a state that cannot take it.
        case unexpectedFIN
        /// The peer sent data on a stream after closing it.
        case unexpectedData
        // The peer ended the session or a stream.
        /// The peer sent GoAway(protocol error); the session closed.
        case remoteGoAwayProtocolError
        /// The peer sent GoAway(internal error); the session closed.
        case remoteGoAwayInternalError
        /// The peer sent GoAway with a code that does not exist; the session closed.
        case remoteGoAwayUnknownCode
        /// The peer sent GoAway(normal): no new streams on this session; open ones go on.
        case remoteGoAway
        /// The stream was reset (RST), by the peer or by this side.
        case streamReset
        /// The connection closed under the session.
        case connectionClosed
        // Local decisions and limits.
        /// The session was closed by this side.
        case sessionClosed
        /// A keepalive ping was not answered in time; the session closed.
        case keepAliveTimeout
        /// A ping was not answered within ``YamuxConfiguration/connectionWriteTimeout``.
        case pingTimeout
        /// The connection stayed unwritable past ``YamuxConfiguration/connectionWriteTimeout``;
        /// the session closed.
        case connectionWriteTimeout
        /// The peer did not acknowledge a stream within ``YamuxConfiguration/streamOpenTimeout``;
        /// the session closed.
        case streamOpenTimeout
        /// The peer did not close a stream within ``YamuxConfiguration/streamCloseTimeout``; the
        /// stream was reset.
        case streamCloseTimeout
        /// The session used up its stream ids; open a new session.
        case streamsExhausted
        /// ``YamuxConfiguration/maxConcurrentStreams`` streams are already open.
        case tooManyStreams
        /// The peer provoked more control frames than it read
        /// (``YamuxConfiguration/maxBufferedControlFrames``); the session closed.
        case controlFrameFlood
        /// More than ``YamuxConfiguration/maxSessionUnreadBytes`` arrived unread; the session
        /// closed.
        case unreadLimitExceeded
        /// The peer sent part of a frame and not the rest within
        /// ``YamuxConfiguration/frameReadTimeout``; the session closed.
        case frameReadTimeout
        /// This side sent GoAway: no new streams can be opened on this session.
        case localGoAway
        /// The stream is closed, or was already used.
        case streamClosed
    }

    /// What went wrong, for code that branches on it.
    public let code: Code
    /// Human-readable explanation, including the consequence.
    public let message: String

    /// An error with the given code and explanation.
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
    static let streamCloseTimeout = YamuxError(code: .streamCloseTimeout, message: "peer did not close the stream within the stream close timeout: stream reset")
    static let streamsExhausted = YamuxError(code: .streamsExhausted, message: "stream ids exhausted: open a new session")
    static let tooManyStreams = YamuxError(code: .tooManyStreams, message: "too many concurrent streams on this session (maxConcurrentStreams)")
    static let controlFrameFlood = YamuxError(code: .controlFrameFlood, message: "peer does not read the control frames it provokes (maxBufferedControlFrames exceeded): session closed")
    static let unreadLimitExceeded = YamuxError(code: .unreadLimitExceeded, message: "more than maxSessionUnreadBytes received and not read by the application across the session's streams: session closed")
    static let frameReadTimeout = YamuxError(code: .frameReadTimeout, message: "peer sent part of a frame and not the rest within frameReadTimeout: session closed")
    static let streamClosed = YamuxError(code: .streamClosed, message: "stream closed")
}
