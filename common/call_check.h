// Checks for calls into MPI, CUDA and NCCL: each names the call and the
// library's own error string, and throws ltx::Error (UNAVAILABLE for
// communication failures, INTERNAL for CUDA). Include the library's header
// (mpi.h, cuda_runtime.h, nccl.h) before expanding the matching macro; this
// header itself depends on none of them, so common/ stays free of MPI/CUDA.
#pragma once

#include <string>

#include "common/check.h"

namespace ltx::detail {
[[noreturn]] void throw_call_failure(StatusCode code, const char* library, const char* call,
                                     const char* file, int line, int error_code,
                                     const std::string& error_string);
}  // namespace ltx::detail

#define LTX_MPI_CHECK(call)                                                                 \
  do {                                                                                      \
    int ltx_mpi_rc_ = (call);                                                               \
    if (ltx_mpi_rc_ != MPI_SUCCESS) {                                                       \
      char ltx_mpi_msg_[MPI_MAX_ERROR_STRING] = {0};                                        \
      int ltx_mpi_len_ = 0;                                                                 \
      MPI_Error_string(ltx_mpi_rc_, ltx_mpi_msg_, &ltx_mpi_len_);                           \
      ::ltx::detail::throw_call_failure(::ltx::StatusCode::kUnavailable, "MPI", #call,      \
                                        __FILE__, __LINE__, ltx_mpi_rc_,                    \
                                        std::string(ltx_mpi_msg_, ltx_mpi_len_));           \
    }                                                                                       \
  } while (0)

#define LTX_CUDA_CHECK(call)                                                                 \
  do {                                                                                       \
    cudaError_t ltx_cuda_rc_ = (call);                                                       \
    if (ltx_cuda_rc_ != cudaSuccess) {                                                       \
      ::ltx::detail::throw_call_failure(::ltx::StatusCode::kInternal, "CUDA", #call, __FILE__, \
                                        __LINE__, static_cast<int>(ltx_cuda_rc_),            \
                                        cudaGetErrorString(ltx_cuda_rc_));                   \
    }                                                                                        \
  } while (0)

#define LTX_NCCL_CHECK(call)                                                                 \
  do {                                                                                       \
    ncclResult_t ltx_nccl_rc_ = (call);                                                      \
    if (ltx_nccl_rc_ != ncclSuccess && ltx_nccl_rc_ != ncclInProgress) {                     \
      ::ltx::detail::throw_call_failure(::ltx::StatusCode::kUnavailable, "NCCL", #call,      \
                                        __FILE__, __LINE__, static_cast<int>(ltx_nccl_rc_),  \
                                        ncclGetErrorString(ltx_nccl_rc_));                   \
    }                                                                                        \
  } while (0)
