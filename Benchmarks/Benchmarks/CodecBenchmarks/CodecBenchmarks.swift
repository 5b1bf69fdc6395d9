// The MessagePack codec on an RPC-sized message and on a 1 MiB binary, with
// msgpack-c doing the same work in the same run for scale.

import Benchmark
import CMsgpack
import MessagePack
import NIOCore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 10_000
    )

    // MARK: RPC-sized message

    Benchmark("RPC request: encode, raw writer") { benchmark in
        var buffer = ByteBuffer()
        buffer.reserveCapacity(256)
        for _ in benchmark.scaledIterations {
            buffer.clear()
            try RPCMessage.writeRaw(into: &buffer)
            blackHole(buffer)
        }
    }

    Benchmark("RPC request: encode, pointer writer") { benchmark in
        var buffer = ByteBuffer()
        buffer.reserveCapacity(256)
        for _ in benchmark.scaledIterations {
            buffer.clear()
            try RPCMessage.writePointer(into: &buffer)
            blackHole(buffer)
        }
    }

    Benchmark("RPC request: encode, Codable") { benchmark in
        let encoder = MessagePackEncoder()
        var buffer = ByteBuffer()
        buffer.reserveCapacity(256)
        for _ in benchmark.scaledIterations {
            buffer.clear()
            try encoder.encode(RPCMessage.header, into: &buffer)
            try encoder.encode(RPCMessage.body, into: &buffer)
            blackHole(buffer)
        }
    }

    Benchmark("RPC request: encode, msgpack-c") { benchmark in
        var packer = ReferencePacker()
        for _ in benchmark.scaledIterations {
            packer.clear()
            packer.packRequest()
            blackHole(packer.size)
        }
        packer.destroy()
    }

    Benchmark("RPC request: decode, Codable") { benchmark in
        let decoder = MessagePackDecoder()
        let message = RPCMessage.encoded
        var scanner = MessagePackValueScanner()
        for _ in benchmark.scaledIterations {
            var input = message
            let headerLength = try scanner.scan(input)!
            let header = try decoder.decode(RequestHeader.self, fromScanned: input.readSlice(length: headerLength)!)
            let bodyLength = try scanner.scan(input)!
            let body = try decoder.decode(QueryRequest.self, fromScanned: input.readSlice(length: bodyLength)!)
            blackHole(header)
            blackHole(body)
        }
    }

    Benchmark("RPC request: decode, reader") { benchmark in
        let message = RPCMessage.encoded
        for _ in benchmark.scaledIterations {
            var reader = MessagePackReader(message)
            blackHole(try RPCMessage.readRaw(&reader))
        }
    }

    Benchmark("RPC request: decode, msgpack-c") { benchmark in
        let message = RPCMessage.encoded.readableBytesView.map { $0 }
        var unpacked = msgpack_unpacked()
        msgpack_unpacked_init(&unpacked)
        for _ in benchmark.scaledIterations {
            blackHole(ReferencePacker.unpackRequest(message, into: &unpacked))
        }
        msgpack_unpacked_destroy(&unpacked)
    }

    // MARK: The request body, Codable against self-coding

    let encodedBody = try! MessagePackEncoder().encode(RPCMessage.body)

    /// Encodes and decodes the request body as `Body`: the same struct
    /// through `Codable` or writing and reading itself.
    func requestBodyBenchmarks<Body: Codable & Sendable>(_ body: Body, _ way: String) {
        Benchmark("Request body: encode, \(way)") { benchmark in
            let encoder = MessagePackEncoder()
            var buffer = ByteBuffer()
            buffer.reserveCapacity(256)
            for _ in benchmark.scaledIterations {
                buffer.clear()
                try encoder.encode(body, into: &buffer)
                blackHole(buffer)
            }
        }
        Benchmark("Request body: decode, \(way)") { benchmark in
            let decoder = MessagePackDecoder()
            for _ in benchmark.scaledIterations {
                blackHole(try decoder.decode(Body.self, from: encodedBody))
            }
        }
    }

    requestBodyBenchmarks(RPCMessage.body, "Codable")
    requestBodyBenchmarks(SelfCodingQueryRequest.sample, "self-coding")

    // MARK: 1 MiB binary

    let oneMiB = 1 << 20
    // Inputs are made once, outside the measured closures, and buffers are
    // made before measurement starts: with one iteration per sample,
    // making them inside would be measured too.
    let payload = [UInt8](repeating: 0xab, count: oneMiB)
    var encodedBinary = ByteBuffer()
    try! encodedBinary.writeMessagePackBinary(payload)
    let encoded = encodedBinary
    let encodedBytes = Array(encoded.readableBytesView)
    let bulkConfiguration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .microseconds,
        warmupIterations: 3,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 2_000
    )

    Benchmark("1 MiB binary: encode, raw writer", configuration: bulkConfiguration) { benchmark in
        var buffer = ByteBuffer()
        buffer.reserveCapacity(oneMiB + 16)
        try buffer.writeMessagePackBinary(payload)  // touch every page first
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            buffer.clear()
            try buffer.writeMessagePackBinary(payload)
            blackHole(buffer)
        }
        benchmark.stopMeasurement()
    }

    Benchmark("1 MiB binary: encode, msgpack-c", configuration: bulkConfiguration) { benchmark in
        var packer = ReferencePacker()
        packer.packBinary(payload)  // grow the buffer and touch every page first
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            packer.clear()
            packer.packBinary(payload)
            blackHole(packer.size)
        }
        benchmark.stopMeasurement()
        packer.destroy()
    }

    Benchmark("1 MiB binary: decode, reader slice (no copy)", configuration: bulkConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            var reader = MessagePackReader(encoded)
            blackHole(try reader.readBinary())
        }
    }

    Benchmark("1 MiB binary: decode, Codable [UInt8] (one copy)", configuration: bulkConfiguration) { benchmark in
        let decoder = MessagePackDecoder()
        for _ in benchmark.scaledIterations {
            blackHole(try decoder.decode([UInt8].self, from: encoded))
        }
    }

    Benchmark("1 MiB binary: decode, msgpack-c", configuration: bulkConfiguration) { benchmark in
        var unpacked = msgpack_unpacked()
        msgpack_unpacked_init(&unpacked)
        for _ in benchmark.scaledIterations {
            blackHole(ReferencePacker.unpackSize(encodedBytes, into: &unpacked))
        }
        msgpack_unpacked_destroy(&unpacked)
    }
}
