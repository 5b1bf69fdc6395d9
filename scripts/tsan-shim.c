// Tells ThreadSanitizer about two synchronisations in the Swift 6 runtime that
// it cannot see on Linux; scripts/tsan.sh preloads it (LD_PRELOAD) into the
// test process and the programs it starts. Without it, correct code is
// reported as racing. Each wrapper forwards to the real function, and only
// adds __tsan_acquire/__tsan_release calls (and, for 2, a trampoline).
//
// 1. Synchronization.Mutex.
// Mutex.withLock is inlined into our (TSan-built) code, so its fast paths,
// an acquiring and a releasing compare-exchange on the lock word, are seen.
// Its slow paths are not: when a thread waits, the holder unlocks in
// _unlockSlow and the kernel hands the lock to the waiter in _lockSlow (a
// priority-inheritance futex), both inside libswiftSynchronization.so, which
// is not built with TSan. TSan then sees no order between the two critical
// sections and reports a race on whatever the Mutex protects. These wrappers
// add the missing edge on the lock word's address: a release before
// _unlockSlow, an acquire after _lockSlow (and a successful _tryLockSlow).
//
// The signatures are the Swift ABI of Synchronization._MutexHandle's slow
// paths in Swift 6.x: the handle (address-only) in the swiftself register.
//
// 2. A continuation resumed before its task awaits it.
// UnsafeContinuation.resume (on an event loop, say) reads and fills the
// awaiting task's continuation context and hands it the result; the runtime
// then releases the task for TSan and marks the continuation Resumed. When the
// task reaches swift_continuation_await and finds it Resumed, it runs on at
// once, without the acquire that the path through an executor has. TSan then
// sees nothing ordering the resumer's work before the task's, and reports the
// result's bytes, or the context's memory when the task reuses it, as racing
// ("withUnsafeThrowingContinuation" against "UnsafeContinuation.resume").
// The wrapper of swift_continuation_init makes every continuation resume
// through a trampoline that acquires the task first: it keeps the resume
// function (the context's ResumeParent) in a table keyed by the context, and
// puts the trampoline in its place, before the runtime copies it into the
// task. Every continuation is resumed exactly once, so each entry is used,
// and freed, once. With the table full, a continuation keeps its own resume
// function (and TSan may report it as before).

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SWIFTCC __attribute__((swiftcall))
#define SWIFTASYNCCC __attribute__((swiftasynccall))
#define SWIFTASYNCCONTEXT __attribute__((swift_async_context))
#define SWIFTSELF __attribute__((swift_context))

// From the TSan runtime of an instrumented executable; absent (null) in
// processes without TSan (the `swift test` driver, Go peers), where the
// wrappers only forward.
extern void __tsan_acquire(void *address) __attribute__((weak));
extern void __tsan_release(void *address) __attribute__((weak));

#define LOCK_SLOW "$s15Synchronization12_MutexHandleV9_lockSlowyys6UInt32VF"
#define TRY_LOCK_SLOW "$s15Synchronization12_MutexHandleV12_tryLockSlowSbyF"
#define UNLOCK_SLOW "$s15Synchronization12_MutexHandleV11_unlockSlowyyF"

typedef SWIFTCC void (*LockSlow)(uint32_t, void *SWIFTSELF);
typedef SWIFTCC bool (*TryLockSlow)(void *SWIFTSELF);
typedef SWIFTCC void (*UnlockSlow)(void *SWIFTSELF);

static void *next(const char *name) {
    void *function = dlsym(RTLD_NEXT, name);
    if (function == NULL) {
        fprintf(stderr, "tsan-shim: %s not found: %s\n", name, dlerror());
        abort();
    }
    return function;
}

SWIFTCC void lockSlow(uint32_t selfId, void *SWIFTSELF handle) __asm__(LOCK_SLOW);
SWIFTCC void lockSlow(uint32_t selfId, void *SWIFTSELF handle) {
    static LockSlow real;
    if (real == NULL) real = (LockSlow)next(LOCK_SLOW);
    real(selfId, handle);
    if (__tsan_acquire) __tsan_acquire(handle);
}

