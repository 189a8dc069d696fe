#include "dist/nccl_communicator.h"

#ifdef LTX_WITH_NCCL

#include <cuda_runtime.h>

#include <cstring>
#include <thread>

#include "common/call_check.h"
#include "common/cuda_device.h"
#include "common/logging.h"
#include "dist/agreement.h"
#include "dist/group_abort.h"

#ifdef LTX_TORCH_HAS_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace ltx::dist {
namespace {

// The stream NCCL work goes on: torch's current stream when libtorch has CUDA
// (so it orders with the kernels that made the tensors), else the legacy
// default stream.
cudaStream_t current_stream(int device) {
#ifdef LTX_TORCH_HAS_CUDA
  return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream();
#else
  (void)device;
  return nullptr;
#endif
}

}  // namespace

NcclCommunicator::NcclCommunicator(MPI_Comm bootstrap, int local_rank, int local_size,
                                   std::chrono::milliseconds timeout)
    : timeout_(timeout) {
  LTX_MPI_CHECK(MPI_Comm_dup(bootstrap, &mpi_comm_));
  try {
    init(local_rank, local_size);
  } catch (...) {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    comm_ = nullptr;
    MPI_Comm_free(&mpi_comm_);
    throw;
  }
  // A group abort (or the launcher's kill) releases this rank's NCCL work first.
  abort_hook_ = add_abort_hook([this](const std::string&) { abort_comm(); });
}

// Every step that can fail on some ranks only is followed by an agreement, so
// no rank enters NCCL (or waits in MPI) while another has given up.
void NcclCommunicator::init(int local_rank, int local_size) {
  LTX_MPI_CHECK(MPI_Comm_set_errhandler(mpi_comm_, MPI_ERRORS_RETURN));
  LTX_MPI_CHECK(MPI_Comm_rank(mpi_comm_, &rank_));
  LTX_MPI_CHECK(MPI_Comm_size(mpi_comm_, &size_));
  local_rank_ = local_rank;
  local_size_ = local_size;
  const int devices = cuda_device_count();
  Status fits;
  if (devices == 0) {
    fits = failed_precondition_error("NCCL backend: this rank sees no CUDA device");
  } else if (devices < local_size) {
    fits = failed_precondition_error(
        "NCCL backend: NCCL needs a GPU of its own for every rank, but a node runs more ranks than it has "
        "GPUs (this node: " + std::to_string(local_size) + " ranks, " + std::to_string(devices) +
        " GPUs); start at most that many ranks per node, or use --backend mpi");
  }
  Status agreed = agree_all_ok(mpi_comm_, fits);
  if (!agreed.ok()) throw Error(agreed);
  device_ = local_rank;
  const cudaError_t set = cudaSetDevice(device_);
  agreed = agree_all_ok(mpi_comm_, set == cudaSuccess ? Status()
                                                      : unavailable_error(std::string("NCCL backend: cudaSetDevice(") +
                                                                          std::to_string(device_) + "): " +
                                                                          cudaGetErrorString(set)));
  if (!agreed.ok()) throw Error(agreed);
  // Rank 0's unique id travels with its verdict, so a failure there is every rank's.
  ncclUniqueId id;
  std::string id_bytes;
  Status made;
  if (rank_ == 0) {
    const ncclResult_t rc = ncclGetUniqueId(&id);
    if (rc == ncclSuccess) {
      id_bytes.assign(reinterpret_cast<const char*>(&id), sizeof(id));
    } else {
      made = unavailable_error(std::string("NCCL backend: ncclGetUniqueId: ") + ncclGetErrorString(rc));
    }
  }
  agreed = share_root_verdict(mpi_comm_, made, &id_bytes);
  if (!agreed.ok()) throw Error(agreed);
  LTX_INTERNAL_ASSERT(id_bytes.size() == sizeof(id), "NCCL unique id of ", id_bytes.size(), " bytes");
  std::memcpy(&id, id_bytes.data(), sizeof(id));
  LTX_NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
  LTX_LOG(kInfo) << "NCCL communicator: rank " << rank_ << "/" << size_ << " on cuda:" << device_;
}

NcclCommunicator::~NcclCommunicator() {
  remove_abort_hook(abort_hook_);
  if (comm_ != nullptr) {
    if (aborted_) {
      // already aborted
    } else {
      cudaStreamSynchronize(current_stream(device_));
      if (comm_stream_ != nullptr) cudaStreamSynchronize(static_cast<cudaStream_t>(comm_stream_));
      ncclCommDestroy(comm_);
    }
  }
  if (comm_stream_ != nullptr) cudaStreamDestroy(static_cast<cudaStream_t>(comm_stream_));
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && mpi_comm_ != MPI_COMM_NULL) MPI_Comm_free(&mpi_comm_);
}

