#include "pipeline/ltx_video/ltx_denoiser.h"

#include "common/check.h"
#include "common/logging.h"

namespace ltx::pipeline {
namespace {

struct LtxPreparedText final : PreparedText {
  TextConditioning text;
  int64_t batch() const override { return text.bias.size(0); }
};

struct LtxPositions final : DenoiserPositions {
  at::Tensor cos, sin;  // this shard's rows, [shard_len, inner] fp32
};

template <typename T, typename Base>
const T& family_object(const Base* p, const char* what) {
  const T* t = dynamic_cast<const T*>(p);
  LTX_CHECK(t != nullptr, "the LTX-Video denoiser was given ", what, " made by another model");
  return *t;
}

}  // namespace

LtxDenoiser::LtxDenoiser(LtxTransformer transformer, RopeSettings rope, bool step_graphs)
    : transformer_(std::move(transformer)), rope_(rope) {
  if (step_graphs) {
    dist::Communicator* comm = &transformer_.communicator();
    auto agree = [comm](bool ok) {
      return comm->all_ok(ok ? Status() : internal_error("could not record the step")).ok();
    };
    graph_ = std::make_unique<StepGraph>(make_graph_backend(transformer_.device()), transformer_.device(),
                                         /*warmup=*/1, /*max_entries=*/4, agree);
  }
}

RopeSettings LtxDenoiser::rope_at(double fps) const {
  RopeSettings r = rope_;
  r.frame_rate = fps;
  return r;
}

std::unique_ptr<PreparedText> LtxDenoiser::prepare_text(const at::Tensor& embeddings, const at::Tensor& mask) const {
  auto p = std::make_unique<LtxPreparedText>();
  p->text = transformer_.prepare_text(embeddings, mask);
  return p;
}

std::unique_ptr<DenoiserPositions> LtxDenoiser::positions(const LatentGrid& grid, double fps,
                                                          const parallel::SequenceShard& shard) const {
  RopeTables tables = rope_tables(grid, rope_at(fps), transformer_.inner_dim(), transformer_.device());
  auto p = std::make_unique<LtxPositions>();
  p->cos = shard.take(tables.cos, 0);
  p->sin = shard.take(tables.sin, 0);
  return p;
}

at::Tensor LtxDenoiser::forward(const DenoiserCall& call) const {
  LTX_CHECK(call.text != nullptr && call.positions != nullptr, "a denoiser call needs its text and positions");
  const auto& positions = family_object<LtxPositions>(call.positions, "positions");
  at::Tensor hidden = call.latents.to(transformer_.device(), transformer_.dtype());
  at::Tensor timestep = call.timestep.to(transformer_.device(), at::kFloat);
  // Recorded steps: not for the KV-making forward (once per chunk) nor for
  // per-token timesteps (their embedding finds distinct values on the host).
  if (graph_ != nullptr && call.kv_out == nullptr && timestep.dim() <= 1) {
    try {
      return forward_graphed(call, hidden, timestep);
    } catch (const GraphRecordingError& e) {
      // Every rank is here at the same step (StepGraph agrees first).
      LTX_LOG(kWarn) << "step graphs turned off (" << graph_->backend_name() << "): " << e.what();
      graph_.reset();
    }
  }
  LtxForwardArgs args;
  args.hidden_states = hidden;
  args.timestep = timestep;
  args.text = &family_object<LtxPreparedText>(call.text, "text conditioning").text;
  args.rope_cos = positions.cos;
  args.rope_sin = positions.sin;
  args.shard = call.shard;
  args.group = call.group;
  args.kv_prefix = call.kv_prefix != nullptr && !call.kv_prefix->empty() ? call.kv_prefix : nullptr;
  args.kv_out = call.kv_out;
  args.self_attention_bias = call.self_attention_bias;
  return transformer_.forward(args).to(at::kFloat);
}

at::Tensor LtxDenoiser::forward_graphed(const DenoiserCall& call, const at::Tensor& hidden_states,
                                       const at::Tensor& timestep) const {
  // Every tensor the step reads goes in, in this order: latents, timesteps,
  // RoPE tables, text bias and per-layer text K/V, then the KV prefix and the
  // bias when there are; the recording reads only the static copies.
  const auto& positions = family_object<LtxPositions>(call.positions, "positions");
  const TextConditioning& text = family_object<LtxPreparedText>(call.text, "text conditioning").text;
  const bool has_prefix = call.kv_prefix != nullptr && !call.kv_prefix->empty();
  const bool has_bias = call.self_attention_bias.has_value();
  std::vector<at::Tensor> in{hidden_states, timestep, positions.cos, positions.sin, text.bias};
  for (const LayerKv& kv : text.cross_kv) in.insert(in.end(), {kv.k, kv.v});
  if (has_prefix) {
    for (const LayerKv& kv : *call.kv_prefix) in.insert(in.end(), {kv.k, kv.v});
  }
  if (has_bias) in.push_back(*call.self_attention_bias);
  const parallel::SequenceShard shard = call.shard;
  dist::Communicator* group = call.group;
  const int64_t text_layers = static_cast<int64_t>(text.cross_kv.size());
  const int64_t prefix_layers = has_prefix ? static_cast<int64_t>(call.kv_prefix->size()) : 0;
  const std::string key = "shard " + std::to_string(shard.rank) + "/" + std::to_string(shard.world_size) + " " +
                          std::to_string(shard.seq_len) + "/" + std::to_string(shard.padded_len) +
                          (has_prefix ? " prefix" : "") + (has_bias ? " bias" : "") +
                          (group != nullptr ? " group " + std::to_string(reinterpret_cast<uintptr_t>(group)) : "");
  auto make_body = [this, shard, group, text_layers, prefix_layers, has_bias]() -> StepGraph::Body {
    return [this, shard, group, text_layers, prefix_layers, has_bias](const std::vector<at::Tensor>& s) {
      size_t i = 5;
      TextConditioning t;
      t.bias = s[4];
      for (int64_t l = 0; l < text_layers; ++l, i += 2) t.cross_kv.push_back({s[i], s[i + 1]});
      std::vector<LayerKv> prefix;
      for (int64_t l = 0; l < prefix_layers; ++l, i += 2) prefix.push_back({s[i], s[i + 1]});
      LtxForwardArgs args;
      args.hidden_states = s[0];
      args.timestep = s[1];
      args.rope_cos = s[2];
      args.rope_sin = s[3];
      args.text = &t;
      args.shard = shard;
      args.group = group;
      args.kv_prefix = prefix_layers > 0 ? &prefix : nullptr;
      if (has_bias) args.self_attention_bias = s[i];
      return transformer_.forward(args).to(at::kFloat);
    };
  };
  return graph_->run(key, in, make_body);
}

void LtxDenoiser::rebase_keys(LayerKv& layer, int64_t frames, double fps) const {
  if (frames == 0) return;
  // angle = omega * (2p - 1): the frame axis at p = 0.5 - dp gives
  // -2*omega*dp; the other axes at p = 0.5 give 0 (identity).
  const RopeSettings rope = rope_at(fps);
  const double dp = rope_frame_step(rope, frames);
  at::Tensor pos = at::tensor({0.5 - dp, 0.5, 0.5}, at::kFloat).view({1, 3});
  const int64_t b = layer.k.size(0), t = layer.k.size(1), h = layer.k.size(2), d = layer.k.size(3);
  const dist::Communicator& comm = transformer_.communicator();
  const int64_t first_channel = comm.rank() * (transformer_.num_heads() / comm.size()) * transformer_.head_dim();
  RopeTables r = rope_tables_from_positions(pos, rope, transformer_.inner_dim(), layer.k.device());
  at::Tensor cos = r.cos.narrow(1, first_channel, h * d), sin = r.sin.narrow(1, first_channel, h * d);
  layer.k = apply_rope(layer.k.reshape({b, t, h * d}), cos, sin).view({b, t, h, d});
}

}  // namespace ltx::pipeline
