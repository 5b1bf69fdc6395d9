import Foundation
import TestSupport
import MuxRPC
import Testing

/// The demo programs as a user runs them: the `muxrpc-server` and
/// `muxrpc-client` executables that `swift build --build-tests` puts next
/// to the test bundle, run as processes over real TCP.
@Suite("muxrpc-server and muxrpc-client", .serialized, .timeLimit(.minutes(5)))
struct ProgramTests {
    @Test("muxrpc-server serves muxrpc-client, which checks every answer; SIGTERM stops the server gracefully", arguments: PreambleGoInteropTests.modes)
    func serverAndClient(mode: ConnectionMode) async throws {
        guard let serverProgram = try builtProgram("muxrpc-server"), let clientProgram = try builtProgram("muxrpc-client") else { return }
        let server = try GoPeerProcess(executable: serverProgram, arguments: ["--host", "127.0.0.1", "--port", "0"])
        defer { server.terminate() }
        let address = try await server.waitForLine(prefix: "listening on ")
        let port = try #require(address.split(separator: ":").last.flatMap { Int($0) })
        #expect(address == "127.0.0.1:\(port)" && port > 0)

        let client = try GoPeerProcess(executable: clientProgram, arguments: [
            "--addr", address, "--mode", mode.goPeerName, "--calls", "1000", "--concurrency", "16", "--payload", "300",
        ])
        defer { client.terminate() }
        let summary = try summaryFields(try await client.waitForLine(prefix: "calls=", timeout: 300))
        let status = try await client.waitForExit(timeout: 60)
        #expect(status == 0, "muxrpc-client: \(summary); stderr: \(client.standardError)")
        #expect(summary["calls"] == "1000" && summary["ok"] == "1000" && summary["errors"] == "0", "\(summary)")
        for field in ["calls_per_s", "p50_us", "p99_us"] {
            #expect(summary[field].flatMap { Double($0) } != nil, "\(field) in \(summary)")
        }

        server.sendTerminationSignal()
        let serverStatus = try await server.waitForExit(timeout: 60)
        // A SIGTERM that found no handler would end it with status 15.
        #expect(serverStatus == 0, "muxrpc-server after SIGTERM; stderr: \(server.standardError)")
    }

    @Test("muxrpc-client counts the wrong answers of a lying Go server and exits non-zero", arguments: PreambleGoInteropTests.modes)
    func clientCountsWrongAnswers(mode: ConnectionMode) async throws {
        guard try GoPeer.available(), let clientProgram = try builtProgram("muxrpc-client") else { return }
        let peer = try await GoPeerProcess.start("rpc-peer", arguments: try await goServerArguments(tls: false, lie: true))
        defer { peer.terminate() }
        let port = try await peer.listeningPort()
        let client = try GoPeerProcess(executable: clientProgram, arguments: [
            "--addr", "127.0.0.1:\(port)", "--mode", mode.goPeerName, "--calls", "400", "--concurrency", "4",
        ])
        defer { client.terminate() }
        let summary = try summaryFields(try await client.waitForLine(prefix: "calls=", timeout: 300))
        let status = try await client.waitForExit(timeout: 60)
        #expect(status != 0, "muxrpc-client exited 0 after wrong answers: \(summary)")
        // Calls go Ping, Add, Fail, Echo in turn; the liar gets every Add and
        // every Echo wrong, and the client must say so for each.
        #expect(summary["calls"] == "400" && summary["ok"] == "200" && summary["errors"] == "200", "\(summary)")
    }
}

extension ProgramTests {
    @Test("muxrpc-client spreads calls over two servers and survives one being killed: at most the calls in flight on it fail")
    func clientSurvivesAKilledServer() async throws {
        guard let serverProgram = try builtProgram("muxrpc-server"), let clientProgram = try builtProgram("muxrpc-client") else { return }
        var servers: [GoPeerProcess] = []
        var addresses: [String] = []
        for _ in 0..<2 {
            let server = try GoPeerProcess(executable: serverProgram, arguments: ["--host", "127.0.0.1", "--port", "0"])
            addresses.append(try await server.waitForLine(prefix: "listening on "))
            servers.append(server)
        }
        defer { servers.forEach { $0.terminate() } }
        let concurrency = 8
        let client = try GoPeerProcess(executable: clientProgram, arguments: [
            "--addr", addresses[0], "--addr", addresses[1], "--calls", "40000", "--concurrency", "\(concurrency)",
        ])
        defer { client.terminate() }
        // Killed once the client reports progress: mid-run, calls in flight on both.
        for _ in 0..<6_000 where !client.standardError.contains("muxrpc-client: ") {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(client.standardError.contains("muxrpc-client: "), "no progress line: \(client.standardError)")
        await servers[1].kill()

        let summary = try summaryFields(try await client.waitForLine(prefix: "calls=", timeout: 600))
        let status = try await client.waitForExit(timeout: 60)
        let ok = try #require(summary["ok"].flatMap { Int($0) })
        let errors = try #require(summary["errors"].flatMap { Int($0) })
        #expect(summary["calls"] == "40000" && ok + errors == 40_000, "\(summary)")
        #expect(errors <= concurrency, "more calls failed than were in flight: \(summary)")
        // Non-zero exactly when a call failed.
        #expect((status == 0) == (errors == 0), "exit status \(status) with \(summary)")
    }
}

/// The fields of muxrpc-client's summary line (`rest` follows its `calls=`).
func summaryFields(_ rest: String) throws -> [String: String] {
    var fields: [String: String] = [:]
    for field in ("calls=" + rest).split(separator: " ") {
        let parts = field.split(separator: "=", maxSplits: 1)
        guard parts.count == 2 else { throw GoPeerError("malformed summary line: calls=\(rest)") }
        fields[String(parts[0])] = String(parts[1])
    }
    return fields
}

/// The executable `name` built beside the test bundle (or in .build/debug).
/// Nil, with a message, when it is missing; with CI=true a missing program
/// fails the test instead.
func builtProgram(_ name: String) throws -> URL? {
    var directories: [URL] = []
    if let bundle = Bundle.main.executableURL {
        directories.append(bundle.resolvingSymlinksInPath().deletingLastPathComponent())
    }
    if let test = CommandLine.arguments.first, test.contains("/") {
        directories.append(URL(fileURLWithPath: test).resolvingSymlinksInPath().deletingLastPathComponent())
    }
    directories.append(GoPeer.packageRoot.appendingPathComponent(".build/debug"))
    for directory in directories {
        let program = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: program.path) { return program }
    }
    let reason = "\(name) is not built (looked in \(directories.map(\.path).joined(separator: ", "))); run swift build --build-tests"
    if GoPeer.isCI { throw GoPeerError("program tests must run in CI, but \(reason)") }
    FileHandle.standardError.write(Data("skipping program test: \(reason)\n".utf8))
    return nil
}
