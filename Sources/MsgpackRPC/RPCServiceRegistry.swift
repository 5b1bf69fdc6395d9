import MessagePack
import NIOCore

/// The services a server offers: named methods with `Codable` arguments and
/// replies, served by async handlers.
///
///     var registry = RPCServiceRegistry()
///     registry.register(service: "Arith", method: "Add") { (args: AddArgs, context) in
///         AddReply(sum: args.a + args.b)
///     }
///     registry.register(MyStatusService())   // an RPCService
///
/// Registering the same "Service.Method" twice replaces the first handler.
public struct RPCServiceRegistry: Sendable {
    /// Handlers by full "Service.Method": one dictionary lookup per request.
    private var methods: [String: RPCMethod] = [:]
    /// Service names, only to tell "can't find service" from "can't find method".
    private var services: Set<String> = []

    /// An empty registry.
    public init() {}

    /// Registers `handler` as `service`.`method`.
    public mutating func register<Arguments: Decodable & Sendable, Reply: Encodable & Sendable>(
        service: String,
        method: String,
        arguments: Arguments.Type = Arguments.self,
        _ handler: @escaping @Sendable (Arguments, RPCServerContext) async throws -> Reply
    ) {
        precondition(!service.isEmpty && !service.contains(".") && !method.isEmpty && !method.contains("."),
                     "service and method names must be non-empty and contain no dot")
        services.insert(service)
        methods[service + "." + method] = RPCMethod(handler)
    }

    /// Registers `handler` as `service`.`method`, to run inline on the
    /// stream's event loop as soon as its request has arrived: no task is
    /// made for the call and no thread is crossed, which saves the task's
    /// allocations and a trip through the loop's queue.
    ///
    /// For methods that compute their reply from their arguments and return:
    /// the handler must not block (no file or network I/O, no locks held for
    /// long, no sleeping), because while it runs the event loop serves no
    /// other stream or connection. Anything that waits belongs in
    /// ``register(service:method:arguments:_:)``.
    ///
    /// With server interceptors configured the handler runs inside them,
    /// in a task, like any other method.
    public mutating func registerInline<Arguments: Decodable & Sendable, Reply: Encodable & Sendable>(
        service: String,
        method: String,
        arguments: Arguments.Type = Arguments.self,
        _ handler: @escaping @Sendable (Arguments, RPCServerContext) throws -> Reply
    ) {
        precondition(!service.isEmpty && !service.contains(".") && !method.isEmpty && !method.contains("."),
                     "service and method names must be non-empty and contain no dot")
        services.insert(service)
        methods[service + "." + method] = RPCMethod(inline: handler)
    }

    /// Registers every method of `service`.
    public mutating func register(_ service: some RPCService) {
        service.register(into: &self)
    }

    /// The registered "Service.Method" names, sorted.
    public var methodNames: [String] { methods.keys.sorted() }

    /// The handler for `serviceMethod`, or net/rpc's exact error text.
    func lookup(_ serviceMethod: String) -> Result<RPCMethod, RPCError> {
        if let method = methods[serviceMethod] { return .success(method) }
        // The same checks, in the same order and with the same texts, as Go's
        // (*rpc.Server).readRequestHeader.
        guard let dot = serviceMethod.lastIndex(of: ".") else {
            return .failure(RPCError(serverError: "rpc: service/method request ill-formed: " + serviceMethod))
        }
        if !services.contains(String(serviceMethod[..<dot])) {
            return .failure(RPCError(serverError: "rpc: can't find service " + serviceMethod))
        }
        return .failure(RPCError(serverError: "rpc: can't find method " + serviceMethod))
    }
}

/// A group of methods under one service name, registered together.
public protocol RPCService: Sendable {
    /// Adds the service's methods to `registry`.
    func register(into registry: inout RPCServiceRegistry)
}

/// One method, type-erased: decodes the arguments, runs the handler and
/// writes the whole response (header and body) into one buffer.
struct RPCMethod: Sendable {
    let invoke: @Sendable (_ body: ByteBuffer, _ context: RPCServerContext, _ coders: RPCServerCoders) async -> ByteBuffer
    /// For methods registered inline: the same, without suspending. Used
    /// only when no interceptor is configured (interceptors are async).
    let invokeInline: (@Sendable (_ body: ByteBuffer, _ context: RPCServerContext, _ coders: RPCServerCoders) -> ByteBuffer)?

    init<Arguments: Decodable & Sendable, Reply: Encodable & Sendable>(
        _ handler: @escaping @Sendable (Arguments, RPCServerContext) async throws -> Reply
    ) {
        invokeInline = nil
        invoke = { body, context, coders in
            let arguments: Arguments
            switch RPCMethod.decode(Arguments.self, from: body, context: context, coders: coders) {
            case .success(let decoded): arguments = decoded
            case .failure(let response): return response.buffer
            }
            do {
                let reply: Reply
                if coders.interceptors.isEmpty {
                    reply = try await handler(arguments, context)
                } else {
                    reply = try await RPCMethod.intercepted(arguments, context: context, coders: coders, handler: handler)
                }
                return RPCMethod.response(reply, context: context, coders: coders)
            } catch {
                return coders.errorResponse(RPCMethod.message(for: error, context: context), context: context)
            }
        }
    }

