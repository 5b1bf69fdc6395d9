/// Runs around a server's handlers: to log, measure, trace, authorize or
/// rate-limit the calls it serves.
///
/// An interceptor sees each request once its arguments are decoded. It calls
/// `next` to go on to the next interceptor (and in the end the handler), or
/// throws to answer with an error instead: the thrown error's text becomes
/// the net/rpc error reply, as a handler's would. It may change the context
/// it passes on.
///
/// Register interceptors in ``RPCServer/Configuration/interceptors``; the
/// first one listed runs outermost.
public protocol RPCServerInterceptor: Sendable {
    /// Handles one call: calls `next` with the request and context to go on
    /// and returns its response, or throws to answer with an error.
    ///
    /// - Parameters:
    ///   - request: the call's decoded arguments.
    ///   - context: the method, the caller's deadline and trace context, the
    ///     peer's address.
    ///   - next: the next interceptor in scope, or the handler after the last.
    /// - Returns: the response `next` returned; another response of the same
    ///   reply type would do too.
    func intercept(
        _ request: RPCServerRequest,
        context: RPCServerContext,
        next: (RPCServerRequest, RPCServerContext) async throws -> RPCServerResponse
    ) async throws -> RPCServerResponse
}

/// A request as server interceptors see it.
public struct RPCServerRequest: Sendable {
    /// The decoded arguments, as the handler will get them.
    public let arguments: any Sendable
}

/// A handler's reply as server interceptors see it. Interceptors pass it on;
/// replacing it with a value of another type fails the call.
public struct RPCServerResponse: Sendable {
    /// The handler's reply.
    public let reply: any Sendable
}
