// Fault injection for the tests of failure handling
// (tests/e2e/group_failure_e2e.py), after the failpoints of FoundationDB and
// TiKV: named points in the code that throw when the environment asks.
//
//   LTX_FAIL_POINTS="NAME@RANK#HIT[,NAME@RANK#HIT...]"
//
// makes the HIT-th call (counting from 1) of fail_point(NAME) on MPI rank
// RANK (`*`: every rank) throw ltx::Error(kInternal, "injected failure at
// NAME"); `#HIT` may be left out (the first call). The rank is the
// launcher's (OMPI_COMM_WORLD_RANK, PMIX_RANK or PMI_RANK; 0 without one).
// Unset, a point costs one branch on a flag read once.
#pragma once

namespace ltx {

void fail_point(const char* name);

}  // namespace ltx
