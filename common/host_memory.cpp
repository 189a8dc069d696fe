#include "common/host_memory.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace ltx {

bool tune_host_allocator() {
  const char* keep = std::getenv("LTX_KEEP_MALLOC_DEFAULTS");
  if (keep != nullptr && std::strcmp(keep, "1") == 0) return false;
  bool ok = true;
  ok = mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1 && ok;        // blocks below 1 GiB come from the heap
  ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 && ok;        // keep up to 1 GiB of freed heap
  ok = mallopt(M_TOP_PAD, 64 << 20) == 1 && ok;              // grow the heap in 64 MiB steps
  return ok;
}

}  // namespace ltx
