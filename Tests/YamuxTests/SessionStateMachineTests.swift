import NIOCore
import Testing
@testable import Yamux

/// `YamuxSessionStateMachine` alone: events in, actions out, no channel, no event loop.
@Suite struct SessionStateMachineTests {
    /// What the machine keeps for a stream; in the session it is the stream's channel.
    final class TestStream: YamuxStreamIdentity {
        let streamID: UInt32
        init(_ streamID: UInt32) { self.streamID = streamID }
    }

    typealias Machine = YamuxSessionStateMachine<TestStream>

    private static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private static let window = YamuxConfiguration.initialStreamWindow

    private func makeMachine(
        role: YamuxRole = .client,
        _ configure: (inout YamuxConfiguration) -> Void = { _ in }
    ) -> Machine {
        var configuration = YamuxConfiguration()
        configuration.enableWindowAutoTuning = false
        configure(&configuration)
        var machine = Machine(role: role, configuration: configuration)
        let started = machine.start()
        #expect(started)
        return machine
    }

    private func open(_ machine: inout Machine) throws -> (TestStream, YamuxFrameHeader) {
        guard case .opened(let stream, let syn) = machine.openStream(now: Self.start, makeStream: TestStream.init) else {
            Issue.record("the open did not go out")
            throw CancellationError()
        }
        return (stream, syn)
    }

    private func frame(
        _ machine: inout Machine,
        _ type: YamuxFrameType,
        _ flags: YamuxFrameFlags = [],
        id: UInt32,
        length: UInt32 = 0,
        epoch: UInt64 = 1
    ) -> Machine.StreamFrameAction {
        machine.receivedStreamHeader(
            YamuxFrameHeader(type: type, flags: flags, streamID: id, length: length),
            flushEpoch: epoch,
            makeStream: TestStream.init
        )
    }

    private func effects(_ action: Machine.StreamFrameAction) throws -> (TestStream, Machine.StreamFrameEffects) {
        guard case .update(let stream, let effects) = action else {
            Issue.record("expected an update, got \(action)")
            throw CancellationError()
        }
        return (stream, effects)
    }

    private func protocolError(_ action: Machine.StreamFrameAction) -> YamuxError.Code? {
        if case .protocolError(let error) = action { return error.code }
        return nil
    }

    /// A server-side stream the peer opened and the application accepted.
    private func acceptedInbound(_ machine: inout Machine, id: UInt32 = 1) throws -> TestStream {
        _ = try self.effects(self.frame(&machine, .windowUpdate, .syn, id: id))
        guard case .accepted(let stream, _) = machine.acceptStream(now: Self.start) else {
            Issue.record("nothing to accept")
            throw CancellationError()
        }
        return stream
    }

    // MARK: opening and accepting

    @Test func opensUseTheRolesParityAndTheSYNCarriesTheExtraWindow() throws {
        var client = self.makeMachine(role: .client) { $0.maxStreamWindowSize = 1024 * 1024 }
        let (first, syn) = try self.open(&client)
        let (second, _) = try self.open(&client)
        #expect([first.streamID, second.streamID] == [1, 3])
        #expect(syn == YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: 1, length: 1024 * 1024 - Self.window))
        var server = self.makeMachine(role: .server)
        #expect(try self.open(&server).0.streamID == 2)
        #expect(try self.open(&server).1.length == 0, "the default window is the initial one: nothing extra")
    }

    @Test func opensWaitUntilStartAndFailOnceClosed() {
        var machine = Machine(role: .client, configuration: YamuxConfiguration())
        guard case .deferUntilActive = machine.openStream(now: Self.start, makeStream: TestStream.init) else {
            Issue.record("an open before start must wait")
            return
        }
        let started = machine.start()
        #expect(started)
        let startedAgain = machine.start()
        #expect(!startedAgain, "starts once")
        let closure = machine.close(error: .connectionClosed)
        #expect(closure?.streams.isEmpty == true)
        let closedAgain = machine.close(error: .sessionClosed)
        #expect(closedAgain == nil, "closes once")
        guard case .failed(let error) = machine.openStream(now: Self.start, makeStream: TestStream.init) else {
            Issue.record("an open after close must fail")
            return
        }
        #expect(error.code == .connectionClosed)
    }