at::Device NcclCommunicator::device() const {
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_));
}

void NcclCommunicator::abort_comm() noexcept {
  if (comm_ != nullptr && !aborted_.exchange(true)) {
    ncclCommAbort(comm_);
    LTX_LOG(kError) << "NCCL communicator aborted after an error; peers are released";
  }
}

void NcclCommunicator::check_usable(const char* op) const {
  if (aborted_) {
    throw Error(StatusCode::kUnavailable,
                std::string("NCCL ") + op + ": the communicator was aborted after an earlier error");
  }
}

template <typename F>
void NcclCommunicator::guarded(const char* op, F&& f) {
  check_usable(op);
  try {
    f();
  } catch (...) {
    abort_comm();
    throw;
  }
}

void NcclCommunicator::broadcast(at::Tensor& tensor, int root) {
  check_root(root);
  check_device(tensor, "broadcast");
  at::Tensor buf = tensor.is_contiguous() ? tensor : tensor.contiguous();
  guarded("broadcast", [&] {
    LTX_NCCL_CHECK(ncclBroadcast(buf.data_ptr(), buf.data_ptr(), buf.nbytes(), ncclUint8, root,
                                 comm_, current_stream(device_)));
  });
  if (!buf.is_same(tensor)) tensor.copy_(buf);
}

void NcclCommunicator::all_to_all_into(const at::Tensor& input, at::Tensor& output) {
  at::Tensor in = check_all_to_all(input, output);
  at::Tensor& out = output;
  const size_t chunk = in.nbytes() / size_;
  auto* src = static_cast<uint8_t*>(in.data_ptr());
  auto* dst = static_cast<uint8_t*>(out.data_ptr());
  guarded("all_to_all", [&] {
    cudaStream_t s = current_stream(device_);
    LTX_NCCL_CHECK(ncclGroupStart());
    for (int peer = 0; peer < size_; ++peer) {
      LTX_NCCL_CHECK(ncclSend(src + peer * chunk, chunk, ncclUint8, peer, comm_, s));
      LTX_NCCL_CHECK(ncclRecv(dst + peer * chunk, chunk, ncclUint8, peer, comm_, s));
    }
    LTX_NCCL_CHECK(ncclGroupEnd());
  });
}

namespace {
// The end of an all-to-all on the communication stream, and the tensors it
// reads and writes.
class NcclPending final : public PendingCollective {
 public:
  NcclPending(cudaEvent_t done, int device, at::Tensor input, at::Tensor output)
      : done_(done), device_(device), input_(std::move(input)), output_(std::move(output)) {}
  ~NcclPending() override {
    if (done_ != nullptr) {
      try {
        wait();
      } catch (...) {
      }
    }
  }
  void wait() override {
    if (done_ == nullptr) return;
    CudaDeviceGuard guard(device_);
    cudaEvent_t done = done_;
    done_ = nullptr;
    LTX_CUDA_CHECK(cudaStreamWaitEvent(current_stream(device_), done, 0));
    LTX_CUDA_CHECK(cudaEventDestroy(done));  // released once the wait has been queued
    input_ = at::Tensor();
    output_ = at::Tensor();
  }

 private:
  cudaEvent_t done_;
  int device_;
  at::Tensor input_, output_;
};
}  // namespace

std::unique_ptr<PendingCollective> NcclCommunicator::start_all_to_all(const at::Tensor& input, at::Tensor& output) {
  at::Tensor in = check_all_to_all(input, output);
  CudaDeviceGuard guard(device_);
  if (comm_stream_ == nullptr) {
    cudaStream_t s = nullptr;
    LTX_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    comm_stream_ = s;
  }
  cudaStream_t comm = static_cast<cudaStream_t>(comm_stream_);
  // The communication stream starts after the work that made the input.
  cudaEvent_t ready = nullptr, done = nullptr;
  LTX_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
  LTX_CUDA_CHECK(cudaEventRecord(ready, current_stream(device_)));
  LTX_CUDA_CHECK(cudaStreamWaitEvent(comm, ready, 0));
  LTX_CUDA_CHECK(cudaEventDestroy(ready));
  const size_t chunk = in.nbytes() / size_;
  auto* src = static_cast<uint8_t*>(in.data_ptr());
  auto* dst = static_cast<uint8_t*>(output.data_ptr());
  guarded("all_to_all", [&] {
    LTX_NCCL_CHECK(ncclGroupStart());
    for (int peer = 0; peer < size_; ++peer) {
      LTX_NCCL_CHECK(ncclSend(src + peer * chunk, chunk, ncclUint8, peer, comm_, comm));
      LTX_NCCL_CHECK(ncclRecv(dst + peer * chunk, chunk, ncclUint8, peer, comm_, comm));
    }
    LTX_NCCL_CHECK(ncclGroupEnd());
  });
  LTX_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  LTX_CUDA_CHECK(cudaEventRecord(done, comm));
  return std::make_unique<NcclPending>(done, device_, in, output);
}

