// What a 64-byte round trip over loopback TCP costs the kernel alone: the
// floor under every "1 in flight" figure, with no runtime above the sockets.
//
//     cc -O2 -pthread Benchmarks/wake-up/tcp-roundtrip.c -o /tmp/tcp-roundtrip && /tmp/tcp-roundtrip
//
// One connection, TCP_NODELAY at both ends, 64 bytes sent, the same 64 sent
// back, and only then the next. Three ways to wait, as event loops wait:
//   - two threads, one per end, each sleeping in epoll_wait (NIO's loops
//     with no busy polling, two of them);
//   - two threads polling, epoll_wait with a zero timeout in a loop (loops
//     that busy-poll);
//   - one thread with both ends in one epoll set (one event loop for both).
// It prints the mean round trip of each.
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ROUND_TRIPS = 100000, SIZE = 64 };

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

// Both ends of a fresh loopback connection, non-blocking, no Nagle.
static void connected_pair(int *client, int *server) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    bind(listener, (struct sockaddr *)&address, sizeof address);
    listen(listener, 1);
    getsockname(listener, (struct sockaddr *)&address, &length);
    *client = socket(AF_INET, SOCK_STREAM, 0);
    connect(*client, (struct sockaddr *)&address, sizeof address);
    *server = accept(listener, NULL, NULL);
    close(listener);
    int one = 1;
    for (int i = 0; i < 2; i++) {
        int fd = i ? *server : *client;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, O_NONBLOCK);
    }
}

// Waits in epoll_wait (with `timeout`: -1 sleeps, 0 polls) until SIZE bytes
// have been read from `fd`.
static void receive(int epoll, int fd, int timeout) {
    char buffer[SIZE];
    int received = 0;
    while (received < SIZE) {
        struct epoll_event event;
        if (epoll_wait(epoll, &event, 1, timeout) <= 0) continue;
        ssize_t n = read(fd, buffer, SIZE - received);
        if (n > 0) received += (int)n;
    }
}

static int epoll_for(int fd) {
    int epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
    return epoll;
}

struct echo_end { int fd, timeout; };

// The server's thread: sends back each message it receives.
static void *echo(void *argument) {
    struct echo_end *end = argument;
    int epoll = epoll_for(end->fd);
    char message[SIZE] = {0};
    for (int i = 0; i < ROUND_TRIPS; i++) {
        receive(epoll, end->fd, end->timeout);
        write(end->fd, message, SIZE);
    }
    close(epoll);
    return NULL;
}

static double two_threads(int timeout) {
    int client, server;
    connected_pair(&client, &server);
    struct echo_end end = {server, timeout};
    pthread_t thread;
    pthread_create(&thread, NULL, echo, &end);
    int epoll = epoll_for(client);
    char message[SIZE] = {0};
    double start = now_us();
    for (int i = 0; i < ROUND_TRIPS; i++) {
        write(client, message, SIZE);
        receive(epoll, client, timeout);
    }
    double elapsed = now_us() - start;
    pthread_join(thread, NULL);
    close(epoll);
    close(client);
    close(server);
    return elapsed / ROUND_TRIPS;
}

static double one_thread(void) {
    int client, server;
    connected_pair(&client, &server);
    int epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = client};
    epoll_ctl(epoll, EPOLL_CTL_ADD, client, &event);
    event.data.fd = server;
    epoll_ctl(epoll, EPOLL_CTL_ADD, server, &event);
    char buffer[SIZE] = {0};
    int completed = 0, at_server = 0, at_client = 0;
    double start = now_us();
    write(client, buffer, SIZE);
    while (completed < ROUND_TRIPS) {
        struct epoll_event events[2];
        int ready = epoll_wait(epoll, events, 2, -1);
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            int *count = fd == server ? &at_server : &at_client;
            ssize_t n = read(fd, buffer, SIZE - *count);
            if (n <= 0) continue;
            *count += (int)n;
            if (*count < SIZE) continue;
            *count = 0;
            if (fd == server) {
                write(server, buffer, SIZE);
            } else if (++completed < ROUND_TRIPS) {
                write(client, buffer, SIZE);
            }
        }
    }
    double elapsed = now_us() - start;
    close(epoll);
    close(client);
    close(server);
    return elapsed / ROUND_TRIPS;
}

int main(void) {
    printf("two threads, sleeping: %.1f us per round trip\n", two_threads(-1));
    printf("two threads, polling:  %.1f us per round trip\n", two_threads(0));
    printf("one thread:            %.1f us per round trip\n", one_thread());
    return 0;
}