    @Test func unacknowledgedOpensAreLimitedAndTheACKFreesASlot() throws {
        var machine = self.makeMachine { $0.acceptBacklog = 2 }
        let (first, _) = try self.open(&machine)
        _ = try self.open(&machine)
        guard case .waitForSYNSlot = machine.openStream(now: Self.start, makeStream: TestStream.init) else {
            Issue.record("a third un-ACKed open must wait")
            return
        }
        #expect(machine.inflightSYNs == 2)
        #expect(!machine.waitingOpenMayStart)
        #expect(machine.isAwaitingACK(first.streamID))

        let (acked, effects) = try self.effects(self.frame(&machine, .windowUpdate, .ack, id: first.streamID))
        #expect(acked === first)
        #expect(effects.acknowledged)
        #expect(!machine.isAwaitingACK(first.streamID))
        #expect(machine.streams[first.streamID]?.lifecycle.state == .established)
        #expect(machine.waitingOpenMayStart)
        guard case .opened(let third, _) = machine.resumeWaitingOpen(now: Self.start, makeStream: TestStream.init) else {
            Issue.record("the waiting open must go once a slot is free")
            return
        }
        #expect(third.streamID == 5)
        #expect(!machine.waitingOpenMayStart)
    }

    @Test func aResetOfAnUnacknowledgedOpenFreesItsSlot() throws {
        var machine = self.makeMachine { $0.acceptBacklog = 1 }
        let (stream, _) = try self.open(&machine)
        guard case .waitForSYNSlot = machine.openStream(now: Self.start, makeStream: TestStream.init) else {
            Issue.record("the second open must wait")
            return
        }
        guard case .peerReset(let reset) = self.frame(&machine, .windowUpdate, .rst, id: stream.streamID) else {
            Issue.record("RST must reset the stream")
            return
        }
        #expect(reset === stream)
        #expect(machine.streams.isEmpty)
        #expect(machine.waitingOpenMayStart)
    }

    @Test func inboundStreamsWaitInTheBacklogAndAreACKedWhenAccepted() throws {
        var machine = self.makeMachine(role: .server) { $0.maxStreamWindowSize = 512 * 1024 }
        guard case .wait = machine.acceptStream(now: Self.start) else {
            Issue.record("nothing to accept yet")
            return
        }
        let (stream, effects) = try self.effects(self.frame(&machine, .windowUpdate, .syn, id: 1))
        #expect(effects.openedInbound)
        #expect(machine.acceptBacklog.elementsEqual([1]))
        #expect(machine.streams[1]?.lifecycle.state == .synReceived)
        guard case .accepted(let accepted, let ack) = machine.acceptStream(now: Self.start) else {
            Issue.record("the stream must be accepted")
            return
        }
        #expect(accepted === stream)
        #expect(ack == YamuxFrameHeader(type: .windowUpdate, flags: .ack, streamID: 1, length: 256 * 1024))
        #expect(machine.streams[1]?.lifecycle.state == .established)
        #expect(machine.acceptBacklog.isEmpty)
    }

    @Test func theBacklogAndTheStreamLimitRefuseMoreSYNs() throws {
        var backlog = self.makeMachine(role: .server) { $0.acceptBacklog = 2 }
        _ = try self.effects(self.frame(&backlog, .windowUpdate, .syn, id: 1))
        _ = try self.effects(self.frame(&backlog, .windowUpdate, .syn, id: 3))
        guard case .refuse(let rst) = self.frame(&backlog, .windowUpdate, .syn, id: 5) else {
            Issue.record("a full backlog must refuse")
            return
        }
        #expect(rst == YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: 5, length: 0))
        guard case .discard = self.frame(&backlog, .data, id: 5, length: 0) else {
            Issue.record("frames for a refused stream are discarded")
            return
        }

        var limited = self.makeMachine(role: .server) { $0.maxConcurrentStreams = 1 }
        _ = try self.effects(self.frame(&limited, .windowUpdate, .syn, id: 1))
        guard case .refuse = self.frame(&limited, .windowUpdate, .syn, id: 3) else {
            Issue.record("maxConcurrentStreams must refuse")
            return
        }
        guard case .failed(let error) = limited.openStream(now: Self.start, makeStream: TestStream.init) else {
            Issue.record("our own open counts against the limit too")
            return
        }
        #expect(error.code == .tooManyStreams)
    }

