// LocalCommunicator: a group of one process, with no MPI at all.
//
// Every collective is the identity (a copy where a new tensor is returned), on
// any device. It lets the model code run single-process through exactly the
// same sequence-parallel path (tools, unit tests, one-GPU runs without mpirun).
// One thread at a time, like every Communicator.
#pragma once

#include "dist/communicator.h"

namespace ltx::dist {

class LocalCommunicator final : public Communicator {
 public:
  explicit LocalCommunicator(at::Device device = at::Device(at::kCPU)) : device_(device) {}

  int rank() const override { return 0; }
  int size() const override { return 1; }
  at::Device device() const override { return device_; }
  const char* backend_name() const override { return "local"; }

  void broadcast(at::Tensor& tensor, int root) override;
  void all_to_all_into(const at::Tensor& input, at::Tensor& output) override;
  at::Tensor all_gather(const at::Tensor& input) override;
  void send_recv(const at::Tensor& send, int dest, at::Tensor& recv, int source) override;
  at::Tensor gather(const at::Tensor& input, int root) override;
  void barrier() override {}
  // A group of one agrees with itself.
  Status all_ok(const Status& local) override { return local; }
  Status root_verdict(const Status& local, std::string* payload = nullptr) override { return local; }
  std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  at::Device device_;
};

}  // namespace ltx::dist