SWIFTCC bool tryLockSlow(void *SWIFTSELF handle) __asm__(TRY_LOCK_SLOW);
SWIFTCC bool tryLockSlow(void *SWIFTSELF handle) {
    static TryLockSlow real;
    if (real == NULL) real = (TryLockSlow)next(TRY_LOCK_SLOW);
    bool locked = real(handle);
    if (locked && __tsan_acquire) __tsan_acquire(handle);
    return locked;
}

SWIFTCC void unlockSlow(void *SWIFTSELF handle) __asm__(UNLOCK_SLOW);
SWIFTCC void unlockSlow(void *SWIFTSELF handle) {
    static UnlockSlow real;
    if (real == NULL) real = (UnlockSlow)next(UNLOCK_SLOW);
    if (__tsan_release) __tsan_release(handle);
    real(handle);
}

// MARK: 2. Continuations

// swift/ABI/Task.h: AsyncContext is Parent, then ResumeParent, then Flags.
enum { RESUME_PARENT_OFFSET = 8 };

typedef SWIFTASYNCCC void (*ResumeFunction)(void *SWIFTASYNCCONTEXT);
typedef SWIFTCC void *(*ContinuationInit)(void *, size_t);
extern SWIFTCC void *swift_task_getCurrent(void);

// Open addressing on the context's address; EMPTY ends a probe, FREED is a
// slot to reuse. Plain C11 atomics, which TSan does not see (this file is not
// instrumented), so the table adds no ordering of its own.
#define TABLE_BITS 16
#define TABLE_SIZE (1u << TABLE_BITS)
enum { EMPTY = 0, FREED = 1 };
static struct { uintptr_t context; ResumeFunction resume; } table[TABLE_SIZE];

static size_t slotFor(void *context) {
    return (size_t)(((uintptr_t)context >> 4) * 0x9E3779B97F4A7C15ull >> (64 - TABLE_BITS));
}

static bool remember(void *context, ResumeFunction resume) {
    size_t slot = slotFor(context);
    for (size_t probe = 0; probe < TABLE_SIZE; probe++, slot = (slot + 1) & (TABLE_SIZE - 1)) {
        uintptr_t seen = __atomic_load_n(&table[slot].context, __ATOMIC_ACQUIRE);
        if (seen != EMPTY && seen != FREED) continue;
        if (__atomic_compare_exchange_n(&table[slot].context, &seen, (uintptr_t)context, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            __atomic_store_n(&table[slot].resume, resume, __ATOMIC_RELEASE);
            return true;
        }
    }
    return false;
}

static ResumeFunction forget(void *context) {
    size_t slot = slotFor(context);
    for (size_t probe = 0; probe < TABLE_SIZE; probe++, slot = (slot + 1) & (TABLE_SIZE - 1)) {
        uintptr_t seen = __atomic_load_n(&table[slot].context, __ATOMIC_ACQUIRE);
        if (seen == EMPTY) break;
        if (seen != (uintptr_t)context) continue;
        ResumeFunction resume = __atomic_load_n(&table[slot].resume, __ATOMIC_ACQUIRE);
        __atomic_store_n(&table[slot].context, (uintptr_t)FREED, __ATOMIC_RELEASE);
        return resume;
    }
    fprintf(stderr, "tsan-shim: no resume function kept for continuation context %p\n", context);
    abort();
}

static SWIFTASYNCCC void resumeAfterAcquire(void *SWIFTASYNCCONTEXT context);
static SWIFTASYNCCC void resumeAfterAcquire(void *SWIFTASYNCCONTEXT context) {
    ResumeFunction resume = forget(context);
    *(ResumeFunction *)((char *)context + RESUME_PARENT_OFFSET) = resume;
    __tsan_acquire(swift_task_getCurrent());
    __attribute__((musttail)) return resume(context);
}

SWIFTCC void *continuationInit(void *context, size_t flags) __asm__("swift_continuation_init");
SWIFTCC void *continuationInit(void *context, size_t flags) {
    static ContinuationInit real;
    if (real == NULL) real = (ContinuationInit)next("swift_continuation_init");
    if (__tsan_acquire) {
        ResumeFunction *resume = (ResumeFunction *)((char *)context + RESUME_PARENT_OFFSET);
        if (*resume != resumeAfterAcquire && remember(context, *resume)) *resume = resumeAfterAcquire;
    }
    return real(context, flags);
}
