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

    @Test func decoderSplitsFramesAcrossArbitraryChunks() throws {
        var wire = ByteBuffer()
        YamuxFrameHeader(type: .data, streamID: 1, length: 5).write(to: &wire)
        wire.writeString("hello")
        YamuxFrameHeader(type: .ping, flags: .syn, streamID: 0, length: 7).write(to: &wire)
        YamuxFrameHeader(type: .data, streamID: 3, length: 0).write(to: &wire)
        YamuxFrameHeader(type: .goAway, streamID: 0, length: 2).write(to: &wire)
        // Feed one byte at a time: every frame still comes out whole.
        let processor = NIOSingleStepByteToMessageProcessor(YamuxFrameDecoder(maxDataLength: 1 << 20))
        var frames: [YamuxFrame] = []
        for byte in wire.readableBytesView {
            try processor.process(buffer: ByteBuffer(bytes: [byte])) { frames.append($0) }
        }
        #expect(frames.map(\.header.type) == [.data, .ping, .data, .goAway])
        #expect(frames[0].payload.map { String(buffer: $0) } == "hello")
        #expect(frames[1].header.length == 7 && frames[1].payload == nil)
        #expect(frames[2].payload == nil)
        #expect(frames[3].header.length == 2)
    }

    @Test func decoderRejectsHugeDataLengthBeforeBuffering() {
        var wire = ByteBuffer()
        YamuxFrameHeader(type: .data, streamID: 1, length: .max).write(to: &wire)
        var decoder = YamuxFrameDecoder(maxDataLength: 256 * 1024)
        #expect(throws: YamuxError.self) { _ = try decoder.decode(buffer: &wire) }
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
