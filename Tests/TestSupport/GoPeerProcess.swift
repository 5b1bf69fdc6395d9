public import Foundation

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
    public static func start(_ name: String, arguments: [String]) async throws -> GoPeerProcess {
        try GoPeerProcess(executable: try await GoPeer.build(name), arguments: arguments)
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

    /// Kills the process at once (SIGKILL): a crash, with no chance to say goodbye. Returns
    /// once it is gone (polling, so it can run from async code).
    public func kill() async {
        guard self.process.isRunning else { return }
        _ = Foundation.kill(self.process.processIdentifier, SIGKILL)
        while self.process.isRunning {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Stops the program without waiting for it: SIGTERM now, SIGKILL if it is still running
    /// `gracePeriod` seconds later. For `defer` blocks, which cannot await; waiting there
    /// would block a concurrency thread for as long as the program takes to stop.
    public func terminate(gracePeriod: TimeInterval = 10) {
        guard self.process.isRunning else { return }
        self.process.terminate()
        let process = self.process
        DispatchQueue.global().asyncAfter(deadline: .now() + gracePeriod) {
            if process.isRunning {
                _ = Foundation.kill(process.processIdentifier, SIGKILL)
            }
        }
    }

    deinit {
        self.terminate()
    }
}
