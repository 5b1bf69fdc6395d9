// What glibc's malloc does with the buffers of large messages: on a thread of
// its own, allocate, write and free a few blocks per round, as an RPC with a
// large payload does per call, and count the thread's minor page faults.
// With glibc's defaults a thread's heap gives the freed memory back to the
// kernel after each round and faults it in again in the next; with
// MallocTuning's settings (M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD 64 MiB,
// M_TOP_PAD 1 MiB) only the first round faults.
//
//   cc -O2 -pthread Benchmarks/malloc-tuning/heap-reuse.c -o /tmp/heap-reuse
//   /tmp/heap-reuse 64 64 64          # three 64 KiB blocks a round, defaults
//   /tmp/heap-reuse 64 64 64 tuned    # the same with MallocTuning's settings
//   /tmp/heap-reuse 1024 1024 1024 tuned   # 1 MiB blocks, as a 1 MiB Echo call
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

enum { BLOCKS = 3, ROUNDS = 200 };
static size_t sizes[BLOCKS];

static long thread_faults(void) {
    struct rusage usage;
    getrusage(RUSAGE_THREAD, &usage);
    return usage.ru_minflt;
}

static void *rounds(void *unused) {
    (void)unused;
    long before = thread_faults();
    for (int round = 0; round < ROUNDS; round++) {
        void *blocks[BLOCKS];
        for (int i = 0; i < BLOCKS; i++) {
            blocks[i] = malloc(sizes[i]);
            memset(blocks[i], 1, sizes[i]);
        }
        for (int i = 0; i < BLOCKS; i++) free(blocks[i]);
    }
    printf("%d rounds of %zu, %zu and %zu KiB: %ld page faults\n", ROUNDS, sizes[0] >> 10, sizes[1] >> 10,
           sizes[2] >> 10, thread_faults() - before);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s KiB KiB KiB [tuned]\n", argv[0]);
        return 2;
    }
    for (int i = 0; i < BLOCKS; i++) sizes[i] = (size_t)atoi(argv[i + 1]) << 10;
    if (argc > 4) {
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, 64 << 20);
        mallopt(M_TOP_PAD, 1 << 20);
    }
    pthread_t thread;
    pthread_create(&thread, NULL, rounds, NULL);
    pthread_join(thread, NULL);
    return 0;
}