    @Test func streamIDsOfTheWrongParityOrZeroAreRefusedAndDuplicatesAreProtocolErrors() throws {
        var server = self.makeMachine(role: .server)
        guard case .refuse = self.frame(&server, .windowUpdate, .syn, id: 2) else {
            Issue.record("a client opens odd ids only")
            return
        }
        guard case .refuse = self.frame(&server, .windowUpdate, .syn, id: 0) else {
            Issue.record("stream 0 is never a stream")
            return
        }
        _ = try self.effects(self.frame(&server, .windowUpdate, .syn, id: 7))
        #expect(self.protocolError(self.frame(&server, .windowUpdate, .syn, id: 7)) == .duplicateStream)

        var client = self.makeMachine(role: .client)
        guard case .refuse = self.frame(&client, .windowUpdate, .syn, id: 1) else {
            Issue.record("a server opens even ids only")
            return
        }
    }

    @Test func anIDIsFreeAgainOnceItsStreamEnded() throws {
        var machine = self.makeMachine(role: .server)
        let first = try self.acceptedInbound(&machine, id: 1)
        let firstReset = machine.resetStream(first)
        #expect(firstReset != nil)
        let second = try self.acceptedInbound(&machine, id: 1)
        #expect(second !== first)
        // The old stream's calls no longer reach the stream that reuses its id.
        let staleReset = machine.resetStream(first)
        #expect(staleReset == nil)
        let staleWindow = machine.reserveSendWindow(for: first, wanted: 10)
        #expect(staleWindow == nil)
        let newWindow = machine.reserveSendWindow(for: second, wanted: 10)
        #expect(newWindow == 10)
    }

    // MARK: data and windows

    @Test func dataWithinTheWindowIsTakenAndBeyondItIsAProtocolError() throws {
        var machine = self.makeMachine(role: .server)
        let stream = try self.acceptedInbound(&machine)
        let (target, effects) = try self.effects(self.frame(&machine, .data, id: 1, length: Self.window))
        #expect(target === stream)
        #expect(effects.payloadFollows)
        let firstPiece = machine.receivedPayload(last: false)
        let piece = try #require(firstPiece)
        #expect(piece.stream === stream)
        let lastPiece = machine.receivedPayload(last: true)
        #expect(lastPiece?.streamID == 1)
        let pieceAfterTheEnd = machine.receivedPayload(last: true)
        #expect(pieceAfterTheEnd == nil, "the frame is over")
        #expect(self.protocolError(self.frame(&machine, .data, id: 1, length: 1)) == .windowExceeded)
    }

    @Test func readDataIsCreditedBackOnceHalfTheWindowIsFree() throws {
        var machine = self.makeMachine(role: .server)
        let stream = try self.acceptedInbound(&machine)
        _ = try self.effects(self.frame(&machine, .data, id: 1, length: Self.window))
        let earlyUpdate = machine.consumed(Self.window / 2 - 1, by: stream, now: Self.start, rtt: nil)
        #expect(earlyUpdate == nil)
        let update = machine.consumed(1, by: stream, now: Self.start, rtt: nil)
        #expect(update == YamuxFrameHeader(type: .windowUpdate, streamID: 1, length: Self.window / 2))
        #expect(machine.streams[1]?.flow.recvWindow == Self.window / 2)
    }

    @Test func noCreditBeforeTheACK() throws {
        var machine = self.makeMachine(role: .server)
        let (stream, _) = try self.effects(self.frame(&machine, .windowUpdate, .syn, id: 1))
        _ = try self.effects(self.frame(&machine, .data, id: 1, length: Self.window))
        let updateBeforeACK = machine.consumed(Self.window, by: stream, now: Self.start, rtt: nil)
        #expect(updateBeforeACK == nil)
    }

    @Test func sendingIsBoundByThePeersWindowAndItsUpdates() throws {
        var machine = self.makeMachine()
        let (stream, _) = try self.open(&machine)
        let firstSend = machine.reserveSendWindow(for: stream, wanted: 300_000)
        #expect(firstSend == Int(Self.window))
        let sendWithNoWindow = machine.reserveSendWindow(for: stream, wanted: 1)
        #expect(sendWithNoWindow == 0, "the window is spent")
        let (_, effects) = try self.effects(self.frame(&machine, .windowUpdate, .ack, id: 1, length: 1000))
        #expect(effects.sendWindowGrew)
        let sendAfterUpdate = machine.reserveSendWindow(for: stream, wanted: 5000)
        #expect(sendAfterUpdate == 1000)
    }

