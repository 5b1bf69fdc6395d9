import DemoServices
import Foundation
import MsgpackRPC
import MuxRPC
import NIOCore
import Testing
import TestSupport

/// A Go program playing a Nomad server (Tests/GoPeers/stream-peer
/// `callback`: Debian's hashicorp/yamux, net-rpc-msgpackrpc and go-msgpack)
/// calls a Swift node back over the session the node dialled. Skipped with
/// a message when Go or the packages are missing, unless CI=true (then it
/// fails).
@Suite("Go interop: calls from server to client", .serialized, .timeLimit(.minutes(5)))
struct ServerToClientGoInteropTests {
    @Test("a Go server calls a Swift node's net/rpc and streaming methods over the node's session; an unknown stream byte is reset")
    func goServerCallsSwiftNode() async throws {
        guard try GoPeer.available() else { return }
        let peer = try await GoPeerProcess.start("stream-peer", arguments: ["callback", "-count", "500"])
        defer { peer.terminate() }
        let port = try await peer.listeningPort()
        var configuration = MuxRPCConnection.Configuration(mode: .nomadMultiplex)
        configuration.services = DemoServices.registry
        configuration.streamingServices = DemoStreamingServices.registry
        let connection = try await MuxRPCConnection.connect(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: port), configuration: configuration
        )
        let results = try await peer.waitForLine(prefix: "callback ", timeout: 120)
        #expect(results == "echo=from the go server sum=42 frames=500 unknown=reset", "stderr: \(peer.standardError)")
        let summary = try await peer.waitForLine(prefix: "checks=", timeout: 60)
        #expect(summary.hasSuffix("failures=0"), "stderr: \(peer.standardError)")
        let status = try await peer.waitForExit(timeout: 60)
        #expect(status == 0, "stderr: \(peer.standardError)")
        await connection.close()
    }
}
