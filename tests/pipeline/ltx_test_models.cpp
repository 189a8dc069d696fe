#include "tests/pipeline/ltx_test_models.h"

#include <cmath>
#include <fstream>
#include <limits>

#include "tests/test_util.h"

namespace ltx::testing {

pipeline::TransformerConfig small_transformer_config(int64_t heads, int64_t layers) {
  pipeline::TransformerConfig c;
  c.in_channels = 8;
  c.out_channels = 8;
  c.num_attention_heads = heads;
  c.attention_head_dim = 8;
  c.cross_attention_dim = heads * 8;
  c.num_layers = layers;
  c.caption_channels = 24;
  return c;
}

std::string write_random_transformer(const pipeline::TransformerConfig& c, uint64_t seed) {
  std::string dir = scratch_dir("ltx-model");
  at::manual_seed(seed);
  pipeline::NamedTensors tensors;
  for (const auto& [name, shape] : pipeline::LtxTransformer::expected_tensors(c)) {
    at::Tensor t = at::randn(shape);
    if (shape.size() == 2 && name.find("scale_shift_table") == std::string::npos) {
      t = t / std::sqrt(static_cast<double>(shape[1]));
    } else {
      t = t * 0.1;
      if (name.find("norm_") != std::string::npos) t = t + 1.0;
    }
    tensors.emplace_back(name, t);
  }
  auto st = pipeline::write_safetensors(dir + "/diffusion_pytorch_model.safetensors", tensors);
  if (!st.ok()) throw std::runtime_error(st.to_string());
  std::ofstream(dir + "/config.json")
      << "{\"_class_name\": \"LTXVideoTransformer3DModel\", \"in_channels\": " << c.in_channels
      << ", \"out_channels\": " << c.out_channels << ", \"num_attention_heads\": " << c.num_attention_heads
      << ", \"attention_head_dim\": " << c.attention_head_dim
      << ", \"cross_attention_dim\": " << c.cross_attention_dim << ", \"num_layers\": " << c.num_layers
      << ", \"caption_channels\": " << c.caption_channels << "}";
  return dir;
}

at::Tensor block_causal_bias(const std::vector<int64_t>& chunk_tokens) {
  std::vector<at::Tensor> ids;
  for (size_t c = 0; c < chunk_tokens.size(); ++c) {
    ids.push_back(at::full({chunk_tokens[c]}, static_cast<int64_t>(c), at::kLong));
  }
  at::Tensor chunk = at::cat(ids);
  at::Tensor allowed = chunk.unsqueeze(0) <= chunk.unsqueeze(1);  // [q, k]
  return at::zeros(allowed.sizes(), at::kFloat)
      .masked_fill_(allowed.logical_not(), -std::numeric_limits<float>::infinity());
}

}  // namespace ltx::testing
