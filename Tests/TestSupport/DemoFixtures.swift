/// What the interop tests send the demo services, shared by every test target
/// that checks them (and mirrored by the Go peer, Tests/GoPeers/rpc-peer).

/// Deterministic bytes of length `count` (the same pattern as the Go peer's).
public func pattern(_ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ count) }
}

/// Payload sizes across every msgpack str length boundary, up to 1 MiB.
public let payloadSizes = [0, 1, 15, 16, 31, 32, 33, 255, 256, 257, 65535, 65536, 65537, 1 << 20]

/// Int64 additions at the extremes: (a, b, a &+ b).
public let additions: [(Int64, Int64, Int64)] = [
    (1, 2, 3), (-5, 3, -2), (.max, 0, .max), (.min, 0, .min), (.max - 1, 1, .max), (.min + 1, -1, .min),
    (-1, 1, 0), (127, 1, 128), (255, 1, 256), (-32, -1, -33), (65535, 1, 65536), (4_294_967_295, 1, 4_294_967_296),
]
