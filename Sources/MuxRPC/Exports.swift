// `import MuxRPC` is all an application needs. The library is built in
// layers, one module each, and this module re-exports them all:
//
// - MuxRPCTransport: connection preambles and TLS, one connection
//   (MuxRPCConnection), the server (MuxRPCServer), busy polling, and the
//   error model every layer shares (MuxRPCError).
// - MuxRPCPool: ConnectionPool, one record per server (its sessions, idle
//   streams, load, latency and circuit breaker), and the load balancers.
// - MuxRPCClientStack: MuxRPCClient, with resolvers, retries and client
//   interceptors.
// - MuxRPCObservability: logging, metrics, tracing and rate limiting.
//
// and the layers below them, whose types appear in that API (a service
// registry and its errors from MsgpackRPC, yamux settings from Yamux, the
// codec's self-coding protocol from MessagePack).
@_exported public import MessagePack
@_exported public import MsgpackRPC
@_exported public import Yamux
@_exported public import MuxRPCTransport
@_exported public import MuxRPCPool
@_exported public import MuxRPCClientStack
@_exported public import MuxRPCObservability
