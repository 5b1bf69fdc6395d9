import DemoServices
import Foundation
import TestSupport
import MsgpackRPC
import MuxRPC
import NIOCore
import Testing

/// Interop with HashiCorp's Go stack as Consul's and Nomad's RPC ports speak
/// it: the Go peer (Tests/GoPeers/rpc-peer, Debian's hashicorp/yamux and
/// net-rpc-msgpackrpc, Go's crypto/tls) dials and serves with the real
/// preambles, over real TCP on 127.0.0.1, in every mode with and without TLS,
/// both directions. Skipped with a message when Go or the packages are
/// missing, unless CI=true (then they fail).
@Suite("Go interop: preambles, yamux and TLS", .serialized, .timeLimit(.minutes(5)))
struct PreambleGoInteropTests {
    static let modes: [ConnectionMode] = [.consulMultiplex, .nomadMultiplex, .plain]

    @Test("a Go client calls MuxRPCServer", arguments: modes, [false, true])
    func goClientCallsSwiftServer(mode: ConnectionMode, tls: Bool) async throws {
        guard try GoPeer.available() else { return }
        var configuration = MuxRPCServer.Configuration.patient()
        if tls {
            configuration.preamble.tls = try await TestCertificates.serverContext()
            configuration.preamble.requireTLS = true  // so the Go client cannot have got through without it
        }
        let server = MuxRPCServer(services: DemoServices.registry, configuration: configuration)
        let address = try await server.start()
        var arguments = ["client", "-addr", "127.0.0.1:\(address.port!)", "-mode", mode.goPeerName, "-streams", "64"]
        if tls {
            arguments += ["-tls-ca", try await TestCertificates.files().authority, "-server-name", "localhost"]
        }
        let peer = try await GoPeerProcess.start("rpc-peer", arguments: arguments)
        defer { peer.terminate() }
        let summary = try await peer.waitForLine(prefix: "checks=", timeout: 300)
        let status = try await peer.waitForExit(timeout: 60)
        #expect(status == 0, "Go client: checks=\(summary); stderr: \(peer.standardError)")
        #expect(summary.hasSuffix("failures=0"), "stderr: \(peer.standardError)")
        await server.shutdown()
    }

