import NIOCore
import Testing
@testable import Yamux

@Suite struct FrameCodecTests {
    @Test func headerEncodesBigEndianInTwelveBytes() {
        let header = YamuxFrameHeader(type: .windowUpdate, flags: [.syn, .fin], streamID: 0x0102_0304, length: 0x0A0B_0C0D)
        let buffer = header.encoded(allocator: ByteBufferAllocator())
        #expect(Array(buffer.readableBytesView) == [0, 1, 0, 5, 1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D])
    }

    @Test(arguments: [YamuxFrameType.data, .windowUpdate, .ping, .goAway])
    func headerRoundTrips(_ type: YamuxFrameType) throws {
        for flags: YamuxFrameFlags in [[], .syn, .ack, .fin, .rst, [.syn, .ack, .fin, .rst]] {
            let header = YamuxFrameHeader(type: type, flags: flags, streamID: .max, length: 12345)
            var buffer = header.encoded(allocator: ByteBufferAllocator())
            #expect(try YamuxFrameHeader.read(from: &buffer) == header)
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test func partialHeaderNeedsMoreBytes() throws {
        var buffer = ByteBuffer(bytes: [0, 0, 0, 0, 0])
        #expect(try YamuxFrameHeader.read(from: &buffer) == nil)
        #expect(buffer.readableBytes == 5)
    }

    @Test func rejectsBadVersionAndType() {
        var badVersion = ByteBuffer(bytes: [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
        #expect(throws: YamuxHeaderParseError.unsupportedVersion(1)) { try YamuxFrameHeader.read(from: &badVersion) }
        var badType = ByteBuffer(bytes: [0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
        #expect(throws: YamuxHeaderParseError.unknownType(4)) { try YamuxFrameHeader.read(from: &badType) }
    }

    /// Runs `parser` over `chunks`, gluing each data frame's payload pieces back together.
    private func parse(_ chunks: [ByteBuffer], maxDataLength: UInt32 = 1 << 20) throws -> [(header: YamuxFrameHeader, payload: String?, pieces: Int)] {
        var parser = YamuxFrameParser(maxDataLength: maxDataLength)
        var frames: [(header: YamuxFrameHeader, payload: String?, pieces: Int)] = []
        for var chunk in chunks {
            while let event = try parser.next(from: &chunk) {
                switch event {
                case .header(let header):
                    frames.append((header, nil, 0))
                case .payload(let piece, let last):
                    frames[frames.count - 1].payload = (frames[frames.count - 1].payload ?? "") + String(buffer: piece)
                    frames[frames.count - 1].pieces += 1
                    if last { #expect(parser.payloadRemaining == 0) }
                }
            }
            #expect(chunk.readableBytes == 0)
        }
        return frames
    }

    private var sampleWire: ByteBuffer {
        var wire = ByteBuffer()
        YamuxFrameHeader(type: .data, streamID: 1, length: 5).write(to: &wire)
        wire.writeString("hello")
        YamuxFrameHeader(type: .ping, flags: .syn, streamID: 0, length: 7).write(to: &wire)
        YamuxFrameHeader(type: .data, streamID: 3, length: 0).write(to: &wire)
        YamuxFrameHeader(type: .goAway, streamID: 0, length: 2).write(to: &wire)
        return wire
    }

    @Test func parserSplitsFramesAcrossArbitraryChunks() throws {
        // Fed one byte at a time: every header comes out whole, the payload in pieces.
        let frames = try parse(sampleWire.readableBytesView.map { ByteBuffer(bytes: [$0]) })
        #expect(frames.map(\.header.type) == [.data, .ping, .data, .goAway])
        #expect(frames[0].payload == "hello" && frames[0].pieces == 5)
        #expect(frames[1].header.length == 7 && frames[1].payload == nil)
        #expect(frames[2].payload == nil)
        #expect(frames[3].header.length == 2)
    }

    @Test func parserHandsOutWholePayloadsInOneRead() throws {
        let frames = try parse([sampleWire])
        #expect(frames.map(\.header.type) == [.data, .ping, .data, .goAway])
        #expect(frames[0].payload == "hello" && frames[0].pieces == 1)
    }

    @Test func parserPayloadPiecesAreSlicesNotCopies() throws {
        var wire = ByteBuffer()
        YamuxFrameHeader(type: .data, streamID: 1, length: 4).write(to: &wire)
        wire.writeString("abcd")
        let base = wire.withUnsafeReadableBytes { $0.baseAddress! }
        var parser = YamuxFrameParser(maxDataLength: 1 << 20)
        guard case .header = try parser.next(from: &wire), case .payload(let piece, last: true) = try parser.next(from: &wire) else {
            Issue.record("expected a header and one payload piece")
            return
        }
        let pieceAddress = piece.withUnsafeReadableBytes { $0.baseAddress! }
        #expect(pieceAddress == base + 12)
    }

    @Test func parserRejectsHugeDataLengthBeforeBuffering() {
        var wire = ByteBuffer()
        YamuxFrameHeader(type: .data, streamID: 1, length: .max).write(to: &wire)
        var parser = YamuxFrameParser(maxDataLength: 256 * 1024)
        #expect(throws: YamuxError.self) { _ = try parser.next(from: &wire) }
    }

    @Test func parserRejectsBadVersionInASplitHeader() throws {
        var parser = YamuxFrameParser(maxDataLength: 256 * 1024)
        var first = ByteBuffer(bytes: [1, 0, 0])
        var rest = ByteBuffer(bytes: [0, 0, 0, 0, 1, 0, 0, 0, 0])
        #expect(try parser.next(from: &first) == nil)
        #expect(throws: YamuxError.self) { _ = try parser.next(from: &rest) }
    }
}

@Suite struct StreamStateMachineTests {
    @Test func outboundLifecycle() {
        var machine = StreamStateMachine(outbound: true)
        #expect(machine.state == .synSent)
        machine.receivedACK()
        #expect(machine.state == .established)
        #expect(machine.sentFIN() == false)
        #expect(machine.state == .localClosed)
        #expect(machine.canReceiveData && !machine.canSendData)
        #expect(machine.receivedFIN() == .fullyClosed)
        #expect(machine.isTerminal)
    }

    @Test func inboundHalfCloseThenReply() {
        var machine = StreamStateMachine(outbound: false)
        #expect(machine.state == .synReceived)
        #expect(machine.receivedFIN() == .halfClosed)  // FIN before accept is fine
        machine.sentACK()
        #expect(machine.state == .remoteClosed)
        #expect(machine.canSendData && !machine.canReceiveData)
        #expect(machine.sentFIN() == true)
        #expect(machine.state == .closed)
        #expect(machine.sentFIN() == nil)
    }

    @Test func finInAStateThatCannotTakeItIsAProtocolError() {
        var machine = StreamStateMachine(outbound: false)
        _ = machine.receivedFIN()
        #expect(machine.receivedFIN() == .protocolError)
        var reset = StreamStateMachine(outbound: true)
        reset.resetStream()
        #expect(reset.receivedFIN() == .protocolError)
        #expect(!reset.canReceiveData && !reset.canSendData)
    }
}

@Suite struct FlowControlTests {
    let now = NIODeadline.now()

    @Test func windowUpdateOnlyAfterHalfTheWindowIsConsumed() {
        var flow = StreamFlowController(maxStreamWindow: 256 * 1024)
        var budget = AutoTuneBudget(limit: 0)
        expectTrue(flow.receive(100 * 1024))
        // Received but not consumed: no credit, whatever happens.
        expectTrue(flow.windowUpdate(force: false, now: now, rtt: nil, budget: &budget, maxAutoTuned: nil) == nil)
        flow.consumed(100 * 1024)
        expectTrue(flow.windowUpdate(force: false, now: now, rtt: nil, budget: &budget, maxAutoTuned: nil) == nil)
        expectTrue(flow.receive(40 * 1024))
        flow.consumed(40 * 1024)
        // 140 KiB consumed >= 128 KiB: credit it all back.
        expectTrue(flow.windowUpdate(force: false, now: now, rtt: nil, budget: &budget, maxAutoTuned: nil) == 140 * 1024)
        #expect(flow.recvWindow == 256 * 1024)
    }

    @Test func overrunIsDetected() {
        var flow = StreamFlowController(maxStreamWindow: 256 * 1024)
        expectTrue(flow.receive(256 * 1024))
        expectTrue(!flow.receive(1))
    }

    @Test func largerMaxWindowIsAdvertisedOnOpen() {
        var flow = StreamFlowController(maxStreamWindow: 1024 * 1024)
        var budget = AutoTuneBudget(limit: 0)
        // The SYN/ACK carries the delta above the protocol's 256 KiB, as hashicorp does.
        expectTrue(flow.windowUpdate(force: true, now: now, rtt: nil, budget: &budget, maxAutoTuned: nil) == 768 * 1024)
        #expect(flow.recvWindow == 1024 * 1024)
    }

    @Test func sendWindowSaturatesAndIsConsumed() {
        var flow = StreamFlowController(maxStreamWindow: 256 * 1024)
        flow.sent(256 * 1024)
        #expect(flow.sendWindow == 0)
        flow.grantSend(.max)
        flow.grantSend(.max)
        #expect(flow.sendWindow == .max)
    }

    @Test func autoTuningGrowsWhenTheWindowIsConsumedWithinFewRTTs() {
        var flow = StreamFlowController(maxStreamWindow: 256 * 1024)
        var budget = AutoTuneBudget(limit: 64 * 1024 * 1024)
        let rtt = TimeAmount.milliseconds(10)
        _ = flow.windowUpdate(force: true, now: now, rtt: rtt, budget: &budget, maxAutoTuned: 16 << 20)
        expectTrue(flow.receive(200 * 1024))
        flow.consumed(200 * 1024)
        // Consumed half the window within 4 RTTs: the window doubles.
        let delta = flow.windowUpdate(force: false, now: now + .milliseconds(5), rtt: rtt, budget: &budget, maxAutoTuned: 16 << 20)
        #expect(delta.map(Int.init) == 200 * 1024 + 256 * 1024)
        #expect(flow.target == 512 * 1024)
        #expect(budget.granted == 256 * 1024)
        // A slow consumer (many RTTs) does not grow it.
        expectTrue(flow.receive(300 * 1024))
        flow.consumed(300 * 1024)
        let slow = flow.windowUpdate(force: false, now: now + .seconds(5), rtt: rtt, budget: &budget, maxAutoTuned: 16 << 20)
        #expect(slow.map(Int.init) == 300 * 1024)
        #expect(flow.target == 512 * 1024)
    }

    @Test func autoTuningIsBoundedPerStreamAndPerSession() {
        var budget = AutoTuneBudget(limit: 300 * 1024)
        let rtt = TimeAmount.milliseconds(10)
        var a = StreamFlowController(maxStreamWindow: 256 * 1024)
        var b = StreamFlowController(maxStreamWindow: 256 * 1024)
        for flow in [0, 1] {
            var stream = flow == 0 ? a : b
            _ = stream.windowUpdate(force: true, now: now, rtt: rtt, budget: &budget, maxAutoTuned: 1 << 20)
            for round in 1...10 {
                let amount = stream.recvWindow
                expectTrue(stream.receive(amount))
                stream.consumed(amount)
                _ = stream.windowUpdate(force: false, now: now + .microseconds(Int64(round)), rtt: rtt, budget: &budget, maxAutoTuned: 1 << 20)
            }
            if flow == 0 { a = stream } else { b = stream }
        }
        #expect(a.target <= 1 << 20)
        #expect(budget.granted <= 300 * 1024)
        #expect(a.autoTuneGrowth + b.autoTuneGrowth == budget.granted)
        budget.giveBack(a.autoTuneGrowth)
        #expect(budget.granted == b.autoTuneGrowth)
    }
}

/// `#expect` for expressions that mutate (the macro cannot capture `inout` uses).
func expectTrue(_ condition: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(condition, sourceLocation: sourceLocation)
}