    @Test func autoTunedWindowIsGivenBackWhenTheStreamEnds() throws {
        var machine = self.makeMachine(role: .server) { $0.enableWindowAutoTuning = true }
        let stream = try self.acceptedInbound(&machine)
        _ = try self.effects(self.frame(&machine, .data, id: 1, length: Self.window))
        // Half the window read within a few round trips of the ACK: the window limits, so it grows.
        let update = machine.consumed(Self.window / 2, by: stream, now: Self.start + .milliseconds(1), rtt: .milliseconds(10))
        #expect(update?.length == Self.window / 2 + Self.window)
        #expect(machine.autoTuneBudget.granted == Int(Self.window))
        let rst = machine.resetStream(stream)
        #expect(rst != nil)
        #expect(machine.autoTuneBudget.granted == 0)
    }

    @Test func theUnreadLimitEndsTheSession() {
        var machine = self.makeMachine { $0.maxSessionUnreadBytes = 100 }
        machine.unreadBytesChanged(by: 100)
        #expect(!machine.unreadLimitExceeded)
        machine.unreadBytesChanged(by: 1)
        #expect(machine.unreadLimitExceeded)
        machine.unreadBytesChanged(by: -50)
        #expect(!machine.unreadLimitExceeded)
        machine.unreadBytesChanged(by: 50)
        _ = machine.close(error: .unreadLimitExceeded)
        #expect(!machine.unreadLimitExceeded, "a closed session has nothing left to end")
    }

    @Test func aStreamCountsForEarlyFlushesOncePerEpoch() throws {
        var machine = self.makeMachine(role: .server)
        let stream = try self.acceptedInbound(&machine)
        #expect(try self.effects(self.frame(&machine, .data, id: 1, length: 10, epoch: 4)).1.firstDataInFlushEpoch)
        #expect(try !self.effects(self.frame(&machine, .data, id: 1, length: 10, epoch: 4)).1.firstDataInFlushEpoch)
        let sameEpoch = machine.streamCarriesData(stream, flushEpoch: 4)
        #expect(sameEpoch == false)
        let nextEpoch = machine.streamCarriesData(stream, flushEpoch: 5)
        #expect(nextEpoch == true)
        let rst = machine.resetStream(stream)
        #expect(rst != nil)
        let afterReset = machine.streamCarriesData(stream, flushEpoch: 6)
        #expect(afterReset == nil, "a stream that is gone sends nothing")
    }

    // MARK: FIN and RST

    @Test func theirFINThenOursClosesTheStream() throws {
        var machine = self.makeMachine(role: .server)
        let stream = try self.acceptedInbound(&machine)
        #expect(try self.effects(self.frame(&machine, .windowUpdate, .fin, id: 1)).1.fin == .halfClosed)
        #expect(machine.streams[1]?.lifecycle.state == .remoteClosed)
        _ = try self.effects(self.frame(&machine, .data, id: 1, length: 0))
        #expect(self.protocolError(self.frame(&machine, .data, id: 1, length: 1)) == .unexpectedData)
        #expect(self.protocolError(self.frame(&machine, .windowUpdate, .fin, id: 1)) == .unexpectedFIN)
        let sendAfterTheirFIN = machine.reserveSendWindow(for: stream, wanted: 5)
        #expect(sendAfterTheirFIN == 5, "our side is still open")
        guard case .fullyClosed(let fin) = machine.sendFIN(stream) else {
            Issue.record("our FIN must close the stream")
            return
        }
        #expect(fin == YamuxFrameHeader(type: .windowUpdate, flags: .fin, streamID: 1, length: 0))
        #expect(machine.streams.isEmpty)
        guard case .alreadySent = machine.sendFIN(stream) else {
            Issue.record("a second FIN sends nothing")
            return
        }
    }

