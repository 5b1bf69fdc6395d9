// swift-tools-version: 6.1
//
// MuxRPC: multiplexed RPC for Swift, wire-compatible with HashiCorp's
// yamux + net/rpc + msgpack stack. See README.md and Docs/.

import PackageDescription

/// Settings every target shares: Swift 6 language mode (strict concurrency)
/// plus the upcoming features that keep API surfaces honest.
let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// What most test targets use of swift-nio.
let nioTestDependencies: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "NIOEmbedded", package: "swift-nio"),
    .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
]

let package = Package(
    name: "MuxRPC",
    products: [
        .library(name: "MessagePack", targets: ["MessagePack"]),
        .library(name: "Yamux", targets: ["Yamux"]),
        .library(name: "MsgpackRPC", targets: ["MsgpackRPC"]),
        .library(name: "MuxRPC", targets: ["MuxRPC"]),
        .executable(name: "muxrpc-codec-demo", targets: ["MuxRPCCodecDemo"]),
        .executable(name: "muxrpc-bench", targets: ["MuxRPCBench"]),
        .executable(name: "muxrpc-server", targets: ["MuxRPCServerCommand"]),
        .executable(name: "muxrpc-client", targets: ["MuxRPCClientCommand"]),
    ],
    traits: [
        // TLS pulls in swift-nio-ssl and so BoringSSL, which is most of a
        // first build. An application that never speaks TLS turns the trait
        // off (`traits: []` on its `.package` line) and compiles neither.
        .trait(name: "TLS", description: "TLS connections (Consul's 0x03 preamble), through swift-nio-ssl."),
        .default(enabledTraits: ["TLS"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Observability: the API packages only in the library; the backend
        // (swift-prometheus) only in the executables' MetricsEndpoint target.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Documentation only: `swift package generate-documentation --target MessagePack`.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // Layer 1: the MessagePack codec. Depends on NIOCore only (ByteBuffer).
        .target(
            name: "MessagePack",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),

        // Layer 2: yamux sessions on SwiftNIO, wire-compatible with hashicorp/yamux.
        .target(
            name: "Yamux",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),

        // Layer 3: net/rpc over msgpack on any byte stream (knows nothing of
        // yamux or pools).
        .target(
            name: "MsgpackRPC",
            dependencies: [
                "MessagePack",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),

        // Layer 4, in four modules, each importing only those above it here.
        //
        // Transport: one connection. Preambles and TLS, MuxRPCConnection,
        // MuxRPCServer, busy polling, and the error model all layers share.
        .target(
            name: "MuxRPCTransport",
            dependencies: [
                "MsgpackRPC",
                "Yamux",
                "CEventFD",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Pool: one session per server, a free-list of idle streams, shrink
        // and reaper, as Consul's client keeps them; beside each server's
        // sessions, in the same record, its load, latency and circuit
        // breaker, and the balancers that pick by them.
        .target(
            name: "MuxRPCPool",
            dependencies: [
                "MuxRPCTransport",
                "MsgpackRPC",
                "Yamux",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Client stack: MuxRPCClient over a pool, with resolvers, retries,
        // client interceptors and one deadline per call.
        .target(
            name: "MuxRPCClientStack",
            dependencies: [
                "MuxRPCPool",
                "MuxRPCTransport",
                "MsgpackRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Observability: logging, metrics, tracing and rate-limiting
        // interceptors for either side, and the pool's metrics reporter.
        .target(
            name: "MuxRPCObservability",
            dependencies: [
                "MuxRPCClientStack",
                "MuxRPCPool",
                "MuxRPCTransport",
                "MsgpackRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSettings
        ),
        // The one import users need: re-exports every module above, and
        // holds the DocC articles that span them.
        .target(
            name: "MuxRPC",
            dependencies: [
                "MuxRPCObservability",
                "MuxRPCClientStack",
                "MuxRPCPool",
                "MuxRPCTransport",
                "MsgpackRPC",
                "Yamux",
                "MessagePack",
            ],
            swiftSettings: strictSettings
        ),

        // eventfd(2) for the busy poller: a header only, nothing to link.
        .systemLibrary(name: "CEventFD", path: "Sources/CEventFD"),
        // mallopt(3) for MallocTuning: a header only, nothing to link.
        .systemLibrary(name: "CGlibcMalloc", path: "Sources/CGlibcMalloc"),

        // The demo services the executables serve and the tests call. Not a
        // product: the library ships no demo code.
        .target(
            name: "DemoServices",
            dependencies: [
                "MessagePack",
                "MsgpackRPC",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // The command-line options the programs share (busy polling). Not a
        // product.
        .target(
            name: "ProgramOptions",
            dependencies: [
                "MuxRPC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        // MallocTuning changes the whole process, so only programs may call
        // it: the executables do. Not a product.
        .target(
            name: "ProcessTuning",
            dependencies: ["CGlibcMalloc"],
            swiftSettings: strictSettings
        ),

        // Serves Prometheus text at GET /metrics for the executables: the one
        // place that picks a metrics backend (the library must not).
        .target(
            name: "MetricsEndpoint",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings
        ),

        // A small program that shows the codec at work on a Go-shaped RPC request.
        .executableTarget(
            name: "MuxRPCCodecDemo",
            dependencies: [
                "MessagePack",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/muxrpc-codec-demo",
            swiftSettings: strictSettings
        ),

        // The demo programs: a server of the demo services, and a client that
        // calls them and checks every answer.
        .executableTarget(
            name: "MuxRPCServerCommand",
            dependencies: [
                "MuxRPC",
                "MsgpackRPC",
                "Yamux",
                "DemoServices",
                "ProcessTuning",
                "ProgramOptions",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                "MetricsEndpoint",
            ],
            path: "Sources/muxrpc-server",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "MuxRPCClientCommand",
            dependencies: [
                "MuxRPC",
                "MsgpackRPC",
                "DemoServices",
                "ProcessTuning",
                "ProgramOptions",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                "MetricsEndpoint",
            ],
            path: "Sources/muxrpc-client",
            swiftSettings: strictSettings
        ),

        // In-process loopback benchmarks (Docs/benchmarks.md).
        .executableTarget(
            name: "MuxRPCBench",
            dependencies: [
                "Yamux",
                "MsgpackRPC",
                "MuxRPC",
                "DemoServices",
                "ProcessTuning",
                "ProgramOptions",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/muxrpc-bench",
            swiftSettings: strictSettings
        ),

        // msgpack-c (Debian's libmsgpack-dev), the reference implementation the
        // codec tests compare against byte for byte. Test-only: the library
        // itself has no C dependency.
        .systemLibrary(
            name: "CMsgpack",
            path: "Tests/CMsgpack",
            pkgConfig: "msgpack",
            providers: [.apt(["libmsgpack-dev"])]
        ),
        .testTarget(
            name: "MessagePackTests",
            dependencies: [
                "MessagePack",
                "CMsgpack",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "TestSupport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "YamuxTests",
            dependencies: [
                "Yamux",
                "TestSupport",
            ] + nioTestDependencies,
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MsgpackRPCTests",
            dependencies: [
                "MsgpackRPC",
                "TestSupport",
                "MessagePack",
                "DemoServices",
                "ProcessTuning",
            ] + nioTestDependencies,
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MuxRPCTests",
            dependencies: [
                "MuxRPC",
                "MuxRPCTransport",
                "MuxRPCPool",
                "MuxRPCClientStack",
                "MuxRPCObservability",
                "MsgpackRPC",
                "Yamux",
                "TestSupport",
                "DemoServices",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                "MetricsEndpoint",
            ],
            swiftSettings: strictSettings
        ),
    ]
)
