#include "dist/mpi_communicator.h"

#include <climits>

#include "common/call_check.h"
#include "dist/agreement.h"

namespace ltx::dist {
namespace {

// MPI counts are ints. Pick a contiguous byte unit that divides `bytes` and
// keeps the count below INT_MAX; the caller frees the returned type if it is
// not MPI_BYTE.
struct ByteUnit {
  MPI_Datatype type = MPI_BYTE;
  int count = 0;
  bool owned = false;
  ~ByteUnit() {
    if (owned) MPI_Type_free(&type);
  }
};

void choose_unit(size_t bytes, ByteUnit* unit) {
  size_t block = 1;
  while (bytes / block > static_cast<size_t>(INT_MAX)) block <<= 1;
  LTX_CHECK(bytes % block == 0, "a message of ", bytes,
            " bytes is too large for MPI and has no block size that divides it");
  if (block > 1) {
    LTX_MPI_CHECK(MPI_Type_contiguous(static_cast<int>(block), MPI_BYTE, &unit->type));
    LTX_MPI_CHECK(MPI_Type_commit(&unit->type));
    unit->owned = true;
  }
  unit->count = static_cast<int>(bytes / block);
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm parent) {
  LTX_MPI_CHECK(MPI_Comm_dup(parent, &comm_));
  LTX_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  LTX_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  LTX_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiCommunicator::broadcast(at::Tensor& tensor, int root) {
  check_root(root);
  check_device(tensor, "broadcast");
  at::Tensor buf = tensor.is_contiguous() ? tensor : tensor.contiguous();
  ByteUnit unit;
  choose_unit(buf.nbytes(), &unit);
  LTX_MPI_CHECK(MPI_Bcast(buf.data_ptr(), unit.count, unit.type, root, comm_));
  if (!buf.is_same(tensor)) tensor.copy_(buf);
}

void MpiCommunicator::all_to_all_into(const at::Tensor& input, at::Tensor& output) {
  at::Tensor in = check_all_to_all(input, output);
  ByteUnit unit;
  choose_unit(in.nbytes() / size_, &unit);
  LTX_MPI_CHECK(MPI_Alltoall(in.data_ptr(), unit.count, unit.type, output.data_ptr(), unit.count,
                             unit.type, comm_));
}

namespace {
class MpiPending final : public PendingCollective {
 public:
  MpiPending(MPI_Request request, at::Tensor input, at::Tensor output, std::unique_ptr<ByteUnit> unit)
      : request_(request), input_(std::move(input)), output_(std::move(output)), unit_(std::move(unit)) {}
  ~MpiPending() override {
    if (request_ != MPI_REQUEST_NULL) MPI_Wait(&request_, MPI_STATUS_IGNORE);
  }
  void wait() override {
    if (request_ == MPI_REQUEST_NULL) return;
    LTX_MPI_CHECK(MPI_Wait(&request_, MPI_STATUS_IGNORE));
  }

 private:
  MPI_Request request_;
  at::Tensor input_, output_;  // alive until the data has moved
  std::unique_ptr<ByteUnit> unit_;
};
}  // namespace

std::unique_ptr<PendingCollective> MpiCommunicator::start_all_to_all(const at::Tensor& input, at::Tensor& output) {
  at::Tensor in = check_all_to_all(input, output);
  auto unit = std::make_unique<ByteUnit>();
  choose_unit(in.nbytes() / size_, unit.get());
  MPI_Request request = MPI_REQUEST_NULL;
  LTX_MPI_CHECK(MPI_Ialltoall(in.data_ptr(), unit->count, unit->type, output.data_ptr(), unit->count, unit->type,
                              comm_, &request));
  return std::make_unique<MpiPending>(request, in, output, std::move(unit));
}

void MpiCommunicator::send_recv(const at::Tensor& send, int dest, at::Tensor& recv, int source) {
  at::Tensor in = check_send_recv(send, dest, recv, source);
  ByteUnit unit;
  choose_unit(in.nbytes(), &unit);
  LTX_MPI_CHECK(MPI_Sendrecv(in.data_ptr(), unit.count, unit.type, dest, /*tag=*/7, recv.data_ptr(), unit.count,
                             unit.type, source, /*tag=*/7, comm_, MPI_STATUS_IGNORE));
}

at::Tensor MpiCommunicator::all_gather(const at::Tensor& input) {
  check_device(input, "all_gather");
  LTX_CHECK(input.dim() >= 1, "all_gather needs a tensor with at least one dimension");
  at::Tensor in = input.contiguous();
  auto sizes = in.sizes().vec();
  sizes[0] *= size_;
  at::Tensor out = at::empty(sizes, in.options());
  ByteUnit unit;
  choose_unit(in.nbytes(), &unit);
  LTX_MPI_CHECK(MPI_Allgather(in.data_ptr(), unit.count, unit.type, out.data_ptr(), unit.count,
                              unit.type, comm_));
  return out;
}

at::Tensor MpiCommunicator::gather(const at::Tensor& input, int root) {
  check_root(root);
  check_device(input, "gather");
  LTX_CHECK(input.dim() >= 1, "gather needs a tensor with at least one dimension");
  at::Tensor in = input.contiguous();
  at::Tensor out;
  if (rank_ == root) {
    auto sizes = in.sizes().vec();
    sizes[0] *= size_;
    out = at::empty(sizes, in.options());
  }
  ByteUnit unit;
  choose_unit(in.nbytes(), &unit);
  LTX_MPI_CHECK(MPI_Gather(in.data_ptr(), unit.count, unit.type,
                           rank_ == root ? out.data_ptr() : nullptr, unit.count, unit.type, root,
                           comm_));
  return out;
}

void MpiCommunicator::barrier() { LTX_MPI_CHECK(MPI_Barrier(comm_)); }

Status MpiCommunicator::all_ok(const Status& local) { return agree_all_ok(comm_, local); }

Status MpiCommunicator::root_verdict(const Status& local, std::string* payload) {
  return share_root_verdict(comm_, local, payload);
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) {
  return with_split(comm_, color, key,
                    [](MPI_Comm part) -> std::unique_ptr<Communicator> { return std::make_unique<MpiCommunicator>(part); });
}

}  // namespace ltx::dist
