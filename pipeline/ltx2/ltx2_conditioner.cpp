#include "pipeline/ltx2/ltx2_conditioner.h"

#include <filesystem>

#include "common/check.h"

namespace ltx::pipeline {
namespace fs = std::filesystem;

Ltx2TextConditioner::Ltx2TextConditioner(Tokenizer tokenizer, Gemma3TextEncoder gemma, Ltx2TextConnectors connectors,
                                         Placement placement)
    : tokenizer_(std::move(tokenizer)),
      gemma_(std::move(gemma)),
      connectors_(std::move(connectors)),
      placement_(placement) {}

Result<std::unique_ptr<Ltx2TextConditioner>> Ltx2TextConditioner::load(const std::string& model_dir,
                                                                       const Placement& placement,
                                                                       int64_t max_length) {
  const fs::path dir(model_dir);
  LTX_ASSIGN_OR_RETURN(auto tok, Tokenizer::load((dir / "tokenizer" / "tokenizer.model").string(),
                                                 TokenizerRules::gemma(max_length)));
  LTX_ASSIGN_OR_RETURN(auto gemma, Gemma3TextEncoder::load((dir / "text_encoder").string(), placement.dtype,
                                                           placement.device));
  LTX_ASSIGN_OR_RETURN(auto conn, Ltx2TextConnectors::load((dir / "connectors").string(), placement.dtype,
                                                           placement.device));
  const auto& cc = conn.config();
  const int64_t layers = gemma.config().num_hidden_layers + 1;
  if (gemma.config().hidden_size != cc.caption_channels || layers != cc.text_proj_in_factor) {
    return invalid_argument_error((dir / "connectors" / "config.json").string() + ": caption_channels " +
                                  std::to_string(cc.caption_channels) + " x text_proj_in_factor " +
                                  std::to_string(cc.text_proj_in_factor) + " does not match the text encoder's " +
                                  std::to_string(gemma.config().hidden_size) + " channels x " +
                                  std::to_string(layers) + " hidden states");
  }
  for (const Ltx2ConnectorConfig* c : {&cc.video, &cc.audio}) {
    if (c->num_learnable_registers > 0 && max_length % c->num_learnable_registers != 0) {
      return invalid_argument_error("the text length " + std::to_string(max_length) + " must be a multiple of the " +
                                    std::to_string(c->num_learnable_registers) + " connector registers");
    }
  }
  return std::make_unique<Ltx2TextConditioner>(std::move(tok), std::move(gemma), std::move(conn), placement);
}

Result<EncodedPrompts> Ltx2TextConditioner::encode(const std::vector<std::string>& prompts) const {
  LTX_ASSIGN_OR_RETURN(TokenizedBatch batch, tokenizer_.encode(prompts));
  try {
    const at::Tensor mask = batch.attention_mask.to(placement_.device);
    Gemma3Output g = gemma_.encode(batch.input_ids.to(placement_.device), mask, /*all_hidden_states=*/true);
    at::Tensor stacked = at::stack(g.hidden_states, -1);  // [B, L, C, layers + 1]
    auto ctx = connectors_.forward(stacked, mask, /*left_padding=*/true);
    EncodedPrompts out;
    out.embeddings = at::cat({ctx.video, ctx.audio}, -1);
    out.mask = ctx.mask;
    return out;
  } catch (...) {
    return status_from_current_exception().with_context("LTX-2 text path");
  }
}

std::string Ltx2TextConditioner::settings_key() const {
  return "ltx2-" + connectors_.config().variant() + "|len=" + std::to_string(tokenizer_.rules().max_length) + "|" +
         placement_.to_string();
}

std::vector<at::Tensor> Ltx2TextConditioner::weights() const {
  std::vector<at::Tensor> all = gemma_.weights();
  for (const auto& w : connectors_.weights()) all.push_back(w);
  return all;
}

std::pair<at::Tensor, at::Tensor> split_ltx2_contexts(const at::Tensor& embeddings, int64_t video_width) {
  LTX_CHECK(embeddings.dim() == 3 && embeddings.size(2) > video_width, "LTX-2 contexts must be [B, L, video + audio], got ",
            embeddings.sizes(), " for video width ", video_width);
  return {embeddings.narrow(2, 0, video_width),
          embeddings.narrow(2, video_width, embeddings.size(2) - video_width)};
}

}  // namespace ltx::pipeline
