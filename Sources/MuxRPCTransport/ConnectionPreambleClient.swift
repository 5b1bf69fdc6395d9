package import NIOCore
#if TLS
package import NIOSSL
#endif

/// The client's side of the preamble: what a Consul or Nomad client sends
/// first on a new RPC connection.
package enum ConnectionPreambleClient {
    /// Sends the preamble for `mode` on `channel`.
    ///
    /// Call on the channel's event loop once it is active, before adding
    /// the mode's handlers.
    package static func configure(_ channel: any Channel, mode: ConnectionMode) throws {
        try configure(channel, byte: mode.preambleByte)
    }

    /// Sends `byte` as the connection's first byte (Nomad's 0x05 for one
    /// streaming call, which is no ``ConnectionMode``).
    package static func configure(_ channel: any Channel, byte: UInt8) throws {
        channel.eventLoop.preconditionInEventLoop()
        channel.writeAndFlush(ByteBuffer(integer: byte), promise: nil)
    }

    #if TLS
    /// Sends the preamble for `mode` on `channel`, first upgrading to TLS
    /// when `tls` is given: 0x03 in plaintext, the TLS handshake, then the
    /// mode's byte inside TLS, as Consul's clients do.
    ///
    /// Call on the channel's event loop once it is active, before adding
    /// the mode's handlers. The TLS handler goes first in the pipeline, so
    /// everything written after this is encrypted.
    package static func configure(
        _ channel: any Channel,
        mode: ConnectionMode,
        tls: NIOSSLContext?,
        serverHostname: String? = nil
    ) throws {
        try configure(channel, byte: mode.preambleByte, tls: tls, serverHostname: serverHostname)
    }

    /// Sends `byte` as the connection's first byte, inside TLS when `tls` is given.
    package static func configure(
        _ channel: any Channel,
        byte: UInt8,
        tls: NIOSSLContext?,
        serverHostname: String? = nil
    ) throws {
        channel.eventLoop.preconditionInEventLoop()
        if let tls {
            // The 0x03 reaches the socket in plaintext before the TLS handler
            // exists: writes pass through the pipeline synchronously.
            channel.writeAndFlush(ByteBuffer(integer: ConnectionPreambleByte.tls), promise: nil)
            let handler = try NIOSSLClientHandler(context: tls, serverHostname: serverHostname)
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        }
        channel.writeAndFlush(ByteBuffer(integer: byte), promise: nil)
    }
    #endif
}
