// NcclCommunicator: the Communicator over NCCL for CUDA tensors.
//
// Built when the CUDA toolkit and NCCL are found (LTX_WITH_NCCL); it compiles
// and links without a GPU and runs where one is. One rank per GPU: the device
// is the node-local rank, and a node must have a GPU for each of its ranks
// (NCCL refuses two ranks on one GPU): otherwise every rank fails at start
// with an error that says so. The NCCL unique id is bootstrapped over MPI.
// Work is queued on the current CUDA stream (torch's, when libtorch has
// CUDA). On an NCCL error on this rank the communicator is aborted
// (ncclCommAbort) and every later call fails; barrier() also gives up after
// `timeout`. An error that strikes one rank alone outside a collective (say,
// CUDA out of memory in a layer) leaves its peers waiting in their next
// collective until that rank aborts the group (dist/group_abort.h), whose
// hooks abort this communicator too. One thread at a time, but for the
// abort, which may come from another thread.
#pragma once

#ifdef LTX_WITH_NCCL

#include <mpi.h>
#include <nccl.h>

#include <atomic>
#include <chrono>

#include "dist/communicator.h"

namespace ltx::dist {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `bootstrap` (all ranks must call it); `local_rank` of
  // `local_size` ranks on this node. Throws ltx::Error on every rank when a
  // rank sees no GPU, a node has fewer GPUs than ranks, or NCCL cannot start.
  NcclCommunicator(MPI_Comm bootstrap, int local_rank, int local_size,
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
  // On this communicator's own stream, after an event from the current
  // stream; wait() makes the current stream wait for it. The tensors are kept
  // alive until then, so the caching allocator never reuses them early.
  std::unique_ptr<PendingCollective> start_all_to_all(const at::Tensor& input, at::Tensor& output) override;
  at::Tensor all_gather(const at::Tensor& input) override;
  void send_recv(const at::Tensor& send, int dest, at::Tensor& recv, int source) override;
  at::Tensor gather(const at::Tensor& input, int root) override;
  // Waits for this rank's queued NCCL work, watching for asynchronous NCCL
  // errors and the timeout (either aborts the communicator), then MPI_Barrier.
  void barrier() override;
  Status all_ok(const Status& local) override;
  Status root_verdict(const Status& local, std::string* payload = nullptr) override;
  std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  void init(int local_rank, int local_size);
  template <typename F>
  void guarded(const char* op, F&& f);
  void check_usable(const char* op) const;
  void abort_comm() noexcept;

  MPI_Comm mpi_comm_ = MPI_COMM_NULL;
  ncclComm_t comm_ = nullptr;
  int rank_ = 0;
  int size_ = 1;
  int device_ = 0;
  int local_rank_ = 0;  // picks the GPU
  int local_size_ = 1;
  void* comm_stream_ = nullptr;  // cudaStream_t, made on first use
  std::atomic<bool> aborted_{false};
  int abort_hook_ = 0;
  std::chrono::milliseconds timeout_;
};

}  // namespace ltx::dist

#endif  // LTX_WITH_NCCL
