// NcclCommunicator: the Communicator over NCCL for CUDA tensors.
//
// Built when the CUDA toolkit and NCCL are found (LTX_WITH_NCCL); it compiles
// and links without a GPU and runs where one is. One rank per GPU: the device
// is the node-local rank modulo the visible GPUs. The NCCL unique id is
// bootstrapped over MPI. Work is queued on the current CUDA stream (torch's,
// when libtorch has CUDA). On any NCCL error the communicator is aborted
// (ncclCommAbort), so peers blocked in a collective are released instead of
// hanging, and every later call fails. One thread at a time.
#pragma once

#ifdef LTX_WITH_NCCL

#include <mpi.h>
#include <nccl.h>

#include <chrono>

#include "dist/communicator.h"

namespace ltx::dist {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `bootstrap` (all ranks must call it). Throws ltx::Error
  // when no GPU is visible or NCCL cannot start.
  NcclCommunicator(MPI_Comm bootstrap, int local_rank,
                   std::chrono::milliseconds timeout = std::chrono::minutes(10));
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  at::Device device() const override;
  const char* backend_name() const override { return "nccl"; }

  void broadcast(at::Tensor& tensor, int root) override;
  void all_to_all_into(const at::Tensor& input, at::Tensor& output) override;
  at::Tensor all_gather(const at::Tensor& input) override;
  at::Tensor gather(const at::Tensor& input, int root) override;
  // Waits for this rank's queued NCCL work, watching for asynchronous NCCL
  // errors and the timeout (either aborts the communicator), then MPI_Barrier.
  void barrier() override;

 private:
  template <typename F>
  void guarded(const char* op, F&& f);
  void check_usable(const char* op) const;
  void abort_comm() noexcept;

  MPI_Comm mpi_comm_ = MPI_COMM_NULL;
  ncclComm_t comm_ = nullptr;
  int rank_ = 0;
  int size_ = 1;
  int device_ = 0;
  bool aborted_ = false;
  std::chrono::milliseconds timeout_;
};

}  // namespace ltx::dist

#endif  // LTX_WITH_NCCL
