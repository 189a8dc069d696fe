// T5TextConditioner: the TextConditioner of LTX-Video 0.9.x (a T5 v1.1
// encoder's last hidden state, T5 tokenizer rules). Rank 0 only; immutable
// after construction, encode() is const.
#pragma once

#include <string>
#include <vector>

#include "pipeline/model/roles.h"
#include "pipeline/text/t5_encoder.h"
#include "pipeline/text/tokenizer.h"

namespace ltx::pipeline {

class T5TextConditioner final : public TextConditioner {
 public:
  // `mask_to_t5`: whether T5 sees the padding mask (LTX-Video's own code:
  // yes; diffusers LTXPipeline: no). The denoiser gets the mask either way.
  T5TextConditioner(Tokenizer tokenizer, T5Encoder model, bool mask_to_t5, Placement placement);

  Result<EncodedPrompts> encode(const std::vector<std::string>& prompts) const override;
  std::string settings_key() const override;
  Placement placement() const override { return placement_; }
  std::vector<at::Tensor> weights() const override { return model_.weights(); }

 private:
  Tokenizer tokenizer_;
  T5Encoder model_;
  bool mask_to_t5_;
  Placement placement_;
};

}  // namespace ltx::pipeline
