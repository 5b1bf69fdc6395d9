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
    public let interceptor: Interceptor
    public let scope: RPCInterceptorScope

    /// `interceptor`, run on the calls in `scope`.
    public static func apply(_ interceptor: Interceptor, to scope: RPCInterceptorScope = .all) -> Self {
        Self(interceptor: interceptor, scope: scope)
    }
}
