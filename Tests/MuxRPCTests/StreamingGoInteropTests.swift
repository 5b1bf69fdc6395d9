import DemoServices
import Foundation
import MsgpackRPC
import MuxRPC
import NIOCore
import Testing
import TestSupport

/// Nomad's `FsLogsRequest`, the fields the Go peer reads.
private struct FsLogsRequest: Codable, Sendable {
    var allocID = "alloc-1"
    var task = "web"
    var logType = "stdout"
    var offset: Int64 = 0
    var origin = "start"
    var plainText = false
    var follow: Bool
    enum CodingKeys: String, CodingKey {
        case allocID = "AllocID", task = "Task", logType = "LogType", offset = "Offset"
        case origin = "Origin", plainText = "PlainText", follow = "Follow"
    }
}

/// Nomad's `StreamErrWrapper{Error *RpcError, Payload []byte}`.
private struct StreamFrame: Codable, Sendable {
    struct RPCErrorBody: Codable, Sendable {
        var message: String
        var code: Int64?
        enum CodingKeys: String, CodingKey { case message = "Message", code = "Code" }
    }
    var error: RPCErrorBody?
    var payload: [UInt8]
    enum CodingKeys: String, CodingKey { case error = "Error", payload = "Payload" }
}

/// Streaming calls against a Go peer that speaks Nomad's streaming RPC
/// (Tests/GoPeers/stream-peer: Debian's hashicorp/yamux and go-msgpack), both
/// ways. Skipped with a message when Go or the packages are missing, unless
/// CI=true (then they fail).
@Suite("Go interop: streaming calls", .serialized, .timeLimit(.minutes(5)))
struct StreamingGoInteropTests {
    @Test("a Swift client streams FileSystem.Logs frames from the Go server, in order, to EOF", arguments: [ConnectionMode.nomadMultiplex, .plain])
    func swiftClientStreamsFromGoServer(mode: ConnectionMode) async throws {
        guard try GoPeer.available() else { return }
        let peer = try await GoPeerProcess.start("stream-peer", arguments: ["server", "-frames", "2000"])
        defer { peer.terminate() }
        let port = try await peer.listeningPort()
        let connection = try await MuxRPCConnection.connect(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: port), configuration: .init(mode: mode)
        )
        var lines: [String] = []
        for try await frame in connection.stream("FileSystem.Logs", FsLogsRequest(follow: false), of: StreamFrame.self) {
            #expect(frame.error == nil)
            lines.append(String(decoding: frame.payload, as: UTF8.self))
        }
        #expect(lines == (0..<2000).map { "line \($0)\n" })

        let error = await #expect(throws: RPCError.self) {
            for try await _ in connection.stream("FileSystem.Nothing", FsLogsRequest(follow: false), of: StreamFrame.self) {}
        }
        #expect(error?.code == .serverError)
        #expect(error?.message == "Unknown rpc method: \"FileSystem.Nothing\"")
        await connection.close()
    }

    @Test("cancelling the Swift task resets the stream while the Go handler is still writing")
    func cancellingResetsGoHandler() async throws {
        guard try GoPeer.available() else { return }
        let peer = try await GoPeerProcess.start("stream-peer", arguments: ["server"])
        defer { peer.terminate() }
        let port = try await peer.listeningPort()
        let connection = try await MuxRPCConnection.connect(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: port), configuration: .init(mode: .nomadMultiplex)
        )
        let (received, receivedContinuation) = AsyncStream.makeStream(of: Int.self)
        let following = Task {
            var count = 0
            for try await frame in connection.stream("FileSystem.Logs", FsLogsRequest(follow: true), of: StreamFrame.self) {
                #expect(String(decoding: frame.payload, as: UTF8.self) == "line \(count)\n")
                count += 1
                if count == 100 { receivedContinuation.yield(count) }
            }
            return count
        }
        // Once frames flow, the Go handler is writing (or waiting for window
        // to write): cancel the caller.
        for await _ in received { break }
        following.cancel()
        _ = try? await following.value
        let ended = try await peer.waitForLine(prefix: "follow ended ")
        #expect(ended.hasSuffix("reset=true"), "Go handler: \(ended); stderr: \(peer.standardError)")
        // The session outlives the reset stream.
        var lines = 0
        peerFrames: for try await _ in connection.stream("FileSystem.Logs", FsLogsRequest(follow: false), of: StreamFrame.self) {
            lines += 1
            if lines > 100 { break peerFrames }
        }
        #expect(lines == 100)
        await connection.close()
    }

    @Test("a Go client streams Stream.Count and Stream.Echo from MuxRPCServer, calls at once on one session")
    func goClientStreamsFromSwiftServer() async throws {
        guard try GoPeer.available() else { return }
        let server = MuxRPCServer(services: DemoServices.registry, streaming: DemoStreamingServices.registry, configuration: .patient())
        let address = try await server.start()
        let peer = try await GoPeerProcess.start(
            "stream-peer", arguments: ["client", "-addr", "127.0.0.1:\(address.port!)", "-count", "3000", "-echoes", "200", "-calls", "8"]
        )
        defer { peer.terminate() }
        let summary = try await peer.waitForLine(prefix: "checks=", timeout: 300)
        let status = try await peer.waitForExit(timeout: 60)
        #expect(status == 0, "Go client: checks=\(summary); stderr: \(peer.standardError)")
        #expect(summary.hasSuffix("failures=0"), "stderr: \(peer.standardError)")
        await server.shutdown()
    }
}
