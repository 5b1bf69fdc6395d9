// net/rpc over MessagePack on a byte stream, fed arbitrary bytes in pieces
// (see FuzzInput), twice over:
//
// 1. RPCMessageFramer alone on an EmbeddedChannel. The messages it passes on
//    must be the ones RPCMessageDecoder finds in the whole payload at once,
//    byte for byte, and it must fail if and only if that decoder does.
//    Every message is also read as an RPCRequestHeader and an
//    RPCResponseHeader; a header that reads, written back, reads the same.
//    (The framer, the decoder and the headers are package-only in
//    MsgpackRPC: reached with @testable import, which the debug fuzz build
//    allows.)
//
// 2. The whole server path: addMsgpackRPCServer(RPCServer(registry:)) on an
//    EmbeddedChannel, with a small registry (Echo.Echo with Codable
//    arguments, Demo.Echo with self-decoding ones, Arith.Add, Test.Fail that
//    throws, Value.Echo with a dynamic MessagePackValue, and Async.Echo that
//    runs in a task on the channel's loop). What the server writes must be
//    well-formed responses (a response header, then a body), answering the
//    requests in order: their (ServiceMethod, Seq) a prefix of the requests'.
//
// Mode byte: bit 0 picks small limits (64-byte strings, 16 elements, 512-byte
// messages) instead of the defaults. Action byte after each piece:
// 1 graceful shutdown (ChannelShouldQuiesceEvent) for the server,
// 2 time passes on the server's loop (deadline timers),
// 3 the server's channel is closed.

import FuzzSupport
import MessagePack
@testable import MsgpackRPC
import NIOCore
import NIOEmbedded
import SharedDemoServices

let smallLimits = MessagePackLimits(maxDepth: 8, maxByteLength: 64, maxContainerCount: 16, maxMessageSize: 512)

struct EchoArgs: Codable, Sendable {
    var msg: [UInt8]
    enum CodingKeys: String, CodingKey { case msg = "Msg" }
}

struct AddArgs: Codable, Sendable {
    var a: Int64
    var b: Int64
    enum CodingKeys: String, CodingKey { case a = "A", b = "B" }
}

struct AddReply: Codable, Sendable {
    var sum: Int64
    enum CodingKeys: String, CodingKey { case sum = "Sum" }
}

let registry: RPCServiceRegistry = {
    var registry = RPCServiceRegistry()
    registry.registerInline(service: "Echo", method: "Echo") { (arguments: EchoArgs, _) in arguments }
    registry.registerInline(service: "Demo", method: "Echo") { (arguments: DemoServices.EchoArgs, _) in
        DemoServices.EchoReply(msg: arguments.msg)
    }
    registry.registerInline(service: "Arith", method: "Add") { (arguments: AddArgs, _) in
        AddReply(sum: arguments.a &+ arguments.b)
    }
    registry.registerInline(service: "Test", method: "Fail") { (arguments: EchoArgs, _) -> RPCEmpty in
        throw RPCError(serverError: String(decoding: arguments.msg, as: UTF8.self))
    }
    registry.registerInline(service: "Value", method: "Echo") { (arguments: MessagePackValue, _) in arguments }
    // Async, but never suspends: it runs to completion when the loop runs.
    registry.register(service: "Async", method: "Echo") { (arguments: EchoArgs, _) async in arguments }
    return registry
}()

