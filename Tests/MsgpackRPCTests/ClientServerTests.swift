import DemoServices
import Foundation
import TestSupport
import MessagePack
import MsgpackRPC
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

typealias EchoArgs = DemoServices.EchoArgs
typealias EchoReply = DemoServices.EchoReply
typealias AddArgs = DemoServices.AddArgs
typealias AddReply = DemoServices.AddReply

/// Swift client against Swift server over real TCP on 127.0.0.1.
@Suite(.timeLimit(.minutes(5))) struct ClientServerTests {
    @Test func everyDemoService() async throws {
        try await withServerAndClient { _, client in
            _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
            let echo = try await client.call("Echo.Echo", EchoArgs(msg: Array("hello".utf8)), returning: EchoReply.self)
            #expect(echo.msg == Array("hello".utf8))
            let sum = try await client.call("Arith.Add", AddArgs(a: 40, b: 2), returning: AddReply.self)
            #expect(sum.sum == 42)
            _ = try await client.call("Test.Sleep", DemoServices.SleepArgs(ms: 1), returning: RPCEmpty.self)
            let error = await expectRPCError {
                _ = try await client.call("Test.Fail", DemoServices.FailArgs(message: "it broke"), returning: RPCEmpty.self)
            }
            #expect(error?.code == .serverError)
            #expect(error?.message == "it broke")
            #expect(error?.isStreamUsable == true)
            #expect(client.isUsable)
            // The stream goes on after an error reply.
            #expect(try await client.call("Arith.Add", AddArgs(a: 1, b: 1), returning: AddReply.self).sum == 2)
        }
    }

    @Test func unknownServiceAndMethodUseGosTexts() async throws {
        try await withServerAndClient { _, client in
            let service = await expectRPCError { _ = try await client.call("Nope.Ping", RPCEmpty(), returning: RPCEmpty.self) }
            #expect(service?.message == "rpc: can't find service Nope.Ping")
            let method = await expectRPCError { _ = try await client.call("Arith.Nope", RPCEmpty(), returning: RPCEmpty.self) }
            #expect(method?.message == "rpc: can't find method Arith.Nope")
            let illFormed = await expectRPCError { _ = try await client.call("NoDot", RPCEmpty(), returning: RPCEmpty.self) }
            #expect(illFormed?.message == "rpc: service/method request ill-formed: NoDot")
            #expect(service?.isStreamUsable == true && method?.isStreamUsable == true)
            _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        }
    }

    @Test func badBodyGetsAnErrorReplyNotACrash() async throws {
        try await withServerAndClient { _, client in
            let error = await expectRPCError { _ = try await client.call("Arith.Add", "not a struct", returning: AddReply.self) }
            #expect(error?.code == .serverError)
            #expect(error?.message.hasPrefix("rpc: cannot decode the arguments of Arith.Add") == true)
            #expect(error?.isStreamUsable == true)
            // A field of the wrong type.
            let wrongType = await expectRPCError {
                _ = try await client.call("Arith.Add", ["A": "x", "B": "y"], returning: AddReply.self)
            }
            #expect(wrongType?.code == .serverError)
            let result59 = try await client.call("Arith.Add", AddArgs(a: 2, b: 3), returning: AddReply.self)
            #expect(result59.sum == 5)
        }
    }

    @Test func replyThatDoesNotDecodeLeavesTheStreamUsable() async throws {
        try await withServerAndClient { _, client in
            let error = await expectRPCError { _ = try await client.call("Arith.Add", AddArgs(a: 1, b: 2), returning: AddArgs.self) }
            #expect(error?.code == .decodingFailed)
            #expect(error?.isStreamUsable == true)
            let result68 = try await client.call("Arith.Add", AddArgs(a: 2, b: 3), returning: AddReply.self)
            #expect(result68.sum == 5)
        }
    }

    @Test func payloadsAcrossLengthBoundaries() async throws {
        try await withServerAndClient { _, client in
            for size in payloadSizes {
                let message = pattern(size)
                let reply = try await client.call("Echo.Echo", EchoArgs(msg: message), returning: EchoReply.self)
                #expect(reply.msg == message, "size \(size)")
            }
        }
    }

    @Test func int64Extremes() async throws {
        try await withServerAndClient { _, client in
            for (a, b, sum) in additions {
                let result85 = try await client.call("Arith.Add", AddArgs(a: a, b: b), returning: AddReply.self)
                #expect(result85.sum == sum)
            }
            // Wraps like Go's int64 addition.
            let result88 = try await client.call("Arith.Add", AddArgs(a: .max, b: 1), returning: AddReply.self)
            #expect(result88.sum == .min)
        }
    }

    @Test func sixtyFourConcurrentStreams() async throws {
        let server = try await RPCTestServer.start()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for stream in 0..<64 {
                group.addTask {
                    let client = try await connectRPCClient(port: server.port)
                    for call in 0..<20 {
                        let a = Int64(stream * 1000 + call)
                        #expect(try await client.call("Arith.Add", AddArgs(a: a, b: 1), returning: AddReply.self).sum == a + 1)
                        let message = pattern(call * 13)
                        let result102 = try await client.call("Echo.Echo", EchoArgs(msg: message), returning: EchoReply.self)
                        #expect(result102.msg == message)
                    }
                    try await client.close()
                }
            }
            try await group.waitForAll()
        }
        try await server.stop()
    }

    @Test func secondConcurrentCallOnOneStreamIsRefused() async throws {
        let gate = Gate()
        var registry = DemoServices.registry
        registry.register(service: "Block", method: "Wait") { (_: RPCEmpty, _) -> RPCEmpty in
            await gate.enterAndWait()
            return RPCEmpty()
        }
        try await withServerAndClient(registry: registry) { _, client in
            async let first = client.call("Block.Wait", RPCEmpty(), returning: RPCEmpty.self)
            await gate.waitUntilEntered()
            let second = await expectRPCError { _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self) }
            #expect(second?.code == .callInProgress)
            gate.open()
            _ = try await first
            #expect(client.isUsable)
        }
    }

    @Test func cancellationMakesTheStreamUnusable() async throws {
        let gate = Gate()
        let serverSawCancellation = Gate()
        var registry = DemoServices.registry
        registry.register(service: "Block", method: "Forever") { (_: RPCEmpty, _) -> RPCEmpty in
            gate.enter()
            do {
                try await Task.sleep(for: .seconds(3600))
            } catch {
                serverSawCancellation.enter()
                throw error
            }
            return RPCEmpty()
        }
        try await withServerAndClient(registry: registry) { _, client in
            let call = Task { try await client.call("Block.Forever", RPCEmpty(), returning: RPCEmpty.self) }
            await gate.waitUntilEntered()
            call.cancel()
            let error = await expectRPCError { _ = try await call.value }
            #expect(error?.code == .cancelled)
            #expect(error?.isStreamUsable == false)
            #expect(!client.isUsable)
            let next = await expectRPCError { _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self) }
            #expect(next?.code == .streamUnusable)
            // The owner resets the stream; the server then cancels the handler.
            try await client.close()
            await serverSawCancellation.waitUntilEntered()
        }
    }

    @Test func alreadyCancelledTaskSendsNothing() async throws {
        try await withServerAndClient { _, client in
            let task = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
            }
            let error = await expectRPCError { _ = try await task.value }
            #expect(error?.code == .cancelled)
            #expect(error?.isStreamUsable == true)
            _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        }
    }

    @Test func clientTimeoutFailsTheCallAndLeavesTheStreamUnusable() async throws {
        var registry = DemoServices.registry
        registry.register(service: "Block", method: "Forever") { (_: RPCEmpty, _) -> RPCEmpty in
            try await Task.sleep(for: .seconds(3600))
            return RPCEmpty()
        }
        try await withServerAndClient(registry: registry) { _, client in
            // Not propagated: only the client's own timer can end this call.
            let error = await expectRPCError {
                _ = try await client.call("Block.Forever", RPCEmpty(), returning: RPCEmpty.self,
                                          options: RPCCallOptions(timeout: .milliseconds(100), propagatesDeadline: false))
            }
            #expect(error?.code == .deadlineExceeded)
            #expect(error?.isStreamUsable == false)
            #expect(!client.isUsable)
        }
    }

    @Test func serverHonoursThePropagatedDeadline() async throws {
        let entered = Gate()
        let cancelled = Gate()
        var registry = DemoServices.registry
        registry.register(service: "Block", method: "Forever") { (_: RPCEmpty, context) -> RPCEmpty in
            #expect(context.deadline != nil)
            entered.enter()
            do {
                try await Task.sleep(for: .seconds(3600))
            } catch {
                cancelled.enter()
                throw error
            }
            return RPCEmpty()
        }
        try await withServerAndClient(registry: registry) { _, client in
            let error = await expectRPCError {
                _ = try await client.call("Block.Forever", RPCEmpty(), returning: RPCEmpty.self, options: RPCCallOptions(timeout: .milliseconds(200)))
            }
            // Whichever side notices the deadline first ends the call: the
            // client's timer, or the server refusing a request that arrived
            // late (on a busy machine).
            #expect(error?.code == .deadlineExceeded || error?.code == .serverError)
            if entered.isEntered {
                // The handler ran: the server cancels it when the propagated
                // deadline passes, while the client's stream is still open.
                await cancelled.waitUntilEntered()
            }
        }
    }

    @Test func passedDeadlineIsNotSent() async throws {
        try await withServerAndClient { _, client in
            let error = await expectRPCError {
                _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self, options: RPCCallOptions(deadline: .after(.seconds(-1))))
            }
            #expect(error?.code == .deadlineExceeded)
            #expect(error?.isStreamUsable == true)
            _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        }
    }

    @Test func deadlineAndTraceContextReachTheHandler() async throws {
        struct Seen: Codable, Sendable {
            var deadline: Int64?
            var traceParent: String?
            var traceState: String?
            var serviceMethod: String
            var seq: UInt64
        }
        var registry = RPCServiceRegistry()
        registry.register(service: "Ctx", method: "Show") { (_: RPCEmpty, context) in
            Seen(deadline: context.deadline?.unixNanoseconds, traceParent: context.traceContext?.traceParent,
                 traceState: context.traceContext?.traceState, serviceMethod: context.serviceMethod, seq: context.seq)
        }
        try await withServerAndClient(registry: registry) { _, client in
            let deadline = RPCDeadline.after(.seconds(60))
            let trace = RPCTraceContext(traceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", traceState: "a=b")
            let seen = try await client.call("Ctx.Show", RPCEmpty(), returning: Seen.self,
                                             options: RPCCallOptions(deadline: deadline, traceContext: trace))
            #expect(seen.deadline == deadline.unixNanoseconds)
            #expect(seen.traceParent == trace.traceParent)
            #expect(seen.traceState == "a=b")
            #expect(seen.serviceMethod == "Ctx.Show")
            #expect(seen.seq == 1)
            // Without options nothing is sent.
            let plain = try await client.call("Ctx.Show", RPCEmpty(), returning: Seen.self)
            #expect(plain.deadline == nil && plain.traceParent == nil)
            #expect(plain.seq == 2)
            // A deadline not propagated stays local.
            let local = try await client.call("Ctx.Show", RPCEmpty(), returning: Seen.self,
                                              options: RPCCallOptions(timeout: .seconds(60), propagatesDeadline: false))
            #expect(local.deadline == nil)
        }
    }

    /// Methods registered inline for the tests below.
    static var inlineRegistry: RPCServiceRegistry {
        var registry = RPCServiceRegistry()
        registry.registerInline(service: "Inline", method: "OnLoop") { (_: RPCEmpty, context) -> Bool in
            context.eventLoop.inEventLoop
        }
        registry.registerInline(service: "Inline", method: "Add") { (arguments: AddArgs, _) in
            AddReply(sum: arguments.a &+ arguments.b)
        }
        registry.registerInline(service: "Inline", method: "Fail") { (_: RPCEmpty, _) -> RPCEmpty in
            throw RPCError(serverError: "inline failure")
        }
        return registry
    }

    @Test func inlineMethodsRunOnTheStreamsEventLoopAndFailAsAsyncOnesDo() async throws {
        try await withServerAndClient(registry: Self.inlineRegistry) { _, client in
            let onLoop = try await client.call("Inline.OnLoop", RPCEmpty(), returning: Bool.self)
            #expect(onLoop)
            let sum = try await client.call("Inline.Add", AddArgs(a: 2, b: 3), returning: AddReply.self).sum
            #expect(sum == 5)
            let failure = await expectRPCError { _ = try await client.call("Inline.Fail", RPCEmpty(), returning: RPCEmpty.self) }
            #expect(failure?.message == "inline failure" && failure?.isStreamUsable == true)
            let undecodable = await expectRPCError { _ = try await client.call("Inline.Add", "not a struct", returning: AddReply.self) }
            #expect(undecodable?.message.hasPrefix("rpc: cannot decode the arguments of Inline.Add") == true)
            // The stream serves on after both.
            let wrapped = try await client.call("Inline.Add", AddArgs(a: .max, b: 1), returning: AddReply.self).sum
            #expect(wrapped == .min)
        }
    }

    /// Counts the calls it sees and passes them on.
    struct CountingInterceptor: RPCServerInterceptor {
        let seen: NIOLockedValueBox<[String]>
        func intercept(
            _ request: RPCServerRequest,
            context: RPCServerContext,
            next: (RPCServerRequest, RPCServerContext) async throws -> RPCServerResponse
        ) async throws -> RPCServerResponse {
            seen.withLockedValue { $0.append(context.serviceMethod) }
            return try await next(request, context)
        }
    }

    @Test func inlineMethodsRunInsideServerInterceptors() async throws {
        let seen = NIOLockedValueBox<[String]>([])
        let configuration = RPCServer.Configuration(interceptors: [.apply(CountingInterceptor(seen: seen))])
        let server = try await RPCTestServer.start(registry: Self.inlineRegistry, configuration: configuration)
        let client = try await connectRPCClient(port: server.port)
        #expect(try await client.call("Inline.Add", AddArgs(a: 2, b: 3), returning: AddReply.self).sum == 5)
        let failure = await expectRPCError { _ = try await client.call("Inline.Fail", RPCEmpty(), returning: RPCEmpty.self) }
        #expect(failure?.message == "inline failure")
        #expect(seen.withLockedValue { $0 } == ["Inline.Add", "Inline.Fail"])
        try await client.close()
        try await server.stop()
    }

    @Test func handlersOffTheEventLoopWorkToo() async throws {
        let server = try await RPCTestServer.start(configuration: .init(runsHandlersOnEventLoop: false))
        let client = try await connectRPCClient(port: server.port)
        #expect(try await client.call("Arith.Add", AddArgs(a: 3, b: 4), returning: AddReply.self).sum == 7)
        let error = await expectRPCError { _ = try await client.call("Test.Fail", DemoServices.FailArgs(message: "x"), returning: RPCEmpty.self) }
        #expect(error?.message == "x")
        try await client.close()
        try await server.stop()
    }

    @Test func serverClosedMidCallIsConnectionClosed() async throws {
        let gate = Gate()
        var registry = RPCServiceRegistry()
        registry.register(service: "Block", method: "Forever") { (_: RPCEmpty, _) -> RPCEmpty in
            gate.enter()
            try await Task.sleep(for: .seconds(3600))
            return RPCEmpty()
        }
        // Keep hold of the server side of the connection to close it.
        let accepted = NIOLockedValueBox<(any Channel)?>(nil)
        let server = RPCServer(registry: registry)
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0 = channel }
                return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addMsgpackRPCServer(server) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try await connectRPCClient(port: listener.localAddress!.port!)
        let call = Task { try await client.call("Block.Forever", RPCEmpty(), returning: RPCEmpty.self) }
        await gate.waitUntilEntered()
        try await accepted.withLockedValue { $0 }!.close()
        let error = await expectRPCError { _ = try await call.value }
        #expect(error?.code == .connectionClosed)
        #expect(!client.isUsable)
        try? await client.close()
        try await listener.close()
    }

    @Test func quiescingFinishesTheCallInProgressThenCloses() async throws {
        let gate = Gate()
        var registry = DemoServices.registry
        registry.register(service: "Block", method: "Wait") { (_: RPCEmpty, _) -> String in
            await gate.enterAndWait()
            return "finished"
        }
        let accepted = NIOLockedValueBox<[any Channel]>([])
        let server = RPCServer(registry: registry)
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0.append(channel) }
                return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addMsgpackRPCServer(server) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let busy = try await connectRPCClient(port: listener.localAddress!.port!)
        let idle = try await connectRPCClient(port: listener.localAddress!.port!)
        _ = try await idle.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        let call = Task { try await busy.call("Block.Wait", RPCEmpty(), returning: String.self) }
        await gate.waitUntilEntered()
        for channel in accepted.withLockedValue({ $0 }) {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        // The idle stream closes at once; the busy one after its reply.
        try await idle.channel.closeFuture.get()
        gate.open()
        #expect(try await call.value == "finished")
        try await busy.channel.closeFuture.get()
        try await listener.close()
    }

    /// Back-to-back calls on one client, from a task on the global executor
    /// and from one that prefers the client channel's event loop (no thread
    /// hops): every call completes, in order, with its own reply, and the
    /// preferring task really runs on the loop. Speed is not asserted here:
    /// `muxrpc-bench rpc --mode plain --path bare --concurrency 1` measures
    /// this shape (sequential 64-byte Echo on TCP, one call in flight).
    @Test func sequentialCallsFromGlobalAndEventLoopExecutors() async throws {
        try await withServerAndClient { _, client in
            let calls = 500
            let base = pattern(64)
            func callInSequence(checkOnLoop: Bool) async throws -> Int {
                var completed = 0
                for i in 0..<calls {
                    // A different message each call, so a reply can only match its own call.
                    let message = base.map { $0 &+ UInt8(truncatingIfNeeded: i) }
                    let reply = try await client.call("Echo.Echo", EchoArgs(msg: message), returning: EchoReply.self)
                    #expect(reply.msg == message, "call \(i)")
                    if checkOnLoop { #expect(client.channel.eventLoop.inEventLoop, "call \(i) resumed off the loop") }
                    completed += 1
                }
                return completed
            }
            #expect(try await callInSequence(checkOnLoop: false) == calls)
            let onLoop = try await withTaskExecutorPreference(EventLoopTaskExecutor(eventLoop: client.channel.eventLoop)) {
                try await callInSequence(checkOnLoop: true)
            }
            #expect(onLoop == calls)
            // A thousand calls later the client is still open and usable.
            #expect(client.isUsable)
        }
    }
}

/// A one-shot signal between a handler and a test, without sleeps: `enter`
/// marks that something happened, `waitUntilEntered` waits for it; `open`
/// releases whoever waits in `enterAndWait`.
final class Gate: Sendable {
    private struct State {
        var entered = false
        var opened = false
        var enteredWaiters: [CheckedContinuation<Void, Never>] = []
        var openWaiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = NIOLockedValueBox(State())

    func enter() {
        let waiters = state.withLockedValue { state in
            state.entered = true
            defer { state.enteredWaiters = [] }
            return state.enteredWaiters
        }
        waiters.forEach { $0.resume() }
    }

    var isEntered: Bool { state.withLockedValue { $0.entered } }

    func waitUntilEntered() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLockedValue { state in
                if state.entered { return true }
                state.enteredWaiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLockedValue { state in
            state.opened = true
            defer { state.openWaiters = [] }
            return state.openWaiters
        }
        waiters.forEach { $0.resume() }
    }

    func enterAndWait() async {
        enter()
        await withCheckedContinuation { continuation in
            let ready = state.withLockedValue { state in
                if state.opened { return true }
                state.openWaiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
