// Host allocator policy for the worker processes.
//
// glibc serves allocations above a (dynamic) threshold with fresh mmap pages
// and returns them on free; every new page then faults on first touch. Torch's
// CPU tensors of tens of MB are allocated and freed every step, so on CPUs the
// same work swung between 0.3 s and 2.6 s per chunk on the development VM
// (docs/benchmarks.md). tune_host_allocator() keeps large blocks in the heap
// instead (mallopt M_MMAP_THRESHOLD / M_TRIM_THRESHOLD / M_TOP_PAD). Call it
// once at the start of main(), before threads exist. LTX_KEEP_MALLOC_DEFAULTS=1
// leaves glibc's defaults.
#pragma once

namespace ltx {

// Returns false when skipped (env) or when mallopt refused a setting.
bool tune_host_allocator();

}  // namespace ltx
