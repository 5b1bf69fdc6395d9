public import Foundation

/// Runs a program to completion without blocking a concurrency thread.
///
/// Tests share Swift's few cooperative threads (two on a 2-core machine). A
/// `waitUntilExit()` or a blocking read there stalls every other test in the
/// process for as long as the program runs, and a lock around it can take
/// both threads. Here the process reports its end through its termination
/// handler (a Foundation thread), and its output goes to a file, which no
/// amount of output can fill the way it fills a pipe nobody reads yet.
///
/// - Returns: the exit status and everything it wrote to stdout and stderr.
public func runProgram(
    _ executable: URL,
    arguments: [String],
    environment: [String: String]? = nil,
    directory: URL? = nil
) async throws -> (status: Int32, output: String) {
    let outputFile = FileManager.default.temporaryDirectory
        .appendingPathComponent("muxrpc-test-output-\(UUID().uuidString)")
    guard FileManager.default.createFile(atPath: outputFile.path, contents: nil) else {
        throw GoPeerError("cannot create \(outputFile.path)")
    }
    defer { try? FileManager.default.removeItem(at: outputFile) }
    let output = try FileHandle(forWritingTo: outputFile)
    defer { try? output.close() }

    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if let environment { process.environment = environment }
    if let directory { process.currentDirectoryURL = directory }
    process.standardOutput = output
    process.standardError = output
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume(throwing: error)
        }
    }
    let text = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
    return (status, text)
}
