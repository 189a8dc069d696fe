#include "dist/communicator.h"

#include "common/check.h"

namespace ltx::dist {

void Communicator::check_root(int root) const {
  LTX_CHECK(root >= 0 && root < size(), "root rank ", root, " outside a group of ", size());
}

void Communicator::check_device(const at::Tensor& t, const char* op) const {
  LTX_CHECK(t.defined(), backend_name(), " ", op, ": undefined tensor");
  LTX_CHECK(t.device().type() == device().type(), backend_name(), " ", op, ": tensor on ",
            t.device().str(), ", this backend moves tensors on ", device().str());
}

at::Tensor Communicator::all_to_all(const at::Tensor& input) {
  at::Tensor output = at::empty(input.sizes(), input.options().memory_format(at::MemoryFormat::Contiguous));
  all_to_all_into(input, output);
  return output;
}

at::Tensor Communicator::check_all_to_all(const at::Tensor& input, const at::Tensor& output) const {
  check_device(input, "all_to_all");
  check_device(output, "all_to_all");
  LTX_CHECK(input.dim() >= 1 && input.size(0) % size() == 0, "all_to_all: dim 0 of size ",
            input.dim() ? input.size(0) : 0, " does not split into ", size(), " equal parts");
  LTX_CHECK(output.sizes() == input.sizes() && output.scalar_type() == input.scalar_type() &&
                output.is_contiguous(),
            "all_to_all: output must be contiguous with the input's shape and dtype");
  return input.contiguous();
}

at::Tensor Communicator::check_send_recv(const at::Tensor& send, int dest, const at::Tensor& recv,
                                         int source) const {
  check_root(dest);
  check_root(source);
  check_device(send, "send_recv");
  LTX_CHECK(recv.is_contiguous() && recv.nbytes() == send.nbytes() && recv.scalar_type() == send.scalar_type(),
            "send_recv: recv must be contiguous and match send's size and dtype");
  return send.contiguous();
}

namespace {
class DoneCollective final : public PendingCollective {
 public:
  void wait() override {}
};
}  // namespace

std::unique_ptr<PendingCollective> Communicator::start_all_to_all(const at::Tensor& input, at::Tensor& output) {
  all_to_all_into(input, output);
  return std::make_unique<DoneCollective>();
}

}  // namespace ltx::dist
