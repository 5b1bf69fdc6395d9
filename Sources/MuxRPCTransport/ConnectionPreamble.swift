/// What a connection carries, as its first byte says: the preambles of
/// Consul's and Nomad's RPC ports that MuxRPC speaks.
///
/// | byte | meaning |
/// | --- | --- |
/// | 0x00 | one plain net/rpc msgpack connection, no yamux (Consul `RPCConsul`) |
/// | 0x03 | TLS follows; after the handshake the real byte comes inside TLS (Consul `RPCTLS`) |
/// | 0x04 | yamux; every stream carries net/rpc msgpack (Consul `RPCMultiplexV2`) |
/// | 0x06 | yamux; each stream starts with its own byte, 0x01 for RPC, 0x05 for a streaming call (Nomad `RpcMultiplexV2`) |
///
/// A server also takes Nomad's 0x05 as a connection's first byte: one
/// streaming call on the whole connection (Nomad `RpcStreaming`), served
/// when it has streaming methods; it is not a mode a client picks here.
///
/// Consul's other bytes (raft 0x01, snapshot 0x05, gossip 0x06 in Consul's
/// numbering, insecure TLS 0x07, gRPC 0x08) are not RPC and are refused.
public enum ConnectionMode: Sendable, Hashable, CustomStringConvertible {
    /// One net/rpc msgpack connection (0x00).
    case plain
    /// Consul's multiplexed mode (0x04): every yamux stream is RPC.
    case consulMultiplex
    /// Nomad's multiplexed mode (0x06): each yamux stream starts with its
    /// own byte, 0x01 for RPC.
    case nomadMultiplex

    /// The byte a client sends first to ask for this mode.
    package var preambleByte: UInt8 {
        switch self {
        case .plain: return ConnectionPreambleByte.plain
        case .consulMultiplex: return ConnectionPreambleByte.consulMultiplex
        case .nomadMultiplex: return ConnectionPreambleByte.nomadMultiplex
        }
    }

    /// The mode a first byte asks for, or `nil` when the byte asks for
    /// none (TLS is not a mode: it wraps one).
    package init?(preambleByte byte: UInt8) {
        switch byte {
        case ConnectionPreambleByte.plain: self = .plain
        case ConnectionPreambleByte.consulMultiplex: self = .consulMultiplex
        case ConnectionPreambleByte.nomadMultiplex: self = .nomadMultiplex
        default: return nil
        }
    }

    /// The mode and its byte, for example "Consul multiplex (0x04)".
    public var description: String {
        switch self {
        case .plain: return "plain net/rpc (0x00)"
        case .consulMultiplex: return "Consul multiplex (0x04)"
        case .nomadMultiplex: return "Nomad multiplex (0x06)"
        }
    }
}

/// The first bytes of Consul's and Nomad's RPC connections.
package enum ConnectionPreambleByte {
    /// One plain net/rpc msgpack connection (Consul `RPCConsul`).
    package static let plain: UInt8 = 0x00
    /// TLS follows; the mode's byte comes inside it (Consul `RPCTLS`).
    package static let tls: UInt8 = 0x03
    /// Yamux, every stream net/rpc (Consul `RPCMultiplexV2`).
    package static let consulMultiplex: UInt8 = 0x04
    /// Yamux, each stream with its own type byte (Nomad `RpcMultiplexV2`).
    package static let nomadMultiplex: UInt8 = 0x06
    /// One streaming call on the whole connection, no yamux (Nomad
    /// `RpcStreaming`; Consul's snapshot byte has the same value, and a
    /// server without streaming methods refuses it).
    package static let nomadStreaming: UInt8 = 0x05
}

/// The byte at the start of each yamux stream in Nomad's multiplexed mode.
package enum NomadStreamType {
    /// A net/rpc msgpack stream.
    package static let rpc: UInt8 = 0x01
    /// A streaming call: header, ack, then values both ways (Nomad `RpcStreaming`).
    package static let streaming: UInt8 = 0x05
}
