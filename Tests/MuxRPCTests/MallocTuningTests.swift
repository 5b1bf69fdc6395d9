#if canImport(Glibc)
import MuxRPC
import Testing

/// `MallocTuning`'s contract. What the settings do to page faults is shown by
/// Benchmarks/malloc-tuning/heap-reuse.c in a fresh process and measured by
/// `muxrpc-bench rpc --payload 65536` against `--default-malloc`
/// (Docs/benchmarks.md, "Large messages: reads and the allocator"): in a test
/// process, earlier allocations have already moved glibc's self-adjusting
/// thresholds, so the faults of the defaults cannot be reproduced here.
@Suite struct MallocTuningTests {
    @Test func glibcTakesTheSettings() {
        #expect(MallocTuning.keepFreedMemoryForReuse())
        #expect(MallocTuning.keepFreedMemoryForReuse(topPad: 0, mmapThreshold: 128 * 1024))
        // Back to the values the programs use, for the rest of this process.
        #expect(MallocTuning.keepFreedMemoryForReuse())
    }

    @Test func valuesOutOfRangeAreRefusedAndNothingIsSet() {
        #expect(!MallocTuning.keepFreedMemoryForReuse(topPad: -1))
        #expect(!MallocTuning.keepFreedMemoryForReuse(mmapThreshold: 0))
        #expect(!MallocTuning.keepFreedMemoryForReuse(topPad: Int(Int32.max) + 1))
        #expect(!MallocTuning.keepFreedMemoryForReuse(mmapThreshold: Int(Int32.max) + 1))
    }
}
#endif
