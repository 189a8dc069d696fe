// Communicator: collectives over torch tensors for one serving group.
//
// Two backends: MpiCommunicator moves CPU tensors with MPI (machines without
// GPUs, CI), NcclCommunicator moves CUDA tensors with NCCL on the current
// stream. Every collective must be entered by every rank of the group in the
// same order with matching shapes and dtypes; inputs of any dtype (bf16
// included) are sent as bytes, made contiguous first when they are not.
// Called from the one thread that drives the group (the inference thread);
// not thread-safe. Failures throw ltx::Error naming the library call.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "common/status.h"

namespace ltx::dist {

// A collective that was started and has not been waited for (see
// Communicator::start_all_to_all). Destroying it waits.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // Makes the result usable by the work that follows on this rank: on a CPU
  // backend, returns once the data has arrived; on NCCL, makes the current
  // stream wait for the communication stream (the host does not wait).
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Where this backend's tensors live: CPU for MPI, the rank's GPU for NCCL.
  virtual at::Device device() const = 0;
  virtual const char* backend_name() const = 0;

  // Root's `tensor` overwrites everyone's (same shape and dtype on all ranks).
  virtual void broadcast(at::Tensor& tensor, int root) = 0;
  // Equal-split all-to-all along dim 0: input [N*c, ...]; rows [i*c, (i+1)*c)
  // go to rank i; the output has the same shape, rows [i*c, ...) from rank i.
  at::Tensor all_to_all(const at::Tensor& input);
  // The same into a caller-owned contiguous `output` of input's shape and dtype
  // (hot loops reuse one buffer instead of allocating per call).
  virtual void all_to_all_into(const at::Tensor& input, at::Tensor& output) = 0;
  // The same, started and not finished: returns at once, so that work which
  // does not need the result runs while the data moves (MPI: a non-blocking
  // all-to-all; NCCL: its own stream, ordered after the current stream's work
  // by an event). `input` must not change and `output` must not be read
  // before wait(); both must stay alive until then. Collectives are started
  // in the same order on every rank. The default runs all_to_all_into at
  // once (nothing overlaps).
  virtual std::unique_ptr<PendingCollective> start_all_to_all(const at::Tensor& input, at::Tensor& output);
  // Point to point in one call: sends `send` to rank `dest` and receives into
  // `recv` (contiguous, caller-owned) from rank `source`, as MPI_Sendrecv; a
  // ring shift when every rank passes (rank + 1, rank - 1). Every rank of
  // the ring calls it with matching sizes. For ring attention.
  virtual void send_recv(const at::Tensor& send, int dest, at::Tensor& recv, int source) = 0;
  // Concatenation along dim 0 of every rank's input (same shape everywhere).
  virtual at::Tensor all_gather(const at::Tensor& input) = 0;
  // Like all_gather, but only `root` gets the result; others get an undefined tensor.
  virtual at::Tensor gather(const at::Tensor& input, int root) = 0;
  // Returns when every rank has entered it (and, for NCCL, when this rank's
  // queued work has finished).
  virtual void barrier() = 0;

  // Group agreement on the control plane (MPI, whatever the data plane; see
  // agreement.h). all_ok: OK on every rank when `local` is OK on every rank,
  // else the lowest failing rank's error everywhere (its own on a failing
  // rank). root_verdict: rank 0's `local` on every rank, and rank 0's
  // `*payload` too when it is OK.
  virtual Status all_ok(const Status& local) = 0;
  virtual Status root_verdict(const Status& local, std::string* payload = nullptr) = 0;

  // Collective: ranks passing the same `color` form a new group, ranked by
  // `key` (ties by rank), of the same backend and on the same device. For
  // CFG-parallel and distributed decoding.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

 protected:
  // Shared argument checks (caller errors: LTX_CHECK).
  void check_root(int root) const;
  void check_device(const at::Tensor& t, const char* op) const;
  // Checks send_recv arguments; returns the contiguous input.
  at::Tensor check_send_recv(const at::Tensor& send, int dest, const at::Tensor& recv, int source) const;
  // Checks all_to_all arguments; returns the contiguous input.
  at::Tensor check_all_to_all(const at::Tensor& input, const at::Tensor& output) const;
};

}  // namespace ltx::dist
