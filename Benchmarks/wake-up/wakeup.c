// What it costs to wake a sleeping thread, the cost busy polling avoids.
//
//     cc -O2 -pthread Benchmarks/wake-up/wakeup.c -o /tmp/wakeup && /tmp/wakeup
//
// Two threads pass a token back and forth over two eventfds, each waiting for
// it in epoll_wait as an event loop does: first blocking (the thread sleeps
// and the kernel wakes it, as NIO's loops do when idle), then polling
// (epoll_wait with a zero timeout in a loop, as a busy-polling loop does).
// It prints the mean round trip of each: the difference, halved, is the price
// of one wake-up on this machine.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

enum { ROUND_TRIPS = 20000 };

static int to_peer, to_main;
static int polling;

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int watch(int fd) {
    int epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
    return epoll;
}

static void await_token(int epoll, int fd) {
    struct epoll_event event;
    if (polling) {
        while (epoll_wait(epoll, &event, 1, 0) == 0) {
        }
    } else {
        epoll_wait(epoll, &event, 1, -1);
    }
    uint64_t value;
    if (read(fd, &value, sizeof value) != sizeof value) perror("read");
}

static void pass_token(int fd) {
    uint64_t one = 1;
    if (write(fd, &one, sizeof one) != sizeof one) perror("write");
}

static void *peer(void *unused) {
    (void)unused;
    int epoll = watch(to_peer);
    for (int i = 0; i < ROUND_TRIPS; i++) {
        await_token(epoll, to_peer);
        pass_token(to_main);
    }
    close(epoll);
    return NULL;
}

static double round_trip_us(int poll) {
    polling = poll;
    to_peer = eventfd(0, EFD_NONBLOCK);
    to_main = eventfd(0, EFD_NONBLOCK);
    int epoll = watch(to_main);
    pthread_t thread;
    pthread_create(&thread, NULL, peer, NULL);
    double start = now_us();
    for (int i = 0; i < ROUND_TRIPS; i++) {
        pass_token(to_peer);
        await_token(epoll, to_main);
    }
    double elapsed = now_us() - start;
    pthread_join(thread, NULL);
    close(epoll);
    close(to_peer);
    close(to_main);
    return elapsed / ROUND_TRIPS;
}

int main(void) {
    double sleeping = round_trip_us(0);
    double spinning = round_trip_us(1);
    printf("round_trip_sleeping_us=%.1f round_trip_polling_us=%.1f wake_up_us=%.1f\n",
           sleeping, spinning, (sleeping - spinning) / 2);
    return 0;
}
