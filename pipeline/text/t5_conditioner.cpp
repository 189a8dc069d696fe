#include "pipeline/text/t5_conditioner.h"

#include "common/check.h"

namespace ltx::pipeline {

T5TextConditioner::T5TextConditioner(Tokenizer tokenizer, T5Encoder model, bool mask_to_t5, Placement placement)
    : tokenizer_(std::move(tokenizer)), model_(std::move(model)), mask_to_t5_(mask_to_t5), placement_(placement) {}

Result<EncodedPrompts> T5TextConditioner::encode(const std::vector<std::string>& prompts) const {
  LTX_ASSIGN_OR_RETURN(TokenizedBatch batch, tokenizer_.encode(prompts));
  try {
    EncodedPrompts out;
    out.mask = batch.attention_mask;
    out.embeddings = model_.encode(batch.input_ids.to(placement_.device), batch.attention_mask.to(placement_.device),
                                   mask_to_t5_);
    return out;
  } catch (...) {
    return status_from_current_exception().with_context("text encoder");
  }
}

std::string T5TextConditioner::settings_key() const {
  return "t5|len=" + std::to_string(tokenizer_.rules().max_length) + "|strip=" + (tokenizer_.rules().strip ? "1" : "0") +
         "|mask=" + (mask_to_t5_ ? "1" : "0") + "|" + placement_.to_string();
}

}  // namespace ltx::pipeline
