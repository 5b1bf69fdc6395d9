// swift-tools-version: 6.1
//
// MuxRPC's examples, and the check that MuxRPC resolves and builds as a
// dependency the way an application uses it: by path, with the TLS trait
// turned off, beside a wider swift-nio range than MuxRPC's own. One package,
// so that SwiftNIO builds once for all of them. Each example's command is in
// Examples/README.md.

import PackageDescription

let settings: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "MuxRPCExamples",
    dependencies: [
        // No TLS: the build compiles neither swift-nio-ssl nor BoringSSL.
        .package(name: "MuxRPC", path: "..", traits: []),
        // Wider than MuxRPC's own range, as an application's may be: an exact
        // pin in MuxRPC would make this package fail to resolve.
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
    ],
    targets: [
        // The README's quick start, exactly as the README shows it
        // (scripts/check-readme-quick-start.sh compares the two).
        .executableTarget(
            name: "quick-start",
            dependencies: [.product(name: "MuxRPC", package: "MuxRPC")],
            swiftSettings: settings
        ),
        // A key-value service with typed arguments: its types and
        // registration, shared by its server and its client.
        .target(
            name: "KVService",
            dependencies: [.product(name: "MuxRPC", package: "MuxRPC")],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "kv-server",
            dependencies: ["KVService", .product(name: "MuxRPC", package: "MuxRPC")],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "kv-client",
            dependencies: ["KVService", .product(name: "MuxRPC", package: "MuxRPC")],
            swiftSettings: settings
        ),
        // Calls a Go server (Examples/GoKVServer) in Consul's mode.
        .executableTarget(
            name: "call-go-server",
            dependencies: ["KVService", .product(name: "MuxRPC", package: "MuxRPC")],
            swiftSettings: settings
        ),
        // A server and a client in one ServiceGroup, stopped gracefully by
        // SIGTERM or SIGINT.
        .executableTarget(
            name: "service-group-app",
            dependencies: [
                "KVService",
                .product(name: "MuxRPC", package: "MuxRPC"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings
        ),
        // An application that uses swift-nio itself beside MuxRPC.
        .executableTarget(
            name: "nio-neighbour",
            dependencies: [
                .product(name: "MuxRPC", package: "MuxRPC"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: settings
        ),
    ]
)