/// The messages RPCMessageDecoder finds in `bytes` seen all at once, and
/// whether it then failed.
func referenceFrames(_ bytes: UnsafeRawBufferPointer, limits: MessagePackLimits) -> (messages: [ByteBuffer], failed: Bool) {
    var decoder = RPCMessageDecoder(limits: limits)
    var buffer = ByteBuffer(bytes: bytes)
    var messages: [ByteBuffer] = []
    while true {
        do {
            guard let message = try decoder.decode(buffer: &buffer) else { return (messages, false) }
            messages.append(message)
        } catch {
            return (messages, true)
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    let limits = input.mode & 1 != 0 ? smallLimits : .default

    // 1. The framer.
    let framer = EmbeddedChannel(handler: RPCMessageFramer(limits: limits))
    var messages: [ByteBuffer] = []
    var failed = false
    // 2. The server.
    let server = EmbeddedChannel()
    var configuration = RPCServer.Configuration(limits: limits)
    configuration.runsHandlersOnEventLoop = true
    do {
        try server.pipeline.syncOperations.addMsgpackRPCServer(RPCServer(registry: registry, configuration: configuration))
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    } catch {
        fatalError("could not set up the server: \(error)")
    }
    var responses = ByteBuffer()

    input.forEachPiece { piece, action in
        let bytes = ByteBuffer(bytes: piece)
        let failedBefore = failed
        do {
            try framer.writeInbound(bytes)
        } catch {
            fuzzCheck(!failed, "the framer failed twice: \(error)")
            failed = true
        }
        while let message = try? framer.readInbound(as: ByteBuffer.self) {
            fuzzCheck(!failedBefore, "a message passed on after the framer failed")
            messages.append(message)
        }

        if server.isActive {
            _ = try? server.writeInbound(bytes)
        }
        switch action & 3 {
        case 1: server.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        case 2: server.embeddedEventLoop.advanceTime(by: .seconds(Int64(action >> 2)))
        case 3: server.close(promise: nil)
        default: break
        }
        server.embeddedEventLoop.run()
        while var response = try? server.readOutbound(as: ByteBuffer.self) {
            responses.writeBuffer(&response)
        }
    }

    // The framer against the reference.
    let expected = referenceFrames(input.payload, limits: limits)
    fuzzCheck(messages == expected.messages, "framer: \(messages.count) messages, reference: \(expected.messages.count)")
    fuzzCheck(failed == expected.failed, "framer failed: \(failed), reference failed: \(expected.failed)")
    for message in messages {
        checkHeaders(message, limits: limits)
    }
    _ = try? framer.finish(acceptAlreadyClosed: true)

    // The server's answers against the requests it was sent.
    server.close(promise: nil)
    server.embeddedEventLoop.run()
    while var response = try? server.readOutbound(as: ByteBuffer.self) {
        responses.writeBuffer(&response)
    }
    _ = try? server.finish(acceptAlreadyClosed: true)
    checkResponses(responses, requests: expectedRequests(expected.messages, limits: limits))
    return 0
}

/// A header that reads, written back, must read the same.
func checkHeaders(_ message: ByteBuffer, limits: MessagePackLimits) {
    if let request = try? RPCRequestHeader(from: message, limits: limits) {
        var written = ByteBuffer()
        request.write(to: &written)
        let again = try? RPCRequestHeader(from: written, limits: .default)
        fuzzCheck(again == request, "request header \(request) written back reads as \(String(describing: again))")
    }
    if let response = try? RPCResponseHeader(from: message, limits: limits) {
        var written = ByteBuffer()
        response.write(to: &written)
        let again = try? RPCResponseHeader(from: written, limits: .default)
        fuzzCheck(again == response, "response header \(response) written back reads as \(String(describing: again))")
    }
}

/// The calls the server should answer: (ServiceMethod, Seq) of each header
/// followed by a body, up to the first message that is not a header.
func expectedRequests(_ messages: [ByteBuffer], limits: MessagePackLimits) -> [(String, UInt64)] {
    var requests: [(String, UInt64)] = []
    var index = 0
    while index + 1 < messages.count {
        guard let header = try? RPCRequestHeader(from: messages[index], limits: limits) else { break }
        requests.append((header.serviceMethod, header.seq))
        index += 2
    }
    return requests
}

/// What the server wrote: response header, body, response header, body...,
/// answering a prefix of `requests` in order.
func checkResponses(_ bytes: ByteBuffer, requests: [(String, UInt64)]) {
    var buffer = bytes
    var answered = 0
    while buffer.readableBytes > 0 {
        var scanner = MessagePackValueScanner()
        guard let headerLength = try? scanner.scan(buffer) else {
            fuzzCheck(false, "the server wrote bytes that are not a whole msgpack value")
            return
        }
        let header = buffer.readSlice(length: headerLength)!
        guard let response = try? RPCResponseHeader(from: header) else {
            fuzzCheck(false, "the server wrote a response header that does not read")
            return
        }
        fuzzCheck(answered < requests.count, "a response (\(response.serviceMethod) \(response.seq)) to no request")
        let (method, seq) = requests[answered]
        fuzzCheck(response.serviceMethod == method && response.seq == seq,
                  "response \(answered) is for \(response.serviceMethod) \(response.seq), the request was \(method) \(seq)")
        answered += 1
        var bodyScanner = MessagePackValueScanner()
        guard let bodyLength = try? bodyScanner.scan(buffer) else {
            fuzzCheck(false, "the server wrote a response header without a whole body")
            return
        }
        buffer.moveReaderIndex(forwardBy: bodyLength)
    }
}
