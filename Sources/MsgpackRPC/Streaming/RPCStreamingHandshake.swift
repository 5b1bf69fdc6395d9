package import MessagePack
package import NIOCore

/// The first value of a streaming call, from the caller: Nomad's
/// `StreamingRpcHeader{Method string}`, a one-entry map `{"Method": str}`.
package struct RPCStreamingHeader: Codable, Hashable, Sendable {
    package var method: String
    package init(method: String) { self.method = method }
    enum CodingKeys: String, CodingKey { case method = "Method" }
}

/// The server's answer to the header: Nomad's `StreamingRpcAck{Error string}`,
/// `{"Error": str}`. Empty: the handler runs; otherwise the stream ends.
package struct RPCStreamingAck: Codable, Hashable, Sendable {
    package var error: String
    package init(error: String) { self.error = error }
    enum CodingKeys: String, CodingKey { case error = "Error" }
}

/// The server's side of a streaming call's opening, as a state machine that
/// sees values and says what to do; no channel in it, so every rule is tested
/// without sockets.
///
/// The first value is the header. A known method is acknowledged with an
/// empty `Error` and every later value goes to its handler; an unknown one is
/// answered with the error and the stream closes, as Nomad's
/// `handleStreamingConn` does. A first value that is no header closes the
/// stream without an answer (Nomad logs it and closes).
package struct RPCStreamingServerHandshake {
    package enum State: Equatable {
        case awaitingHeader
        case streaming(method: String)
        case closed
    }

    package enum Action {
        /// Write the ack (empty `Error`) and start `method`'s handler.
        case accept(method: String, ack: RPCStreamingAck)
        /// Write the ack with its error, then close the stream.
        case reject(ack: RPCStreamingAck)
        /// Close the stream; nothing to write.
        case close(RPCError)
        /// A value for the running handler.
        case deliver(ByteBuffer)
        /// Nothing to do (a value after the stream was closed).
        case none
    }

    package private(set) var state: State = .awaitingHeader
    private let decoder: MessagePackDecoder

    package init(decoder: MessagePackDecoder = MessagePackDecoder()) {
        self.decoder = decoder
    }

    /// A complete value arrived. `isKnown` says whether a method is served.
    package mutating func received(_ value: ByteBuffer, isKnown: (String) -> Bool) -> Action {
        switch state {
        case .awaitingHeader:
            let header: RPCStreamingHeader
            do {
                header = try decoder.decode(RPCStreamingHeader.self, fromScanned: value)
            } catch {
                state = .closed
                return .close(RPCError(
                    code: .protocolViolation, message: "the first value of a streaming call is not a StreamingRpcHeader: \(error)",
                    isStreamUsable: false, cause: error
                ))
            }
            guard isKnown(header.method) else {
                state = .closed
                return .reject(ack: RPCStreamingAck(error: RPCStreamingServerHandshake.unknownMethodMessage(header.method)))
            }
            state = .streaming(method: header.method)
            return .accept(method: header.method, ack: RPCStreamingAck(error: ""))
        case .streaming:
            return .deliver(value)
        case .closed:
            return .none
        }
    }

    /// The caller closed its side. Before the header nothing will come:
    /// close. While streaming, the handler's inbound values end, and the
    /// handler goes on writing.
    package mutating func inputClosed() -> Action {
        switch state {
        case .awaitingHeader:
            state = .closed
            return .close(RPCError(code: .connectionClosed, message: "the caller closed the stream before its header", isStreamUsable: false))
        case .streaming, .closed:
            return .none
        }
    }

    /// The ack's text for a method nobody serves; Nomad's
    /// `StreamingRpcRegistry.GetHandler` says `Unknown rpc method: "X.Y"`.
    package static func unknownMethodMessage(_ method: String) -> String {
        "Unknown rpc method: \"\(method)\""
    }
}

/// The caller's side of a streaming call's opening: it has written the
/// header and waits for the ack; values after it belong to the call.
package struct RPCStreamingClientHandshake {
    package enum State: Equatable {
        case awaitingAck
        case streaming
        case failed
    }

    package enum Action {
        /// The server runs the method: values may flow.
        case established
        /// The server refused (its `Error`), or the ack was not an ack: the
        /// call fails with this error and the stream closes.
        case fail(RPCError)
        /// A value of the call.
        case deliver(ByteBuffer)
        case none
    }

    package private(set) var state: State = .awaitingAck
    private let decoder: MessagePackDecoder
    private let method: String

    package init(method: String, decoder: MessagePackDecoder = MessagePackDecoder()) {
        self.method = method
        self.decoder = decoder
    }

    package mutating func received(_ value: ByteBuffer) -> Action {
        switch state {
        case .awaitingAck:
            let ack: RPCStreamingAck
            do {
                ack = try decoder.decode(RPCStreamingAck.self, fromScanned: value)
            } catch {
                state = .failed
                return .fail(RPCError(
                    code: .protocolViolation, message: "the answer to streaming call \(method) is not a StreamingRpcAck: \(error)",
                    isStreamUsable: false, cause: error
                ))
            }
            guard ack.error.isEmpty else {
                state = .failed
                // The server's text, unchanged, as for a net/rpc error reply.
                return .fail(RPCError(code: .serverError, message: ack.error, isStreamUsable: false))
            }
            state = .streaming
            return .established
        case .streaming:
            return .deliver(value)
        case .failed:
            return .none
        }
    }

    /// The stream ended (closed or reset) or failed before the ack.
    package mutating func ended(_ error: RPCError?) -> Action {
        guard case .awaitingAck = state else { return .none }
        state = .failed
        return .fail(error ?? RPCError(
            code: .connectionClosed, message: "the stream of streaming call \(method) closed before the server's ack",
            isStreamUsable: false
        ))
    }
}
