#include "dist/local_communicator.h"

#include "common/check.h"

namespace ltx::dist {

void LocalCommunicator::broadcast(at::Tensor& tensor, int root) {
  check_root(root);
  check_device(tensor, "broadcast");
}

void LocalCommunicator::all_to_all_into(const at::Tensor& input, at::Tensor& output) {
  output.copy_(check_all_to_all(input, output));
}

void LocalCommunicator::send_recv(const at::Tensor& send, int dest, at::Tensor& recv, int source) {
  recv.copy_(check_send_recv(send, dest, recv, source));
}

at::Tensor LocalCommunicator::all_gather(const at::Tensor& input) {
  check_device(input, "all_gather");
  LTX_CHECK(input.dim() >= 1, "all_gather needs a tensor with at least one dimension");
  return input.clone(at::MemoryFormat::Contiguous);
}

at::Tensor LocalCommunicator::gather(const at::Tensor& input, int root) {
  check_root(root);
  return all_gather(input);
}

std::unique_ptr<Communicator> LocalCommunicator::split(int, int) {
  return std::make_unique<LocalCommunicator>(device_);
}

}  // namespace ltx::dist
