// LtxDenoiser: the LTX-Video transformer (dit/ltx_transformer.h) as the
// family's Denoiser role: text prepared once per request, RoPE tables per
// grid in one global frame (so cached keys of earlier chunks stay valid), and
// the KV hooks a stream session uses. Owns the transformer; immutable after
// construction; forward() is collective (the Ulysses all-to-alls).
#pragma once

#include <memory>

#include "pipeline/dit/ltx_rope.h"
#include "pipeline/dit/ltx_transformer.h"
#include "pipeline/model/roles.h"
#include "pipeline/runtime/step_graph.h"

namespace ltx::pipeline {

class LtxDenoiser final : public Denoiser {
 public:
  // `rope` carries the decoder's compression factors (frame_rate is set per call).
  // With `step_graphs`, a forward that fills no KV output is recorded once per
  // shape and replayed (step_graph.h: CUDA graphs on a GPU, the body kept and
  // called elsewhere); if recording fails, it says so once and runs eagerly.
  LtxDenoiser(LtxTransformer transformer, RopeSettings rope, bool step_graphs = false);

  const LtxTransformer& transformer() const { return transformer_; }
  Placement placement() const override { return {transformer_.device(), transformer_.dtype(), graph_ != nullptr}; }
  // The step graph's counters (null without step graphs).
  const StepGraph* step_graph() const { return graph_.get(); }
  int64_t latent_channels() const override { return transformer_.config().in_channels; }
  int64_t context_channels() const override { return transformer_.config().caption_channels; }
  int64_t num_layers() const override { return transformer_.config().num_layers; }
  int64_t attention_heads() const override { return transformer_.num_heads(); }
  int64_t hidden_size() const override { return transformer_.config().inner_dim(); }
  std::vector<at::Tensor> weights() const override { return transformer_.weights(); }

  std::unique_ptr<PreparedText> prepare_text(const at::Tensor& embeddings, const at::Tensor& mask) const override;
  std::unique_ptr<DenoiserPositions> positions(const LatentGrid& grid, double fps,
                                               const parallel::SequenceShard& shard) const override;
  at::Tensor forward(const DenoiserCall& call) const override;
  void rebase_keys(LayerKv& layer, int64_t frames, double fps) const override;

 private:
  RopeSettings rope_at(double fps) const;
  at::Tensor forward_graphed(const DenoiserCall& call, const at::Tensor& hidden_states,
                             const at::Tensor& timestep) const;
  LtxTransformer transformer_;
  RopeSettings rope_;
  mutable std::unique_ptr<StepGraph> graph_;  // driven by the inference thread only
};

}  // namespace ltx::pipeline
