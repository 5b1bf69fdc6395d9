public import Foundation

/// Builds and runs Go programs that the interop tests talk to (`Tests/GoPeers/<name>/main.go`).
///
/// Peers are built with the Go toolchain in GOPATH mode against Debian's packaged sources
/// (`/usr/share/gocode`), into `.build/go-peers/` under the package root, and rebuilt only when
/// their source is newer than the binary. With `CI=true` a missing toolchain is an error;
/// elsewhere tests may skip with ``GoPeer/unavailableReason``.
public enum GoPeer {
    /// The package root, found from this file's path (Tests/InteropSupport/GoPeer.swift).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Where built peers go (ignored by git as part of `.build`).
    public static var outputDirectory: URL { packageRoot.appendingPathComponent(".build/go-peers") }

    /// Whether we run in CI, where interop tests must run, not skip.
    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// GOPATH entries that hold Debian's Go sources.
    public static let gopath = "/usr/share/gocode"

    /// The Debian Go packages the peers import (yamux for the session peer; net/rpc's msgpack
    /// codec and go-msgpack for the RPC peer).
    public static let defaultPackages = [
        "github.com/hashicorp/yamux",
        "github.com/hashicorp/net-rpc-msgpackrpc",
        "github.com/hashicorp/go-msgpack",
        "github.com/hashicorp/go-multierror",
    ]

    /// The `go` binary, if installed.
    public static var goBinary: String? {
        let candidates = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin")
            .split(separator: ":").map { "\($0)/go" } + ["/usr/lib/go/bin/go", "/usr/bin/go"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Nil when Go peers can be built; otherwise why not.
    public static func unavailableReason(requiring packages: [String] = GoPeer.defaultPackages) -> String? {
        guard goBinary != nil else { return "the Go toolchain is not installed (apt-get install golang-go)" }
        for package in packages {
            let path = "\(gopath)/src/\(package)"
            if !FileManager.default.fileExists(atPath: path) {
                return "Go package \(package) is not installed at \(path) (install Debian's golang-\(package.replacingOccurrences(of: "/", with: "-").replacingOccurrences(of: ".com", with: ""))-dev)"
            }
        }
        return nil
    }

    /// Whether the tests that need Go peers should run: yes if they can, and in CI always (so
    /// that a missing toolchain fails loudly instead of skipping).
    public static func shouldRun(requiring packages: [String] = GoPeer.defaultPackages) -> Bool {
        if let reason = unavailableReason(requiring: packages) {
            if !isCI {
                FileHandle.standardError.write(Data("skipping Go interop test: \(reason)\n".utf8))
            }
            return isCI
        }
        return true
    }

    private static let buildLock = NSLock()

    /// Builds `Tests/GoPeers/<name>` (if out of date) and returns the binary's path.
    public static func build(_ name: String) throws -> URL {
        if let reason = unavailableReason() {
            throw GoPeerError("cannot build Go peer \(name): \(reason)\(isCI ? " (CI=true: interop tests must run)" : "")")
        }
        buildLock.lock()
        defer { buildLock.unlock() }
        let source = packageRoot.appendingPathComponent("Tests/GoPeers/\(name)")
        let output = outputDirectory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        if let binaryDate = modificationDate(output), let sourceDate = newestModification(in: source),
            binaryDate >= sourceDate
        {
            return output
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: goBinary!)
        process.arguments = ["build", "-o", output.path, "."]
        process.currentDirectoryURL = source
        var environment = ProcessInfo.processInfo.environment
        environment["GOPATH"] = gopath
        environment["GO111MODULE"] = "off"
        environment["GOFLAGS"] = nil
        environment["GOCACHE"] = outputDirectory.appendingPathComponent("cache").path
        environment["CGO_ENABLED"] = "0"
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = errors
        try process.run()
        let log = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw GoPeerError("go build of \(name) failed: \(String(decoding: log, as: UTF8.self))")
        }
        return output
    }

    private static func modificationDate(_ url: URL) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date
    }

    private static func newestModification(in directory: URL) -> Date? {
        let files = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? []
        return files.compactMap { modificationDate($0) }.max()
    }
}

