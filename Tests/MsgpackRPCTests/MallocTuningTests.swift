#if canImport(Glibc)
import Glibc
import ProcessTuning
import Testing

/// `MallocTuning`: what glibc takes, and that freed large blocks are reused
/// without being faulted in again. The settings are process-wide, so the
/// suite runs its tests one at a time, and no other suite changes them.
/// What glibc's defaults cost is shown by Benchmarks/malloc-tuning/heap-reuse.c
/// in a fresh process and measured by `muxrpc-bench rpc --payload 1048576`
/// against `--default-malloc` (Docs/benchmarks.md, "Large messages"): in a
/// test process, earlier allocations have already moved
/// glibc's self-adjusting thresholds, so the defaults' faults cannot be
/// reproduced here.
@Suite(.serialized) struct MallocTuningTests {
    @Test func glibcTakesTheSettings() {
        #expect(MallocTuning.keepFreedMemoryForReuse())
        #expect(MallocTuning.keepFreedMemoryForReuse(mmapThreshold: 128 * 1024, trimThreshold: 128 * 1024, topPad: 0))
        #expect(MallocTuning.keepFreedMemoryForReuse(mmapThreshold: MallocTuning.maxMmapThreshold))
        // Back to the values the programs use, for the rest of this process.
        #expect(MallocTuning.keepFreedMemoryForReuse())
    }

    @Test func valuesOutOfRangeAreRefusedAndNothingIsSet() {
        #expect(!MallocTuning.keepFreedMemoryForReuse(mmapThreshold: 0))
        #expect(!MallocTuning.keepFreedMemoryForReuse(mmapThreshold: MallocTuning.maxMmapThreshold + 1))
        #expect(!MallocTuning.keepFreedMemoryForReuse(trimThreshold: -1))
        #expect(!MallocTuning.keepFreedMemoryForReuse(trimThreshold: Int(Int32.max) + 1))
        #expect(!MallocTuning.keepFreedMemoryForReuse(topPad: -1))
        #expect(!MallocTuning.keepFreedMemoryForReuse(topPad: Int(Int32.max) + 1))
    }

    /// The shape of a 1 MiB Echo call at one end: three buffers of about the
    /// message's size written and freed, call after call. With the heap's top
    /// trimmed after each call (glibc's 128 KiB trim threshold, which the
    /// mapping threshold alone left in place), every call faulted about
    /// 2 MiB in again: 512 faults.
    @Test func freedLargeBlocksAreReusedWithoutFaultingAgain() {
        #expect(MallocTuning.keepFreedMemoryForReuse())
        let blockSize = 1 << 20
        func call() {
            let blocks = (0..<3).map { _ in UnsafeMutableRawPointer.allocate(byteCount: blockSize, alignment: 16) }
            for block in blocks { block.initializeMemory(as: UInt8.self, repeating: 0xA5, count: blockSize) }
            for block in blocks.reversed() { block.deallocate() }
        }
        // The first call grows the heap; what follows should find the memory there.
        call()
        let calls = 50
        let before = minorFaultsOfThisThread()
        for _ in 0..<calls { call() }
        let faults = minorFaultsOfThisThread() - before
        // One block is 256 pages; other threads sharing the arena may move its top a little.
        #expect(faults < calls * 16, "\(faults) page faults in \(calls) calls")
    }

    private func minorFaultsOfThisThread() -> Int {
        var usage = rusage()
        // RUSAGE_THREAD, which Swift's Glibc module does not name.
        let status = getrusage(__rusage_who_t(1), &usage)
        precondition(status == 0, "getrusage(RUSAGE_THREAD) failed")
        return usage.ru_minflt
    }
}
#endif
