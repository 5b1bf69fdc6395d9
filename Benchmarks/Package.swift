// swift-tools-version: 6.1
//
// MuxRPC's benchmarks: a nested package so that library users never build
// the benchmark harness. Run from the repository root with
//   swift package --package-path Benchmarks benchmark
// (see Docs/benchmarks.md for the exact commands behind every figure).

import PackageDescription

let package = Package(
    name: "MuxRPCBenchmarks",
    dependencies: [
        .package(name: "MuxRPC", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        // Only the MallocInterposer trait: malloc counts without the runtime
        // interposer, whose package is not needed here.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // msgpack-c (libmsgpack-dev), measured side by side with our codec.
        .systemLibrary(
            name: "CMsgpack",
            path: "Benchmarks/CMsgpack",
            pkgConfig: "msgpack",
            providers: [.apt(["libmsgpack-dev"])]
        ),
        .executableTarget(
            name: "CodecBenchmarks",
            dependencies: [
                "CMsgpack",
                .product(name: "MessagePack", package: "MuxRPC"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/CodecBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The connection pool: acquire/release under contention, and calls
        // through the pool against bare streams (a plain executable: see its
        // header for why not ordo-one/benchmark).
        // The main package's demo services (not one of its products), through
        // a symbolic link to their folder. A name of its own: SwiftPM refuses
        // two targets named DemoServices in one package graph, and the main
        // package's is in this one.
        .target(
            name: "SharedDemoServices",
            dependencies: [
                .product(name: "MsgpackRPC", package: "MuxRPC"),
                .product(name: "MessagePack", package: "MuxRPC"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/DemoServices",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "PoolBenchmarks",
            dependencies: [
                "SharedDemoServices",
                .product(name: "MuxRPC", package: "MuxRPC"),
                .product(name: "MsgpackRPC", package: "MuxRPC"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/PoolBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