void NcclCommunicator::send_recv(const at::Tensor& send, int dest, at::Tensor& recv, int source) {
  at::Tensor in = check_send_recv(send, dest, recv, source);
  guarded("send_recv", [&] {
    cudaStream_t s = current_stream(device_);
    LTX_NCCL_CHECK(ncclGroupStart());
    LTX_NCCL_CHECK(ncclSend(in.data_ptr(), in.nbytes(), ncclUint8, dest, comm_, s));
    LTX_NCCL_CHECK(ncclRecv(recv.data_ptr(), recv.nbytes(), ncclUint8, source, comm_, s));
    LTX_NCCL_CHECK(ncclGroupEnd());
  });
}

at::Tensor NcclCommunicator::all_gather(const at::Tensor& input) {
  check_device(input, "all_gather");
  LTX_CHECK(input.dim() >= 1, "all_gather needs a tensor with at least one dimension");
  at::Tensor in = input.contiguous();
  auto sizes = in.sizes().vec();
  sizes[0] *= size_;
  at::Tensor out = at::empty(sizes, in.options());
  guarded("all_gather", [&] {
    LTX_NCCL_CHECK(ncclAllGather(in.data_ptr(), out.data_ptr(), in.nbytes(), ncclUint8, comm_,
                                 current_stream(device_)));
  });
  return out;
}

at::Tensor NcclCommunicator::gather(const at::Tensor& input, int root) {
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
  const size_t bytes = in.nbytes();
  guarded("gather", [&] {
    cudaStream_t s = current_stream(device_);
    LTX_NCCL_CHECK(ncclGroupStart());
    if (rank_ == root) {
      auto* dst = static_cast<uint8_t*>(out.data_ptr());
      for (int peer = 0; peer < size_; ++peer) {
        LTX_NCCL_CHECK(ncclRecv(dst + peer * bytes, bytes, ncclUint8, peer, comm_, s));
      }
    }
    LTX_NCCL_CHECK(ncclSend(in.data_ptr(), bytes, ncclUint8, root, comm_, s));
    LTX_NCCL_CHECK(ncclGroupEnd());
  });
  return out;
}

void NcclCommunicator::barrier() {
  guarded("barrier", [&] {
    cudaStream_t s = current_stream(device_);
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (true) {
      cudaError_t q = cudaStreamQuery(s);
      if (q == cudaSuccess) break;
      if (q != cudaErrorNotReady) LTX_CUDA_CHECK(q);
      ncclResult_t async_error = ncclSuccess;
      LTX_NCCL_CHECK(ncclCommGetAsyncError(comm_, &async_error));
      LTX_NCCL_CHECK(async_error);
      if (std::chrono::steady_clock::now() > deadline) {
        throw Error(StatusCode::kDeadlineExceeded,
                    "NCCL barrier: queued work did not finish within " +
                        std::to_string(timeout_.count()) + " ms");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    LTX_MPI_CHECK(MPI_Barrier(mpi_comm_));
  });
}

Status NcclCommunicator::all_ok(const Status& local) { return agree_all_ok(mpi_comm_, local); }

Status NcclCommunicator::root_verdict(const Status& local, std::string* payload) {
  return share_root_verdict(mpi_comm_, local, payload);
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key) {
  // The same GPU per rank; the new communicator bootstraps over the part.
  return with_split(mpi_comm_, color, key, [this](MPI_Comm part) -> std::unique_ptr<Communicator> {
    return std::make_unique<NcclCommunicator>(part, local_rank_, local_size_, timeout_);
  });
}

}  // namespace ltx::dist

#endif  // LTX_WITH_NCCL