/// A failure building or driving a Go peer.
public struct GoPeerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A running Go peer (or any program a test runs, see
/// ``init(executable:arguments:)``): its stdout as lines, and control over its life.
public final class GoPeerProcess: @unchecked Sendable {
    // @unchecked Sendable: `process` is only mutated before it runs; the line buffer is
    // guarded by `condition`.
    private let process = Process()
    private let condition = NSCondition()
    private var lines: [String] = []
    private var partial = Data()
    private var stdoutClosed = false
    private let stderrPipe = Pipe()
    private var stderrData = Data()

    /// Builds (if needed) and starts peer `name` with `arguments`.
    public convenience init(_ name: String, arguments: [String]) throws {
        try self.init(executable: try GoPeer.build(name), arguments: arguments)
    }

    /// Starts the program at `executable` with `arguments`.
    public init(executable: URL, arguments: [String]) throws {
        self.process.executableURL = executable
        self.process.arguments = arguments
        let stdout = Pipe()
        self.process.standardOutput = stdout
        self.process.standardError = self.stderrPipe
        stdout.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.append(data)
            if data.isEmpty { handle.readabilityHandler = nil }
        }
        self.stderrPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                return
            }
            guard let self else { return }
            self.condition.lock()
            self.stderrData.append(data)
            self.condition.unlock()
        }
        try self.process.run()
    }

    private func append(_ data: Data) {
        self.condition.lock()
        defer { self.condition.unlock() }
        if data.isEmpty {
            self.stdoutClosed = true
            if !self.partial.isEmpty {
                self.lines.append(String(decoding: self.partial, as: UTF8.self))
                self.partial.removeAll()
            }
        } else {
            self.partial.append(data)
            while let newline = self.partial.firstIndex(of: UInt8(ascii: "\n")) {
                let line = self.partial[self.partial.startIndex..<newline]
                self.lines.append(String(decoding: line, as: UTF8.self))
                self.partial.removeSubrange(self.partial.startIndex...newline)
            }
        }
        self.condition.broadcast()
    }

    /// The next stdout line if one is there; `.some(nil)` at EOF; nil if none yet.
    private func takeLine() -> String?? {
        self.condition.lock()
        defer { self.condition.unlock() }
        if !self.lines.isEmpty { return .some(self.lines.removeFirst()) }
        return self.stdoutClosed ? .some(nil) : nil
    }

    /// The next stdout line; nil at EOF or after `timeout` seconds. Polls, so it never blocks
    /// a concurrency thread.
    public func readLine(timeout: TimeInterval = 30) async -> String? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            if let line = self.takeLine() { return line }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return nil
    }

    /// Reads lines until one starts with `prefix`; returns the rest of it.
    public func waitForLine(prefix: String, timeout: TimeInterval = 60) async throws -> String {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while let line = await self.readLine(timeout: max(0, deadline.timeIntervalSinceNow)) {
            if line.hasPrefix(prefix) { return String(line.dropFirst(prefix.count)) }
        }
        throw GoPeerError("\(self.name) did not print \"\(prefix)…\"; stderr: \(self.standardError)")
    }

    /// For servers that print `listening on HOST:PORT`: the port.
    public func listeningPort(timeout: TimeInterval = 60) async throws -> Int {
        let address = try await self.waitForLine(prefix: "listening on ", timeout: timeout)
        guard let port = address.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw GoPeerError("cannot parse listening address \(address)")
        }
        return port
    }

    /// The program's file name, for messages.
    public var name: String { self.process.executableURL?.lastPathComponent ?? "peer" }

    /// Everything the peer wrote to stderr so far.
    public var standardError: String {
        self.condition.lock()
        defer { self.condition.unlock() }
        return String(decoding: self.stderrData, as: UTF8.self)
    }

    /// Waits for the peer to exit (polling, so it can run from async code) and returns its status.
    public func waitForExit(timeout: TimeInterval = 60) async throws -> Int32 {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while self.process.isRunning {
            if Date() > deadline {
                self.terminate()
                throw GoPeerError("\(self.name) did not exit within \(timeout) s; stderr: \(self.standardError)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return self.process.terminationStatus
    }

    /// Sends SIGTERM to this process only, without waiting (see ``waitForExit(timeout:)``).
    public func sendTerminationSignal() {
        if self.process.isRunning {
            self.process.terminate()
        }
    }

    /// Kills the process at once (SIGKILL): a crash, with no chance to say goodbye.
    public func kill() {
        if self.process.isRunning {
            _ = Foundation.kill(self.process.processIdentifier, SIGKILL)
            self.process.waitUntilExit()
        }
    }

    /// Stops the peer (SIGTERM to this process only) and waits for it.
    public func terminate() {
        if self.process.isRunning {
            self.process.terminate()
            self.process.waitUntilExit()
        }
    }

    deinit {
        if self.process.isRunning {
            self.process.terminate()
        }
    }
}