    @Test("MuxRPCConnection calls a Go server: every demo service, errors, payload and int64 limits", arguments: modes, [false, true])
    func swiftClientCallsGoServer(mode: ConnectionMode, tls: Bool) async throws {
        guard try GoPeer.available() else { return }
        let peer = try await GoPeerProcess.start("rpc-peer", arguments: try await goServerArguments(tls: tls))
        defer { peer.terminate() }
        let connection = try await connect(mode: mode, tls: tls, port: try await peer.listeningPort())
        let client = try await connection.openStream()
        // The Go server read the preamble we meant to send.
        let accepted = try await peer.waitForLine(prefix: "conn ")
        #expect(accepted == "mode=\(mode.goPeerName) tls=\(tls)")

        _ = try await client.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self)
        for size in payloadSizes {
            let message = pattern(size)
            let reply = try await client.call("Echo.Echo", DemoServices.EchoArgs(msg: message), returning: DemoServices.EchoReply.self)
            #expect(reply.msg == message, "Echo.Echo of \(size) bytes")
        }
        for (a, b, sum) in additions {
            let reply = try await client.call("Arith.Add", DemoServices.AddArgs(a: a, b: b), returning: DemoServices.AddReply.self)
            #expect(reply.sum == sum, "\(a) + \(b)")
        }
        let failure = await #expect(throws: RPCError.self) {
            _ = try await client.call("Test.Fail", DemoServices.FailArgs(message: "boom from Swift"), returning: RPCEmpty.self)
        }
        #expect(failure?.code == .serverError)
        #expect(failure?.message == "boom from Swift")
        #expect(failure?.isStreamUsable == true)
        let service = await #expect(throws: RPCError.self) {
            _ = try await client.call("Nope.Ping", RPCEmpty(), returning: RPCEmpty.self)
        }
        #expect(service?.message == "rpc: can't find service Nope.Ping")
        let method = await #expect(throws: RPCError.self) {
            _ = try await client.call("Arith.Nope", RPCEmpty(), returning: RPCEmpty.self)
        }
        #expect(method?.message == "rpc: can't find method Arith.Nope")
        _ = try await client.call("Test.Sleep", DemoServices.SleepArgs(ms: 1), returning: RPCEmpty.self)
        // Still in step after all the error replies.
        let last = try await client.call("Arith.Add", DemoServices.AddArgs(a: 40, b: 2), returning: DemoServices.AddReply.self)
        #expect(last.sum == 42)
        #expect(client.isUsable)

        // 64 streams at once (in plain mode, 64 connections), each with its own calls.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<64 {
                group.addTask {
                    let stream = try await connection.openStream()
                    for call in 0..<8 {
                        let a = Int64(lane) * 1_000_000 + Int64(call)
                        let sum = try await stream.call("Arith.Add", DemoServices.AddArgs(a: a, b: -7), returning: DemoServices.AddReply.self)
                        #expect(sum.sum == a - 7)
                        let message = pattern(lane * 97 + call)
                        let echo = try await stream.call("Echo.Echo", DemoServices.EchoArgs(msg: message), returning: DemoServices.EchoReply.self)
                        #expect(echo.msg == message)
                    }
                    try await stream.close()
                }
            }
            try await group.waitForAll()
        }
        try await client.close()
        await connection.close()
    }

    @Test("a Go server answers requests whose headers carry our deadline and trace context", arguments: modes, [false, true])
    func goServerAnswersRequestsWithExtensionKeys(mode: ConnectionMode, tls: Bool) async throws {
        guard try GoPeer.available() else { return }
        let peer = try await GoPeerProcess.start("rpc-peer", arguments: try await goServerArguments(tls: tls))
        defer { peer.terminate() }
        let connection = try await connect(mode: mode, tls: tls, port: try await peer.listeningPort())
        let client = try await connection.openStream()
        let options = RPCCallOptions(
            timeout: .seconds(300),
            deadline: .after(.seconds(600)),
            propagatesDeadline: true,
            traceContext: RPCTraceContext(
                traceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                traceState: "congo=t61rcWkgMzE"
            )
        )
        for call in 0..<3 {
            let reply = try await client.call("Arith.Add", DemoServices.AddArgs(a: Int64(call), b: .max - 2), returning: DemoServices.AddReply.self, options: options)
            #expect(reply.sum == .max - 2 + Int64(call))
        }
        let message = pattern(70_000)
        let echo = try await client.call("Echo.Echo", DemoServices.EchoArgs(msg: message), returning: DemoServices.EchoReply.self, options: options)
        #expect(echo.msg == message)
        let failure = await #expect(throws: RPCError.self) {
            _ = try await client.call("Test.Fail", DemoServices.FailArgs(message: "with extensions"), returning: RPCEmpty.self, options: options)
        }
        #expect(failure?.message == "with extensions")
        let method = await #expect(throws: RPCError.self) {
            _ = try await client.call("Echo.Nope", RPCEmpty(), returning: RPCEmpty.self, options: options)
        }
        #expect(method?.message == "rpc: can't find method Echo.Nope")
        #expect(client.isUsable)
        try await client.close()
        await connection.close()
    }
}

extension ConnectionMode {
    /// The rpc-peer's `-mode` for this mode (and what its server prints).
    var goPeerName: String {
        switch self {
        case .plain: return "plain"
        case .consulMultiplex: return "consul"
        case .nomadMultiplex: return "nomad"
        }
    }
}


/// Arguments for an rpc-peer server that speaks the preambles, offering
/// TLS with the test certificate when `tls`.
func goServerArguments(tls: Bool, lie: Bool = false) async throws -> [String] {
    var arguments = ["server", "-preamble"]
    if tls {
        let files = try await TestCertificates.files()
        arguments += ["-tls-cert", files.certificate, "-tls-key", files.privateKey]
    }
    if lie { arguments.append("-lie") }
    return arguments
}

/// A MuxRPCConnection to 127.0.0.1:`port` in `mode`, through TLS when `tls`.
func connect(mode: ConnectionMode, tls: Bool, port: Int) async throws -> MuxRPCConnection {
    try await MuxRPCConnection.connect(
        to: try SocketAddress(ipAddress: "127.0.0.1", port: port),
        configuration: .init(mode: mode, tls: tls ? try await TestCertificates.clientContext() : nil, serverHostname: tls ? "localhost" : nil)
    )
}
