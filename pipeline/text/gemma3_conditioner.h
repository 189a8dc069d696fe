// Gemma3TextConditioner: a Gemma 3 text model's last hidden state as the
// denoiser's context (Gemma tokenizer rules: left padding, BOS). A model
// folder whose text_encoder/ is Gemma 3 uses it; LTX-2's conditioner adds its
// feature extraction and connectors on top of the same encoder. Rank 0 only;
// immutable after construction, encode() is const.
#pragma once

#include <string>
#include <vector>

#include "pipeline/model/roles.h"
#include "pipeline/text/gemma3_encoder.h"
#include "pipeline/text/tokenizer.h"

namespace ltx::pipeline {

class Gemma3TextConditioner final : public TextConditioner {
 public:
  Gemma3TextConditioner(Tokenizer tokenizer, Gemma3TextEncoder model, Placement placement);

  Result<EncodedPrompts> encode(const std::vector<std::string>& prompts) const override;
  std::string settings_key() const override;
  Placement placement() const override { return placement_; }
  std::vector<at::Tensor> weights() const override { return model_.weights(); }

 private:
  Tokenizer tokenizer_;
  Gemma3TextEncoder model_;
  Placement placement_;
};

}  // namespace ltx::pipeline