    @Test func ourFINThenTheirsClosesTheStream() throws {
        var machine = self.makeMachine()
        let (stream, _) = try self.open(&machine)
        guard case .halfClosed = machine.sendFIN(stream) else {
            Issue.record("our FIN half-closes")
            return
        }
        guard case .alreadySent = machine.sendFIN(stream) else {
            Issue.record("one FIN only")
            return
        }
        let sendAfterOurFIN = machine.reserveSendWindow(for: stream, wanted: 1)
        #expect(sendAfterOurFIN == nil, "no data after our FIN")
        _ = try self.effects(self.frame(&machine, .data, id: 1, length: 10))
        let piece = machine.receivedPayload(last: true)
        #expect(piece?.stream === stream)
        let (_, effects) = try self.effects(self.frame(&machine, .windowUpdate, [.ack, .fin], id: 1))
        #expect(effects.acknowledged)
        #expect(effects.fin == .fullyClosed)
        #expect(machine.streams.isEmpty)
        #expect(machine.inflightSYNs == 0)
    }

    @Test func aFINOnADataFrameAppliesAfterItsPayload() throws {
        var machine = self.makeMachine(role: .server)
        let stream = try self.acceptedInbound(&machine)
        let (_, effects) = try self.effects(self.frame(&machine, .data, .fin, id: 1, length: 10))
        #expect(effects.fin == .none)
        let lastPiece = machine.receivedPayload(last: true)
        let payload = try #require(lastPiece)
        #expect(payload.flags.contains(.fin))
        guard case .halfClosed(let closed) = machine.receivedFIN(on: stream) else {
            Issue.record("the FIN half-closes once the payload is in")
            return
        }
        #expect(closed === stream)
    }

    @Test func peerResetRemovesTheStreamAndLaterFramesAreDiscarded() throws {
        var machine = self.makeMachine(role: .server)
        let stream = try self.acceptedInbound(&machine)
        guard case .peerReset(let reset) = self.frame(&machine, .windowUpdate, .rst, id: 1, length: 42) else {
            Issue.record("RST resets")
            return
        }
        #expect(reset === stream)
        #expect(machine.streams.isEmpty)
        guard case .discard = self.frame(&machine, .data, id: 1, length: 10) else {
            Issue.record("frames after the RST are discarded")
            return
        }
        let pieceAfterRST = machine.receivedPayload(last: true)
        #expect(pieceAfterRST == nil)
    }

    @Test func ourResetSendsRSTOnceAndDropsTheRestOfAPayload() throws {
        var machine = self.makeMachine(role: .server)
        let stream = try self.acceptedInbound(&machine)
        _ = try self.effects(self.frame(&machine, .data, id: 1, length: 100))
        let rst = machine.resetStream(stream)
        #expect(rst == YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: 1, length: 0))
        let secondRST = machine.resetStream(stream)
        #expect(secondRST == nil)
        let pieceAfterReset = machine.receivedPayload(last: true)
        #expect(pieceAfterReset == nil, "the payload of a reset stream is dropped")
    }

    @Test func anUnacceptedStreamThatEndsLeavesTheBacklog() throws {
        var machine = self.makeMachine(role: .server)
        _ = try self.effects(self.frame(&machine, .windowUpdate, .syn, id: 1))
        _ = try self.effects(self.frame(&machine, .windowUpdate, .syn, id: 3))
        guard case .peerReset = self.frame(&machine, .windowUpdate, .rst, id: 1) else {
            Issue.record("RST resets")
            return
        }
        guard case .accepted(let stream, _) = machine.acceptStream(now: Self.start) else {
            Issue.record("the other stream is still there")
            return
        }
        #expect(stream.streamID == 3)
    }

    // MARK: GoAway and close

    @Test func afterOurGoAwayNewStreamsAreRefusedAndAcceptsEnd() throws {
        var machine = self.makeMachine(role: .server)
        _ = try self.effects(self.frame(&machine, .windowUpdate, .syn, id: 1))
        let goAway = machine.goAway()
        #expect(goAway == YamuxFrameHeader(type: .goAway, streamID: 0, length: 0))
        let secondGoAway = machine.goAway()
        #expect(secondGoAway == nil, "one GoAway")
        #expect(machine.lifecycle == .localGoAwaySent(.refusingStreams))
        guard case .refuse = self.frame(&machine, .windowUpdate, .syn, id: 3) else {
            Issue.record("no new inbound streams after our GoAway")
            return
        }
        guard case .failed(let error) = machine.openStream(now: Self.start, makeStream: TestStream.init) else {
            Issue.record("we do not open after our GoAway")
            return
        }
        #expect(error.code == .localGoAway)
        guard case .accepted = machine.acceptStream(now: Self.start) else {
            Issue.record("the backlog is still served")
            return
        }
        guard case .noMoreStreams = machine.acceptStream(now: Self.start) else {
            Issue.record("then accepting ends")
            return
        }
        // Streams already open go on.
        _ = try self.effects(self.frame(&machine, .data, id: 1, length: 10))
    }

