// swift-tools-version: 6.1
//
// libFuzzer entry points for MuxRPC's parsers: the MessagePack decoder and
// scanner, yamux sessions and frames, and net/rpc framing and serving.
// Build and run them with scripts/fuzz.sh from the repository root; see
// Docs/fuzzing.md.
//
// The fuzz build is a debug build (so `@testable import` reaches the yamux
// frame parser, and net/rpc's framing and headers) with
// `--sanitize=fuzzer --sanitize=address`, which scripts/fuzz.sh passes. Each
// target defines `LLVMFuzzerTestOneInput`; libFuzzer supplies `main`.

import PackageDescription

let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioEmbedded = Target.Dependency.product(name: "NIOEmbedded", package: "swift-nio")

let settings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "MuxRPCFuzz",
    dependencies: [
        // The package under test, by path, so its identity does not depend
        // on the name of the folder it was cloned into.
        .package(name: "MuxRPC", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
    ],
    targets: [
        // Splits an input into control bytes and pieces; shared by the targets.
        .target(name: "FuzzSupport", swiftSettings: settings),
        // The main package's demo services (not one of its products), through
        // a symbolic link to their folder. A name of its own: SwiftPM refuses
        // two targets named DemoServices in one package graph, and the main
        // package's is in this one.
        .target(
            name: "SharedDemoServices",
            dependencies: [
                .product(name: "MsgpackRPC", package: "MuxRPC"),
                .product(name: "MessagePack", package: "MuxRPC"),
                nioCore,
            ],
            path: "Sources/DemoServices",
            swiftSettings: settings
        ),
        .executableTarget(
            name: "FuzzMessagePackDecoder",
            dependencies: ["FuzzSupport", .product(name: "MessagePack", package: "MuxRPC"), nioCore],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "FuzzMessagePackScanner",
            dependencies: ["FuzzSupport", .product(name: "MessagePack", package: "MuxRPC"), nioCore],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "FuzzYamuxSession",
            dependencies: ["FuzzSupport", .product(name: "Yamux", package: "MuxRPC"), nioCore, nioEmbedded],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "FuzzYamuxFrameDecoder",
            dependencies: ["FuzzSupport", .product(name: "Yamux", package: "MuxRPC"), nioCore],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "FuzzRPCFramer",
            dependencies: [
                "FuzzSupport",
                "SharedDemoServices",
                .product(name: "MsgpackRPC", package: "MuxRPC"),
                .product(name: "MessagePack", package: "MuxRPC"),
                nioCore,
                nioEmbedded,
            ],
            swiftSettings: settings
        ),
    ]
)
