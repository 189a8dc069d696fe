// Ltx2TextConditioner: prompts -> the LTX-2 transformer's two text contexts
// (spec ltx2.md §2): Gemma 3 with every hidden state (tokenizer rules: strip,
// BOS, left padding to the pipeline's 1024 tokens), the feature extraction and
// both connectors. The contexts travel as one tensor, video channels first,
// so the prompt encoder broadcasts and caches them like any family's
// (EncodedPrompts: embeddings [B, L, video + audio width], mask [B, L]);
// split_contexts() separates them on every rank. Rank 0 only; immutable after
// load, encode() is const.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/ltx2/ltx2_text_connectors.h"
#include "pipeline/model/roles.h"
#include "pipeline/text/gemma3_encoder.h"
#include "pipeline/text/tokenizer.h"

namespace ltx::pipeline {

// LTX2Pipeline's max_sequence_length.
constexpr int64_t kLtx2TextLength = 1024;

class Ltx2TextConditioner final : public TextConditioner {
 public:
  Ltx2TextConditioner(Tokenizer tokenizer, Gemma3TextEncoder gemma, Ltx2TextConnectors connectors,
                      Placement placement);
  // A diffusers LTX-2 folder: tokenizer/tokenizer.model, text_encoder/, connectors/.
  static Result<std::unique_ptr<Ltx2TextConditioner>> load(const std::string& model_dir, const Placement& placement,
                                                           int64_t max_length = kLtx2TextLength);

  Result<EncodedPrompts> encode(const std::vector<std::string>& prompts) const override;
  std::string settings_key() const override;
  Placement placement() const override { return placement_; }
  std::vector<at::Tensor> weights() const override;

  int64_t video_width() const { return connectors_.config().video_input_dim(); }
  int64_t audio_width() const { return connectors_.config().audio_input_dim(); }

 private:
  Tokenizer tokenizer_;
  Gemma3TextEncoder gemma_;
  Ltx2TextConnectors connectors_;
  Placement placement_;
};

// (video context, audio context) of a conditioner's embeddings.
std::pair<at::Tensor, at::Tensor> split_ltx2_contexts(const at::Tensor& embeddings, int64_t video_width);

}  // namespace ltx::pipeline
