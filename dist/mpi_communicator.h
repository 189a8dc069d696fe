// MpiCommunicator: the Communicator over MPI for CPU tensors.
//
// Owns a duplicate of the world communicator, so its traffic never matches
// messages of the control channel or of another communicator. Bytes move as
// MPI_BYTE in units chosen so counts fit MPI's int (messages over 2 GiB work).
// One thread at a time; see communicator.h.
#pragma once

#include <mpi.h>

#include "dist/communicator.h"

namespace ltx::dist {

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm parent);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  at::Device device() const override { return at::Device(at::kCPU); }
  const char* backend_name() const override { return "mpi"; }

  void broadcast(at::Tensor& tensor, int root) override;
  void all_to_all_into(const at::Tensor& input, at::Tensor& output) override;
  // MPI_Ialltoall: the data moves as MPI progresses it (inside MPI calls,
  // wait() among them).
  std::unique_ptr<PendingCollective> start_all_to_all(const at::Tensor& input, at::Tensor& output) override;
  at::Tensor all_gather(const at::Tensor& input) override;
  void send_recv(const at::Tensor& send, int dest, at::Tensor& recv, int source) override;
  at::Tensor gather(const at::Tensor& input, int root) override;
  void barrier() override;
  Status all_ok(const Status& local) override;
  Status root_verdict(const Status& local, std::string* payload = nullptr) override;
  std::unique_ptr<Communicator> split(int color, int key) override;

  MPI_Comm comm() const { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace ltx::dist
