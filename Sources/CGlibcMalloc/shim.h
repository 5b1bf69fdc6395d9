// mallopt(3) and its M_* parameters, which Swift's Glibc module leaves out;
// MallocTuning (Sources/MuxRPC/MallocTuning.swift) sets three of them. glibc only.
#if defined(__linux__)
#include <features.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#endif
