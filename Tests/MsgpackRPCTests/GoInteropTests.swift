import DemoServices
import Foundation
import TestSupport
import MsgpackRPC
import NIOCore
import Testing

/// Interop with Go's net/rpc + hashicorp/net-rpc-msgpackrpc (Debian's
/// packages), over raw TCP on 127.0.0.1, both directions. Skipped with a
/// message when Go or the packages are missing, unless CI=true (then they fail).
@Suite(.serialized, .timeLimit(.minutes(5))) struct GoInteropTests {
    @Test func swiftClientCallsGoServer() async throws {
        guard try GoPeer.available() else { return }
        let peer = try await GoPeerProcess.start("rpc-peer", arguments: ["server"])
        defer { peer.terminate() }
        let port = try await peer.listeningPort()
        let client = try await connectRPCClient(port: port)

        _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        for size in payloadSizes {
            let message = pattern(size)
            let reply = try await client.call("Echo.Echo", EchoArgs(msg: message), returning: EchoReply.self)
            #expect(reply.msg == message, "size \(size)")
        }
        for (a, b, sum) in additions {
            let reply = try await client.call("Arith.Add", AddArgs(a: a, b: b), returning: AddReply.self)
            #expect(reply.sum == sum, "\(a) + \(b)")
        }
        let failure = await expectRPCError {
            _ = try await client.call("Test.Fail", DemoServices.FailArgs(message: "boom from Swift"), returning: RPCEmpty.self)
        }
        #expect(failure?.code == .serverError)
        #expect(failure?.message == "boom from Swift")
        #expect(failure?.isStreamUsable == true)
        let service = await expectRPCError { _ = try await client.call("Nope.Ping", RPCEmpty(), returning: RPCEmpty.self) }
        #expect(service?.message == "rpc: can't find service Nope.Ping")
        let method = await expectRPCError { _ = try await client.call("Arith.Nope", RPCEmpty(), returning: RPCEmpty.self) }
        #expect(method?.message == "rpc: can't find method Arith.Nope")
        _ = try await client.call("Test.Sleep", DemoServices.SleepArgs(ms: 1), returning: RPCEmpty.self)
        // Still in step after all the error replies.
        let last = try await client.call("Arith.Add", AddArgs(a: 40, b: 2), returning: AddReply.self)
        #expect(last.sum == 42)
        #expect(client.isUsable)
        try await client.close()
    }

    @Test func goServerAnswersRequestsWithExtensionKeys() async throws {
        guard try GoPeer.available() else { return }
        let peer = try await GoPeerProcess.start("rpc-peer", arguments: ["server"])
        defer { peer.terminate() }
        let client = try await connectRPCClient(port: try await peer.listeningPort())
        let options = RPCCallOptions(
            timeout: .seconds(30),
            traceContext: RPCTraceContext(traceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", traceState: "congo=t61rcWkgMzE")
        )
        for call in 0..<3 {
            let reply = try await client.call("Arith.Add", AddArgs(a: Int64(call), b: 1), returning: AddReply.self, options: options)
            #expect(reply.sum == Int64(call) + 1)
        }
        let failure = await expectRPCError {
            _ = try await client.call("Test.Fail", DemoServices.FailArgs(message: "with extensions"), returning: RPCEmpty.self, options: options)
        }
        #expect(failure?.message == "with extensions")
        try await client.close()
    }

    @Test func sixtyFourSwiftStreamsToGoServer() async throws {
        guard try GoPeer.available() else { return }
        let peer = try await GoPeerProcess.start("rpc-peer", arguments: ["server"])
        defer { peer.terminate() }
        let port = try await peer.listeningPort()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for stream in 0..<64 {
                group.addTask {
                    let client = try await connectRPCClient(port: port)
                    for call in 0..<10 {
                        let a = Int64(stream) * 1_000_000 + Int64(call)
                        let reply = try await client.call("Arith.Add", AddArgs(a: a, b: -7), returning: AddReply.self)
                        #expect(reply.sum == a - 7)
                        let message = pattern(stream * 17 + call)
                        let echo = try await client.call("Echo.Echo", EchoArgs(msg: message), returning: EchoReply.self)
                        #expect(echo.msg == message)
                    }
                    try await client.close()
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func goClientCallsSwiftServer() async throws {
        guard try GoPeer.available() else { return }
        let server = try await RPCTestServer.start()
        let peer = try await GoPeerProcess.start("rpc-peer", arguments: ["client", "-addr", "127.0.0.1:\(server.port)", "-streams", "64", "-bench", "2000"])
        defer { peer.terminate() }
        // Not a timing assertion: the rate of Go's CallWithCodec against our server.
        let bench = try await peer.waitForLine(prefix: "bench ", timeout: 120)
        print("Go client -> Swift server, sequential 64-byte Echo: \(bench)")
        let summary = try await peer.waitForLine(prefix: "checks=", timeout: 120)
        let status = try await peer.waitForExit(timeout: 60)
        #expect(status == 0, "Go client: checks=\(summary); stderr: \(peer.standardError)")
        #expect(summary.hasSuffix("failures=0"), "stderr: \(peer.standardError)")
        try await server.stop()
    }
}
