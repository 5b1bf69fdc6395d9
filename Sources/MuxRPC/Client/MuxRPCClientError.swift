/// A call the client stack itself refused, before any server saw it.
public struct MuxRPCClientError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable { case noEndpoints, allEndpointsUnavailable, shutDown }
        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The client knows no endpoint (the resolver has not answered, or
        /// its list is empty).
        public static let noEndpoints = Code(.noEndpoints)
        /// Every endpoint's circuit breaker is open or probing.
        public static let allEndpointsUnavailable = Code(.allEndpointsUnavailable)
        /// The client is shutting down.
        public static let shutDown = Code(.shutDown)

        public var description: String {
            switch wrapped {
            case .noEndpoints: "no endpoints"
            case .allEndpointsUnavailable: "all endpoints unavailable"
            case .shutDown: "shut down"
            }
        }
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// Always false: the client refused the call before sending it.
    public var requestWasSent: Bool { false }

    public var description: String { "MuxRPC client: \(code): \(message)" }
}

/// A ``MuxRPCClient/Configuration`` that cannot work.
public struct MuxRPCClientConfigurationError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { "invalid MuxRPC client configuration: \(message)" }
}
