#include "pipeline/runtime/step_graph.h"

#include <sstream>

#include "common/check.h"

#ifdef LTX_TORCH_HAS_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace ltx::pipeline {
namespace {

class ReplayRecording final : public GraphRecording {
 public:
  explicit ReplayRecording(std::function<void()> work) : work_(std::move(work)) {}
  void replay() override { work_(); }

 private:
  std::function<void()> work_;
};

class ReplayBackend final : public GraphBackend {
 public:
  const char* name() const override { return "replay"; }
  std::unique_ptr<GraphRecording> record(const std::function<void()>& work) override {
    return std::make_unique<ReplayRecording>(work);
  }
};

#ifdef LTX_TORCH_HAS_CUDA
class CudaRecording final : public GraphRecording {
 public:
  explicit CudaRecording(const at::Device& device) : device_(device) {}
  at::cuda::CUDAGraph& graph() { return graph_; }
  void replay() override {
    c10::cuda::CUDAGuard guard(device_);
    graph_.replay();
  }

 private:
  at::Device device_;
  at::cuda::CUDAGraph graph_;
};

class CudaGraphBackend final : public GraphBackend {
 public:
  explicit CudaGraphBackend(const at::Device& device)
      : device_(device),
        side_(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index())),
        pool_(at::cuda::graph_pool_handle()) {}
  const char* name() const override { return "cuda-graph"; }
  std::unique_ptr<GraphRecording> record(const std::function<void()>& work) override {
    c10::cuda::CUDAGuard guard(device_);
    auto rec = std::make_unique<CudaRecording>(device_);
    // Capture on this backend's one side stream (never the default stream),
    // which first waits for the current one; the current stream waits for it
    // after. One side stream keeps cuBLAS's per-stream workspace made once,
    // outside the graphs; one memory pool serves every recording (replays are
    // serial and each output is cloned at once).
    c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(device_.index());
    at::cuda::CUDAEvent ready;
    ready.record(current);
    ready.block(side_);
    {
      c10::cuda::CUDAStreamGuard on_side(side_);
      work();  // one eager run on the side stream first: lazy initialisation stays out of the graph
      rec->graph().capture_begin(pool_);
      try {
        work();
      } catch (...) {
        // End the capture so that the stream and the allocator are usable again.
        try {
          rec->graph().capture_end();
        } catch (...) {
        }
        throw GraphRecordingError(std::current_exception());
      }
      rec->graph().capture_end();
    }
    at::cuda::CUDAEvent done;
    done.record(side_);
    done.block(current);
    return rec;
  }

 private:
  at::Device device_;
  c10::cuda::CUDAStream side_;
  c10::cuda::MempoolId_t pool_;  // c10/cuda/CUDAGraphsC10Utils.h
};
#endif

std::string describe_tensor(const at::Tensor& t) {
  if (!t.defined()) return "-";
  std::ostringstream s;
  s << t.sizes() << c10::toString(t.scalar_type()) << "@" << t.device();
  return s.str();
}

}  // namespace

std::unique_ptr<GraphBackend> make_replay_backend() { return std::make_unique<ReplayBackend>(); }

std::unique_ptr<GraphBackend> make_graph_backend(const at::Device& device) {
#ifdef LTX_TORCH_HAS_CUDA
  if (device.is_cuda()) return std::make_unique<CudaGraphBackend>(device);
#endif
  (void)device;
  return make_replay_backend();
}

std::string tensor_signature(const std::vector<at::Tensor>& tensors) {
  std::string s;
  for (const at::Tensor& t : tensors) {
    s += describe_tensor(t);
    s += ';';
  }
  return s;
}

GraphRecordingError::GraphRecordingError(std::exception_ptr cause)
    : std::runtime_error(describe(cause)), cause_(std::move(cause)) {}

std::string GraphRecordingError::describe(const std::exception_ptr& cause) {
  try {
    if (cause) std::rethrow_exception(cause);
  } catch (const std::exception& e) {
    return std::string("recording the step failed: ") + e.what();
  } catch (...) {
  }
  return "recording the step failed";
}

StepGraph::StepGraph(std::unique_ptr<GraphBackend> backend, const at::Device& device, int warmup,
                     size_t max_entries, std::function<bool(bool)> agree)
    : backend_(std::move(backend)),
      device_(device),
      warmup_(warmup),
      max_entries_(max_entries),
      agree_(std::move(agree)) {
  LTX_CHECK(backend_ != nullptr, "StepGraph needs a backend");
  LTX_CHECK(warmup_ >= 0 && max_entries_ >= 1, "StepGraph: warmup ", warmup_, ", max_entries ", max_entries_);
}

StepGraph::Entry& StepGraph::entry_for(const std::string& signature, const std::vector<at::Tensor>& inputs,
                                       const std::function<Body()>& make_body) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->signature == signature) {
      entries_.splice(entries_.begin(), entries_, it);
      return entries_.front();
    }
  }
  if (entries_.size() >= max_entries_) {
    entries_.pop_back();
    ++stats_.evictions;
  }
  Entry e;
  e.signature = signature;
  for (const at::Tensor& t : inputs) {
    // Contiguous static copies (the memory the recording will read), on the
    // graph's device: a host input is copied there before each run, never
    // inside the recording.
    e.statics.push_back(t.defined() ? at::empty(t.sizes(), t.options().device(device_)) : at::Tensor());
  }
  e.body = make_body();
  entries_.push_front(std::move(e));
  return entries_.front();
}

at::Tensor StepGraph::run(const std::string& key, const std::vector<at::Tensor>& inputs,
                          const std::function<Body()>& make_body) {
  Entry& e = entry_for(key + "|" + tensor_signature(inputs), inputs, make_body);
  // Refresh every static buffer before every run, the KV prefix included: a
  // recording never reads a tensor the caller may have moved or changed.
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || inputs[i].is_same(e.statics[i])) continue;
    e.statics[i].copy_(inputs[i]);
    stats_.bytes_refreshed += inputs[i].numel() * static_cast<int64_t>(inputs[i].element_size());
  }
  if (e.runs < warmup_) {
    ++e.runs;
    ++stats_.eager_runs;
    return e.body(e.statics);
  }
  if (e.recording == nullptr) {
    // Only a failed capture is a recording failure (GraphRecordingError);
    // any other error is the step's own and goes up as it is. The group
    // agrees on the outcome before anyone replays.
    Entry* entry = &e;
    std::exception_ptr failure;
    try {
      e.recording = backend_->record([entry] { entry->output = entry->body(entry->statics); });
    } catch (const GraphRecordingError&) {
      failure = std::current_exception();
    }
    const bool everyone = agree_ ? agree_(failure == nullptr) : failure == nullptr;
    if (!everyone) {
      e.recording.reset();
      if (failure) std::rethrow_exception(failure);
      throw GraphRecordingError(std::make_exception_ptr(std::runtime_error("another rank could not record it")));
    }
    ++stats_.captures;
  }
  e.recording->replay();
  ++e.runs;
  ++stats_.replays;
  LTX_CHECK(e.output.defined(), "the recorded step produced no output");
  return e.output.clone();
}

}  // namespace ltx::pipeline