    @Test func afterTheirGoAwayOpensFailAndWaitingOnesAreRefused() throws {
        var machine = self.makeMachine { $0.acceptBacklog = 1 }
        let (stream, _) = try self.open(&machine)
        _ = machine.openStream(now: Self.start, makeStream: TestStream.init)
        let goAway = machine.receivedGoAway(code: 0)
        #expect(goAway == .refuseOpens(waitingOpens: 1))
        let secondGoAway = machine.receivedGoAway(code: 0)
        #expect(secondGoAway == .none)
        #expect(!machine.waitingOpenMayStart)
        guard case .failed(let error) = machine.openStream(now: Self.start, makeStream: TestStream.init) else {
            Issue.record("no opens after their GoAway")
            return
        }
        #expect(error.code == .remoteGoAway)
        let send = machine.reserveSendWindow(for: stream, wanted: 1)
        #expect(send == 1, "open streams go on")
        _ = machine.goAway()
        #expect(machine.lifecycle == .bothGoneAway(.refusingStreams))
        #expect(machine.isRunning)
    }

    @Test func goAwayWithAnErrorCodeClosesTheSession() {
        var machine = self.makeMachine()
        let protocolErrorGoAway = machine.receivedGoAway(code: 1)
        #expect(protocolErrorGoAway == .close(.remoteProtocolError))
        let internalErrorGoAway = machine.receivedGoAway(code: 2)
        #expect(internalErrorGoAway == .close(.remoteInternalError))
        guard case .close(let error) = machine.receivedGoAway(code: 9) else {
            Issue.record("an unknown code ends the session")
            return
        }
        #expect(error.code == .remoteGoAwayUnknownCode)
    }

    @Test func closeHandsBackEveryStreamAndWaitingOpen() throws {
        var machine = self.makeMachine(role: .server) { $0.acceptBacklog = 1 }
        _ = try self.open(&machine)
        _ = machine.openStream(now: Self.start, makeStream: TestStream.init)
        _ = try self.effects(self.frame(&machine, .windowUpdate, .syn, id: 1))
        let closed = machine.close(error: .keepAliveTimeout)
        let closure = try #require(closed)
        #expect(Set(closure.streams.map(\.streamID)) == [1, 2])
        #expect(closure.waitingOpens == 1)
        #expect(machine.streams.isEmpty && machine.acceptBacklog.isEmpty && machine.inflightSYNs == 0)
        #expect(!machine.isRunning)
        guard case .failed(let error) = machine.acceptStream(now: Self.start) else {
            Issue.record("accepts fail with the session's error")
            return
        }
        #expect(error.code == .keepAliveTimeout)
    }

    @Test func aNormallyClosedSessionEndsAcceptsWithoutError() {
        var machine = self.makeMachine()
        _ = machine.close(error: .sessionClosed)
        guard case .noMoreStreams = machine.acceptStream(now: Self.start) else {
            Issue.record("a normal close ends the inbound streams")
            return
        }
    }

    @Test func aQuiescingSessionMayCloseOnceNoStreamIsInUse() throws {
        var machine = self.makeMachine(role: .server)
        let stream = try self.acceptedInbound(&machine)
        #expect(!machine.quiescedAndIdle(isInUse: { _ in false }), "not quiescing")
        let goAway = machine.goAway(quiescing: true)
        #expect(goAway != nil)
        #expect(machine.isQuiescing)
        #expect(!machine.quiescedAndIdle(isInUse: { $0 === stream }))
        #expect(machine.quiescedAndIdle(isInUse: { _ in false }))
        let secondGoAway = machine.goAway(quiescing: true)
        #expect(secondGoAway == nil, "one GoAway")
    }
}
