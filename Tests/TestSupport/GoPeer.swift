public import Foundation

/// Builds and runs Go programs that the interop tests talk to (`Tests/GoPeers/<name>/main.go`).
///
/// Peers are built with the Go toolchain in GOPATH mode against Debian's packaged sources
/// (`/usr/share/gocode`), into `.build/go-peers/` under the package root, and rebuilt only when
/// their source is newer than the binary. With `CI=true` a missing toolchain is an error;
/// elsewhere tests may skip with ``GoPeer/unavailableReason``.
public enum GoPeer {
    /// The package root, found from this file's path (Tests/TestSupport/GoPeer.swift).
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

    /// Builds `Tests/GoPeers/<name>` (if out of date) and returns the binary's path. Each peer
    /// is built once per test run however many tests ask at once, and the build never blocks
    /// a concurrency thread (see ``runProgram(_:arguments:environment:directory:)``).
    public static func build(_ name: String) async throws -> URL {
        if let reason = unavailableReason() {
            throw GoPeerError("cannot build Go peer \(name): \(reason)\(isCI ? " (CI=true: interop tests must run)" : "")")
        }
        return try await builds.binary(name).value
    }

    /// Fails (with CI=true) or skips with a message (elsewhere) when Go peers cannot be built.
    /// - Returns: whether the test should go on.
    public static func available() throws -> Bool {
        guard let reason = unavailableReason() else { return true }
        if isCI { throw GoPeerError("Go interop tests must run in CI, but \(reason)") }
        FileHandle.standardError.write(Data("skipping Go interop test: \(reason)\n".utf8))
        return false
    }

    private static let builds = Builds()

    /// One build task per peer, shared by every test that needs it.
    private actor Builds {
        private var tasks: [String: Task<URL, any Error>] = [:]

        func binary(_ name: String) -> Task<URL, any Error> {
            if let task = self.tasks[name] { return task }
            let task = Task { try await GoPeer.buildIfOutOfDate(name) }
            self.tasks[name] = task
            return task
        }
    }

    private static func buildIfOutOfDate(_ name: String) async throws -> URL {
        let source = packageRoot.appendingPathComponent("Tests/GoPeers/\(name)")
        let output = outputDirectory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        if let binaryDate = modificationDate(output), let sourceDate = newestModification(in: source),
            binaryDate >= sourceDate
        {
            return output
        }
        var environment = ProcessInfo.processInfo.environment
        environment["GOPATH"] = gopath
        environment["GO111MODULE"] = "off"
        environment["GOFLAGS"] = nil
        environment["GOCACHE"] = outputDirectory.appendingPathComponent("cache").path
        environment["CGO_ENABLED"] = "0"
        let result = try await runProgram(
            URL(fileURLWithPath: goBinary!),
            arguments: ["build", "-o", output.path, "."],
            environment: environment,
            directory: source
        )
        guard result.status == 0 else {
            throw GoPeerError("go build of \(name) failed: \(result.output)")
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

