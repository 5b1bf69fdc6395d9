// `import MuxRPC` is all an application needs: the modules of the layers
// below appear in MuxRPC's public API (a service registry and its errors
// from MsgpackRPC, yamux settings from Yamux, the codec's self-coding
// protocol from MessagePack), so they come with it.
@_exported public import MessagePack
@_exported public import MsgpackRPC
@_exported public import Yamux
