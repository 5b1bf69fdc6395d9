import Foundation
import TestSupport
import NIOSSL

/// A certificate authority and a server certificate for localhost and
/// 127.0.0.1, made with the openssl command once per test run (Debian's
/// `openssl` package; `scripts/install-system-packages.sh` installs it).
enum TestCertificates {
    struct Files {
        var authority: String
        var certificate: String
        var privateKey: String
    }

    /// The files, made once per test run. A task, not a value made in a
    /// `static let` initializer: that would run openssl on a concurrency
    /// thread and block every test touching it meanwhile.
    private static let generated = Task { try await generate() }

    /// The certificate files (made on first use).
    static func files() async throws -> Files {
        try await generated.value
    }

    /// TLS for a server presenting the test certificate.
    static func serverContext() async throws -> NIOSSLContext {
        let files = try await files()
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(files.certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: files.privateKey, format: .pem))
        )
        return try NIOSSLContext(configuration: configuration)
    }

    /// TLS for a client that trusts only the test authority.
    static func clientContext() async throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(try await files().authority))
        return try NIOSSLContext(configuration: configuration)
    }

    private static func generate() async throws -> Files {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("muxrpc-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n".write(toFile: path("server.ext"), atomically: true, encoding: .utf8)
        try await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "2", "-subj", "/CN=MuxRPC Test CA"])
        try await openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", path("server.key"), "-out", path("server.csr"), "-subj", "/CN=localhost"])
        try await openssl(["x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
                     "-CAcreateserial", "-out", path("server.pem"), "-days", "2", "-extfile", path("server.ext")])
        return Files(authority: path("ca.pem"), certificate: path("server.pem"), privateKey: path("server.key"))
    }

    private static func openssl(_ arguments: [String]) async throws {
        let result = try await runProgram(URL(fileURLWithPath: "/usr/bin/openssl"), arguments: arguments)
        guard result.status == 0 else {
            throw CertificateError(message: "openssl \(arguments.first ?? "") failed: \(result.output)")
        }
    }

    struct CertificateError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
