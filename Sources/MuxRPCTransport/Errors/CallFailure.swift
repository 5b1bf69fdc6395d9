import MsgpackRPC

/// What a failed call means: whether trying it again is safe, and whether
/// it counts against the endpoint it went to. The one place MuxRPC decides
/// both, from the errors' `requestWasSent` and codes; ``MuxRPCClient``'s
/// retry loop and its circuit breakers both ask it, and so do the public
/// `isRetrySafe` properties.
package struct CallFailure {
    /// The call did not run and another attempt may succeed.
    package let isRetrySafe: Bool
    /// What the failure says about the endpoint, for its breaker and its
    /// latency.
    package let outcome: AttemptOutcome

    package init(_ error: any Error) {
        switch error {
        case let error as MuxRPCError:
            (isRetrySafe, outcome) = Self.classify(error)
        case let error as RPCError:
            (isRetrySafe, outcome) = Self.classify(error)
        default:
            // An interceptor's own error, a CancellationError: nothing is
            // known of where the call got to, and nothing of the endpoint.
            (isRetrySafe, outcome) = (false, .neutral)
        }
    }

    private static func classify(_ error: MuxRPCError) -> (isRetrySafe: Bool, outcome: AttemptOutcome) {
        let isRetrySafe: Bool
        let outcome: AttemptOutcome
        switch error.code {
        case .connectionRefused, .unreachable, .connectTimeout, .connectFailed, .streamOpenFailed:
            // The endpoint could not be reached or could not take a stream:
            // the call never left, and another endpoint may take it.
            isRetrySafe = !error.requestWasSent
            outcome = .endpointFailed
        case .overloaded, .tooManyWaiters, .rateLimited:
            // Refused here for lack of room, which another endpoint (or a
            // moment later, this one) may have; the endpoint did nothing wrong.
            isRetrySafe = !error.requestWasSent
            outcome = .neutral
        default:
            // Shutting down, no endpoint, a deadline, a cancellation, a bad
            // configuration: another attempt meets the same end.
            isRetrySafe = false
            outcome = .neutral
        }
        return (isRetrySafe, outcome)
    }

    private static func classify(_ error: RPCError) -> (isRetrySafe: Bool, outcome: AttemptOutcome) {
        let isRetrySafe: Bool
        let outcome: AttemptOutcome
        switch error.code {
        case .cancelled, .deadlineExceeded, .encodingFailed:
            // Another attempt would be cancelled, late, or unencodable too.
            isRetrySafe = false
        default:
            isRetrySafe = !error.requestWasSent
        }
        switch error.code {
        case .serverError, .decodingFailed:
            // The server answered: it works, whatever it said.
            outcome = .answered
        case .connectionClosed, .transportFailure, .protocolViolation, .limitExceeded, .streamUnusable:
            outcome = .endpointFailed
        case .deadlineExceeded:
            // Late only counts against a server that had the request.
            outcome = error.requestWasSent ? .endpointFailed : .neutral
        default:
            outcome = .neutral
        }
        return (isRetrySafe, outcome)
    }
}

/// How an attempt ended, for the endpoint's books. ``CallFailure`` decides
/// it for a failed attempt.
package enum AttemptOutcome: Sendable {
    /// The server answered (an error reply included).
    case answered
    /// The endpoint failed: it could not be reached, broke the protocol,
    /// dropped the connection or did not answer in time.
    case endpointFailed
    /// Neither: cancelled, refused locally, or failed before it was sent for
    /// reasons that say nothing of the endpoint.
    case neutral
}
