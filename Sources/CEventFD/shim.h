// eventfd(2), which Swift's Glibc module leaves out; the busy poller
// (Sources/MuxRPC/BusyPolling) keeps its loop awake with one. Linux only.
#if defined(__linux__)
#include <sys/eventfd.h>
#endif
