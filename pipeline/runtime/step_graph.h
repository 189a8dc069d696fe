// StepGraph: a denoising step recorded once per shape and replayed, with every
// input in a static buffer that is refreshed before every replay.
//
// A CUDA graph records kernels with the addresses they read. A streaming
// runner that records a step and replays it after its KV cache grew, moved or
// was evicted reads the old keys and values: the stale-KV replay. Here the
// recorded body reads only the entry's static buffers; run() copies this
// step's inputs (latents, timesteps, RoPE tables, text and KV-prefix tensors)
// into them before every replay, so a replay always sees the current cache.
// The copy is a device-to-device copy of the prefix, small against a step.
//
// One entry per input signature (shapes, dtypes, devices and the caller's key:
// the shard, which optional inputs exist), at most `max_entries`, least
// recently used first out. An entry runs eagerly `warmup` times (lazy
// initialisation, allocator caches), is then captured and replays from then
// on. The backend records and replays: on CUDA a torch CUDA graph on a side
// stream; elsewhere the body itself is kept and called (the same refresh
// logic, testable on a CPU). Not thread-safe: one per denoiser, driven by the
// inference thread.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ltx::pipeline {

// Thrown by StepGraph::run when recording a step failed (the capture was
// ended first). Only this error means "the step cannot be recorded": every
// rank reaches it at the same step (the same body, the same shapes), so a
// caller may agree on it across the group and carry on eagerly. Any other
// error of run() is the step's own and must be handled as such.
class GraphRecordingError : public std::runtime_error {
 public:
  explicit GraphRecordingError(std::exception_ptr cause);
  const std::exception_ptr& cause() const { return cause_; }

 private:
  static std::string describe(const std::exception_ptr& cause);
  std::exception_ptr cause_;
};

class GraphRecording {
 public:
  virtual ~GraphRecording() = default;
  virtual void replay() = 0;
};

class GraphBackend {
 public:
  virtual ~GraphBackend() = default;
  virtual const char* name() const = 0;
  // Records `work` (which writes its results into tensors it owns) without
  // necessarily running it; replay() runs it.
  virtual std::unique_ptr<GraphRecording> record(const std::function<void()>& work) = 0;
};

// Keeps `work` and calls it on replay: the CPU stand-in for a CUDA graph.
std::unique_ptr<GraphBackend> make_replay_backend();
// A torch CUDA graph when this build has torch's CUDA and `device` is a GPU;
// otherwise the replay backend.
std::unique_ptr<GraphBackend> make_graph_backend(const at::Device& device);

class StepGraph {
 public:
  using Body = std::function<at::Tensor(const std::vector<at::Tensor>& inputs)>;

  struct Stats {
    int64_t eager_runs = 0;
    int64_t captures = 0;
    int64_t replays = 0;
    int64_t evictions = 0;
    int64_t bytes_refreshed = 0;  // copied into static buffers, all entries
  };

  // `device`: where the static buffers live (the denoiser's device).
  // `agree`, when given, is called on every rank right after each recording
  // attempt with whether it succeeded here, and returns whether it succeeded
  // everywhere (a group agreement): if not, every rank throws
  // GraphRecordingError at the same step.
  StepGraph(std::unique_ptr<GraphBackend> backend, const at::Device& device, int warmup = 1,
            size_t max_entries = 4, std::function<bool(bool)> agree = nullptr);

  // One step. `inputs` are every tensor the step reads that may change
  // between steps; `make_body` builds the computation over the entry's
  // static copies of them (called once per new entry, so it must capture
  // nothing per-step). Returns the step's output, owned by the caller.
  at::Tensor run(const std::string& key, const std::vector<at::Tensor>& inputs,
                 const std::function<Body()>& make_body);

  const Stats& stats() const { return stats_; }
  size_t entries() const { return entries_.size(); }
  const char* backend_name() const { return backend_->name(); }

 private:
  struct Entry {
    std::string signature;
    std::vector<at::Tensor> statics;
    Body body;
    at::Tensor output;
    std::unique_ptr<GraphRecording> recording;
    int runs = 0;
  };

  Entry& entry_for(const std::string& signature, const std::vector<at::Tensor>& inputs,
                   const std::function<Body()>& make_body);

  std::unique_ptr<GraphBackend> backend_;
  at::Device device_;
  int warmup_;
  size_t max_entries_;
  std::function<bool(bool)> agree_;
  std::list<Entry> entries_;  // most recently used first
  Stats stats_;
};

// The signature of a list of tensors: shapes, dtypes, devices (an undefined
// tensor is its own mark).
std::string tensor_signature(const std::vector<at::Tensor>& tensors);

}  // namespace ltx::pipeline
