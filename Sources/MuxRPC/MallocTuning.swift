#if canImport(Glibc)
import CGlibcMalloc
#endif

/// glibc `malloc` settings for processes that send or receive large messages.
///
/// Why: an RPC with a 64 KiB payload allocates a few buffers of 64 to 128 KiB
/// per call (the encoded message, the decoded value) and frees them when the
/// call is done. With glibc's defaults, a freed block at the top of a
/// thread's heap is handed back to the kernel, and blocks of 128 KiB or more
/// are `mmap`ed and `munmap`ed one by one. The next call then faults the same
/// memory in again, page by page, zeroed, and every `munmap` makes the other
/// cores flush their TLBs. On the project's 2-core VM that was 33 page faults
/// per 64 KiB Echo call and more than half of its CPU time: 0.57x Go's calls
/// per second with one call in flight and 0.56x with 32 (Docs/benchmarks.md,
/// "Large messages: reads and the allocator"). Go's runtime keeps freed memory for
/// reuse by design; this asks glibc to do the same.
///
/// What it sets: `M_TOP_PAD` (memory kept at the top of a heap when it is
/// trimmed, and added when it grows) and `M_MMAP_THRESHOLD` (the smallest
/// block given its own mapping). Setting either also turns off glibc's own
/// adjustment of the threshold, which is why both are set. The cost is memory
/// a process keeps after a burst: up to `topPad` per malloc arena (glibc makes
/// at most eight per core), and freed blocks below `mmapThreshold` stay in
/// the heap for reuse instead of going back to the kernel at once.
///
/// It changes the whole process, so MuxRPC never calls it on its own: a
/// program calls it once at start (`muxrpc-server`, `muxrpc-client` and
/// `muxrpc-bench` do). The same settings without code:
/// `GLIBC_TUNABLES=glibc.malloc.top_pad=1048576:glibc.malloc.mmap_threshold=4194304`.
public enum MallocTuning {
    /// Default `M_TOP_PAD`: 1 MiB.
    public static let defaultTopPad = 1 << 20
    /// Default `M_MMAP_THRESHOLD`: 4 MiB.
    public static let defaultMmapThreshold = 4 << 20

    /// Applies the settings; returns whether they took effect (false where
    /// the C library is not glibc, or it refused a value).
    @discardableResult
    public static func keepFreedMemoryForReuse(
        topPad: Int = defaultTopPad,
        mmapThreshold: Int = defaultMmapThreshold
    ) -> Bool {
        #if canImport(Glibc)
        guard topPad >= 0, mmapThreshold > 0,
            let pad = Int32(exactly: topPad), let threshold = Int32(exactly: mmapThreshold)
        else { return false }
        // mallopt returns 1 on success, 0 on error.
        let padSet = mallopt(M_TOP_PAD, pad) == 1
        let thresholdSet = mallopt(M_MMAP_THRESHOLD, threshold) == 1
        return padSet && thresholdSet
        #else
        return false
        #endif
    }
}
