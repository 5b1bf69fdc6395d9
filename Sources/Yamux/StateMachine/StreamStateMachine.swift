/// The yamux stream lifecycle, as hashicorp/yamux runs it.
///
/// ```
///  outbound: open ──SYN──▶ synSent ──ACK──▶ established
///  inbound:  SYN ──▶ synReceived ──accept/ACK──▶ established
///  established ──send FIN──▶ localClosed ──recv FIN──▶ closed
///  established ──recv FIN──▶ remoteClosed ──send FIN──▶ closed
///  any ──RST (either way)──▶ reset
/// ```
/// A FIN is accepted in synSent/synReceived/established/localClosed; anywhere else it is a
/// protocol error. Data is accepted until the peer's FIN.
struct StreamStateMachine: Equatable {
    enum State: Equatable {
        case synSent
        case synReceived
        case established
        case localClosed
        case remoteClosed
        case closed
        case reset
    }

    private(set) var state: State

    init(outbound: Bool) {
        self.state = outbound ? .synSent : .synReceived
    }

    /// The peer acknowledged our SYN.
    mutating func receivedACK() {
        if self.state == .synSent { self.state = .established }
    }

    /// We acknowledged the peer's SYN.
    mutating func sentACK() {
        if self.state == .synReceived { self.state = .established }
    }

    enum FINResult: Equatable {
        case halfClosed
        case fullyClosed
        case protocolError
    }

    mutating func receivedFIN() -> FINResult {
        switch self.state {
        case .synSent, .synReceived, .established:
            self.state = .remoteClosed
            return .halfClosed
        case .localClosed:
            self.state = .closed
            return .fullyClosed
        case .remoteClosed, .closed, .reset:
            return .protocolError
        }
    }

    /// We sent FIN. Returns whether the stream is now fully closed; nil if FIN was already sent.
    mutating func sentFIN() -> Bool? {
        switch self.state {
        case .synSent, .synReceived, .established:
            self.state = .localClosed
            return false
        case .remoteClosed:
            self.state = .closed
            return true
        case .localClosed, .closed, .reset:
            return nil
        }
    }

    mutating func resetStream() {
        self.state = .reset
    }

    /// Whether a data frame is acceptable now: only until the peer's FIN.
    var canReceiveData: Bool {
        switch self.state {
        case .synSent, .synReceived, .established, .localClosed: return true
        case .remoteClosed, .closed, .reset: return false
        }
    }

    /// Whether we may still send data.
    var canSendData: Bool {
        switch self.state {
        case .synSent, .synReceived, .established, .remoteClosed: return true
        case .localClosed, .closed, .reset: return false
        }
    }

    var remoteHasClosed: Bool {
        switch self.state {
        case .remoteClosed, .closed, .reset: return true
        default: return false
        }
    }

    var isTerminal: Bool { self.state == .closed || self.state == .reset }
}
