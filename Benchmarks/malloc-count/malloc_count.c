// malloc_count: counts heap allocations of a whole process, for the
// "allocations per frame" figures (valgrind 3.19 cannot read Swift 6.3's
// DWARF 5). LD_PRELOAD it; at exit it prints the count on stderr:
//
//   cc -O2 -shared -fPIC -o /tmp/malloc_count.so malloc_count.c -ldl
//   LD_PRELOAD=/tmp/malloc_count.so ./program ...   ->  "malloc_count: allocations=N"
//
// Counts malloc, calloc, realloc (new blocks only), posix_memalign,
// aligned_alloc and memalign. dlsym itself may call calloc before the real
// one is known; those early calls are served from a small static arena.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_long allocations;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void (*real_free)(void *);

static char arena[4096];
static size_t arena_used;

static int in_arena(void *p) { return (char *)p >= arena && (char *)p < arena + sizeof arena; }

static void resolve(void) {
    if (real_malloc) return;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_free = dlsym(RTLD_NEXT, "free");
}

void *malloc(size_t size) {
    resolve();
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return real_malloc(size);
}

void *calloc(size_t count, size_t size) {
    if (!real_calloc) {
        // Called from dlsym while resolving: serve from the arena.
        size_t bytes = (count * size + 15) & ~(size_t)15;
        if (arena_used + bytes > sizeof arena) return NULL;
        void *p = arena + arena_used;
        arena_used += bytes;
        memset(p, 0, bytes);
        return p;
    }
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return real_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    resolve();
    if (pointer == NULL) atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    if (in_arena(pointer)) {
        void *fresh = real_malloc(size);
        if (fresh) memcpy(fresh, pointer, size);
        return fresh;
    }
    return real_realloc(pointer, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    resolve();
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return real_posix_memalign(out, alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    resolve();
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return real_aligned_alloc(alignment, size);
}

void *memalign(size_t alignment, size_t size) {
    resolve();
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return real_memalign(alignment, size);
}

void free(void *pointer) {
    if (in_arena(pointer)) return;
    resolve();
    real_free(pointer);
}

__attribute__((destructor)) static void report(void) {
    fprintf(stderr, "malloc_count: allocations=%ld\n", atomic_load(&allocations));
}