    init<Arguments: Decodable & Sendable, Reply: Encodable & Sendable>(
        inline handler: @escaping @Sendable (Arguments, RPCServerContext) throws -> Reply
    ) {
        let inline: @Sendable (ByteBuffer, RPCServerContext, RPCServerCoders) -> ByteBuffer = { body, context, coders in
            let arguments: Arguments
            switch RPCMethod.decode(Arguments.self, from: body, context: context, coders: coders) {
            case .success(let decoded): arguments = decoded
            case .failure(let response): return response.buffer
            }
            do {
                return RPCMethod.response(try handler(arguments, context), context: context, coders: coders)
            } catch {
                return coders.errorResponse(RPCMethod.message(for: error, context: context), context: context)
            }
        }
        invokeInline = inline
        // With interceptors (and wherever a task is wanted) it is served as
        // an async method that happens never to suspend.
        invoke = RPCMethod(handler).invoke
    }

    /// The arguments, or the error response saying why they do not decode.
    private static func decode<Arguments: Decodable>(
        _ type: Arguments.Type, from body: ByteBuffer, context: RPCServerContext, coders: RPCServerCoders
    ) -> Result<Arguments, ResponseBuffer> {
        do {
            return .success(try coders.decoder.decode(Arguments.self, fromScanned: body))
        } catch {
            return .failure(ResponseBuffer(coders.errorResponse(
                "rpc: cannot decode the arguments of \(context.serviceMethod) as \(Arguments.self): \(error)",
                context: context)))
        }
    }

    /// Runs `handler` inside the server's interceptors.
    private static func intercepted<Arguments: Sendable, Reply: Sendable>(
        _ arguments: Arguments,
        context: RPCServerContext,
        coders: RPCServerCoders,
        handler: @escaping @Sendable (Arguments, RPCServerContext) async throws -> Reply
    ) async throws -> Reply {
        let response = try await coders.interceptors.intercept(
            serviceMethod: context.serviceMethod, RPCServerRequest(arguments: arguments), context,
            invoke: { interceptor, request, context, next in
                try await interceptor.intercept(request, context: context, next: next)
            },
            terminal: { _, context in RPCServerResponse(reply: try await handler(arguments, context)) }
        )
        guard let typed = response.reply as? Reply else {
            throw RPCError(serverError: "an interceptor replaced the reply of \(context.serviceMethod) with a \(type(of: response.reply))")
        }
        return typed
    }

    /// The whole response for `reply`: header and body in one buffer, the
    /// stream's last response buffer reused when the transport has let go
    /// of it.
    private static func response<Reply: Encodable>(_ reply: Reply, context: RPCServerContext, coders: RPCServerCoders) -> ByteBuffer {
        var response = coders.spareBuffer ?? coders.allocator.buffer(capacity: 64 + context.serviceMethod.utf8.count)
        response.clear()
        RPCResponseHeader(serviceMethod: context.serviceMethod, seq: context.seq).write(to: &response)
        do {
            try coders.encoder.encode(reply, into: &response)
        } catch {
            return coders.errorResponse("rpc: cannot encode the reply of \(context.serviceMethod): \(error)", context: context)
        }
        return response
    }

    /// The `Error` text for what a handler threw.
    static func message(for error: any Error, context: RPCServerContext) -> String {
        switch error {
        case let error as RPCError:
            return error.message
        case is CancellationError:
            if let deadline = context.deadline, deadline.hasPassed {
                return "deadline exceeded while serving \(context.serviceMethod)"
            }
            return "cancelled while serving \(context.serviceMethod)"
        default:
            return String(describing: error)
        }
    }
}

/// An error response, as the failure of a `Result` (ByteBuffer is no Error).
private struct ResponseBuffer: Error {
    var buffer: ByteBuffer
    init(_ buffer: ByteBuffer) { self.buffer = buffer }
}

/// What a method needs to read arguments and write a response.
struct RPCServerCoders: Sendable {
    var encoder: MessagePackEncoder
    var decoder: MessagePackDecoder
    var allocator: ByteBufferAllocator
    var interceptors: [RPCScopedInterceptor<any RPCServerInterceptor>] = []
    /// The stream's previous response buffer, to write this response into
    /// (no allocation when nothing else holds it any more).
    var spareBuffer: ByteBuffer? = nil

    /// A net/rpc error response: the header with `Error` set, then an empty
    /// struct (0x80) as body, as Go's server sends `invalidRequest`.
    func errorResponse(_ message: String, context: RPCServerContext) -> ByteBuffer {
        RPCServerCoders.errorResponse(message, serviceMethod: context.serviceMethod, seq: context.seq, allocator: allocator)
    }

    static func errorResponse(_ message: String, serviceMethod: String, seq: UInt64, allocator: ByteBufferAllocator) -> ByteBuffer {
        var response = allocator.buffer(capacity: 32 + message.utf8.count + serviceMethod.utf8.count)
        RPCResponseHeader(serviceMethod: serviceMethod, seq: seq, error: message).write(to: &response)
        response.writeInteger(UInt8(0x80))
        return response
    }
}
