public import MsgpackRPC
public import NIOCore
import MuxRPCPool
import MuxRPCTransport

/// Runs around each attempt of a ``MuxRPCClient`` call, once its server is
/// chosen: to log, measure, trace or rate-limit what goes on the wire.
///
/// An interceptor calls `next` to go on (to the next interceptor, and in the
/// end the pool and the server), or throws to fail the attempt. It may
/// change the request's options on the way, such as the trace context or
/// the deadline. A retried call passes through the interceptors once per
/// attempt (``ClientContext/attempt``).
///
/// Register them in ``MuxRPCClient/Configuration/interceptors``; the first
/// one listed runs outermost.
public protocol ClientInterceptor: Sendable {
    /// Handles one attempt: calls `next` with the request and context to go
    /// on and returns its response, or throws to fail the attempt.
    ///
    /// - Parameters:
    ///   - request: the method, the arguments and the call's options.
    ///   - context: the endpoint chosen for this attempt, and which attempt
    ///     it is.
    ///   - next: the next interceptor in scope, or the pool and the server
    ///     after the last.
    /// - Returns: the response `next` returned, passed on unchanged.
    func intercept(
        _ request: ClientRequest,
        context: ClientContext,
        next: (ClientRequest, ClientContext) async throws -> ClientResponse
    ) async throws -> ClientResponse
}

/// A call as client interceptors see it.
public struct ClientRequest: Sendable {
    /// "Service.Method".
    public let serviceMethod: String
    /// The arguments, encoded when the request is written.
    public let arguments: any Encodable & Sendable
    /// Deadline, trace context and the rest; interceptors may change them.
    public var options: RPCCallOptions

    /// A request with every value given; the client makes one per attempt.
    public init(serviceMethod: String, arguments: any Encodable & Sendable, options: RPCCallOptions) {
        self.serviceMethod = serviceMethod
        self.arguments = arguments
        self.options = options
    }
}

/// The decoded reply, as client interceptors see it. Pass it on unchanged:
/// the caller gets it back as the type it asked for.
public struct ClientResponse: Sendable {
    /// The reply, decoded as the type the caller asked for.
    public let reply: any Sendable
    /// When the attempt had its stream (as
    /// ``Swift/ContinuousClock/Instant/timeSinceReference``), set by the
    /// client's last step: the balancer's latency starts there. A response
    /// an interceptor makes anew has none, and the latency starts with the
    /// attempt.
    package var streamInHand: Duration?

    /// A response carrying `reply`.
    public init(reply: any Sendable) {
        self.reply = reply
    }
}

/// Where an attempt goes.
public struct ClientContext: Sendable {
    /// "Service.Method".
    public let serviceMethod: String
    /// The server the balancer chose for this attempt.
    public let endpoint: SocketAddress
    /// 1 for the first attempt, 2 for the first retry, and so on.
    public let attempt: Int

    /// A context with every value given; the client makes one per attempt.
    public init(serviceMethod: String, endpoint: SocketAddress, attempt: Int) {
        self.serviceMethod = serviceMethod
        self.endpoint = endpoint
        self.attempt = attempt
    }
}
