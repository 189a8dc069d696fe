// Loading a model's weights from a checkpoint: exactly the tensors the model
// expects, each checked against its shape and converted straight from the
// mapped file into the final dtype and device (one copy per tensor, never two
// full copies of the model in host memory). Shared by every model loader.
// Pure functions over their arguments.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "pipeline/io/safetensors.h"

namespace ltx::pipeline {

struct ExpectedTensor {
  std::string name;            // the model's canonical name
  std::vector<int64_t> shape;
};

// Maps a checkpoint name to the model's canonical name; nullopt means "not
// this model's tensor" (skipped: another model in the same file, a decoder,
// an lm_head, ...).
using NameMapper = std::function<std::optional<std::string>(const std::string&)>;

// String helpers the name mappers share.
inline bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}
inline void replace_all(std::string* s, const std::string& from, const std::string& to) {
  for (size_t pos = s->find(from); pos != std::string::npos; pos = s->find(from, pos + to.size())) {
    s->replace(pos, from.size(), to);
  }
}

// Every mapped tensor must be expected (else "unexpected tensor"), every
// expected tensor present (else "missing tensor"), two file names may not map
// to one tensor, shapes must match, weights must be floating point. Errors
// name the checkpoint and the tensor. `model` names the model in messages.
Result<std::map<std::string, at::Tensor>> load_expected_tensors(
    const SafetensorsCheckpoint& checkpoint, const std::vector<ExpectedTensor>& expected,
    const NameMapper& mapper, const std::string& model, at::ScalarType dtype,
    const at::Device& device);

// Checks one tensor's shape and dtype kind and converts it (one copy).
Result<at::Tensor> checked_convert(const std::string& source, const std::string& name,
                                   const at::Tensor& tensor, const std::vector<int64_t>& shape,
                                   at::ScalarType dtype, const at::Device& device);

// Every tensor of a loaded map (shared storage, no copy): a model keeps this
// list so its placement can be checked and its bytes counted.
std::vector<at::Tensor> tensors_of(const std::map<std::string, at::Tensor>& loaded);
int64_t bytes_of(const std::vector<at::Tensor>& tensors);

// Removes and returns `name` from a loaded map (undefined tensor if absent).
at::Tensor take_tensor(std::map<std::string, at::Tensor>& loaded, const std::string& name);

// y = x W^T + b, the Linear of every model.
struct LinearWeights {
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out] or undefined
  // Row-exact: every output row is a function of its input row alone. On CPU
  // BLAS's fp32 kernels round a row differently depending on how many rows are
  // multiplied with it (~1e-7 relative), so a sequence shard of a few rows
  // would not match the same rows of the whole sequence. When set, fp32
  // products on CPU accumulate in fp64 and round once (other devices and
  // dtypes are unchanged). A model sets it where a few tokens shard into small
  // row counts and the difference matters (LTX-2's audio stream).
  bool exact_rows = false;
  at::Tensor operator()(const at::Tensor& x) const;
  static LinearWeights take(std::map<std::string, at::Tensor>& loaded, const std::string& prefix);
};

}  // namespace ltx::pipeline
