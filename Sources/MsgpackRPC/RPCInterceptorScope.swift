/// Which calls an interceptor applies to: all, those of some services, or
/// some methods.
///
///     .apply(LoggingInterceptor(), to: .all)
///     .apply(RateLimitingInterceptor(...), to: .services(["KV"]))
///     .apply(AuditInterceptor(), to: .methods(["KV.Delete"]))
public struct RPCInterceptorScope: Sendable, Hashable {
    private enum Wrapped: Sendable, Hashable {
        case all
        case services(Set<String>)
        case methods(Set<String>)
    }

    private let wrapped: Wrapped
    private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

    /// Every call.
    public static let all = RPCInterceptorScope(.all)
    /// Calls to these services ("Service" of "Service.Method").
    public static func services(_ names: Set<String>) -> Self { .init(.services(names)) }
    /// Calls to these methods, each named "Service.Method".
    public static func methods(_ serviceMethods: Set<String>) -> Self { .init(.methods(serviceMethods)) }

    /// Whether a call to `serviceMethod` ("Service.Method") is in scope.
    public func contains(_ serviceMethod: String) -> Bool {
        switch wrapped {
        case .all:
            return true
        case .methods(let names):
            return names.contains(serviceMethod)
        case .services(let names):
            guard let dot = serviceMethod.lastIndex(of: ".") else { return false }
            return names.contains(String(serviceMethod[..<dot]))
        }
    }
}

/// An interceptor and the calls it applies to.
public struct RPCScopedInterceptor<Interceptor: Sendable>: Sendable {
    /// The interceptor.
    public let interceptor: Interceptor
    /// The calls it runs on.
    public let scope: RPCInterceptorScope

    /// `interceptor`, run on the calls in `scope`.
    public static func apply(_ interceptor: Interceptor, to scope: RPCInterceptorScope = .all) -> Self {
        Self(interceptor: interceptor, scope: scope)
    }
}

extension Array {
    /// Runs a chain of scoped interceptors around `terminal`: each element in
    /// scope for `serviceMethod` gets `invoke`d with a `next` that goes on to
    /// the following one, and the last `next` is `terminal`. Client and
    /// server interceptors share this walk. (The closures are escaping only
    /// because each `next` captures them; none outlives the call.)
    package func intercept<Interceptor, Request, Context, Response>(
        serviceMethod: String,
        _ request: Request,
        _ context: Context,
        invoke: @escaping (Interceptor, Request, Context, (Request, Context) async throws -> Response) async throws -> Response,
        terminal: @escaping (Request, Context) async throws -> Response
    ) async throws -> Response where Element == RPCScopedInterceptor<Interceptor> {
        try await intercept(from: startIndex, serviceMethod: serviceMethod, request, context, invoke: invoke, terminal: terminal)
    }

    private func intercept<Interceptor, Request, Context, Response>(
        from index: Int,
        serviceMethod: String,
        _ request: Request,
        _ context: Context,
        invoke: @escaping (Interceptor, Request, Context, (Request, Context) async throws -> Response) async throws -> Response,
        terminal: @escaping (Request, Context) async throws -> Response
    ) async throws -> Response where Element == RPCScopedInterceptor<Interceptor> {
        guard let next = self[index...].firstIndex(where: { $0.scope.contains(serviceMethod) }) else {
            return try await terminal(request, context)
        }
        return try await invoke(self[next].interceptor, request, context) { request, context in
            try await intercept(from: next + 1, serviceMethod: serviceMethod, request, context, invoke: invoke, terminal: terminal)
        }
    }
}
