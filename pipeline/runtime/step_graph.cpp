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
  explicit CudaGraphBackend(const at::Device& device) : device_(device) {}
  const char* name() const override { return "cuda-graph"; }
  std::unique_ptr<GraphRecording> record(const std::function<void()>& work) override {
    c10::cuda::CUDAGuard guard(device_);
    auto rec = std::make_unique<CudaRecording>(device_);
    // Capture on a side stream that first waits for the current one, and
    // make the current stream wait for it after (torch's graph capture rule:
    // never on the default stream).
    c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(device_.index());
    c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device_.index());
    at::cuda::CUDAEvent ready;
    ready.record(current);
    ready.block(side);
    {
      c10::cuda::CUDAStreamGuard on_side(side);
      rec->graph().capture_begin();
      work();
      rec->graph().capture_end();
    }
    at::cuda::CUDAEvent done;
    done.record(side);
    done.block(current);
    return rec;
  }

 private:
  at::Device device_;
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

StepGraph::StepGraph(std::unique_ptr<GraphBackend> backend, int warmup, size_t max_entries)
    : backend_(std::move(backend)), warmup_(warmup), max_entries_(max_entries) {
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
    // Contiguous static copies (the memory the recording will read).
    e.statics.push_back(t.defined() ? at::empty(t.sizes(), t.options()) : at::Tensor());
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
    Entry* entry = &e;
    e.recording = backend_->record([entry] { entry->output = entry->body(entry->statics); });
    ++stats_.captures;
  }
  e.recording->replay();
  ++e.runs;
  ++stats_.replays;
  LTX_CHECK(e.output.defined(), "the recorded step produced no output");
  return e.output.clone();
}

}  // namespace ltx::pipeline
