#include "pipeline/text/gemma3_conditioner.h"

#include "common/check.h"

namespace ltx::pipeline {

Gemma3TextConditioner::Gemma3TextConditioner(Tokenizer tokenizer, Gemma3TextEncoder model, Placement placement)
    : tokenizer_(std::move(tokenizer)), model_(std::move(model)), placement_(placement) {}

Result<EncodedPrompts> Gemma3TextConditioner::encode(const std::vector<std::string>& prompts) const {
  LTX_ASSIGN_OR_RETURN(TokenizedBatch batch, tokenizer_.encode(prompts));
  try {
    EncodedPrompts out;
    out.mask = batch.attention_mask;
    out.embeddings = model_
                         .encode(batch.input_ids.to(placement_.device), batch.attention_mask.to(placement_.device),
                                 /*all_hidden_states=*/false)
                         .last_hidden_state;
    return out;
  } catch (...) {
    return status_from_current_exception().with_context("text encoder");
  }
}

std::string Gemma3TextConditioner::settings_key() const {
  return "gemma3|len=" + std::to_string(tokenizer_.rules().max_length) +
         "|strip=" + (tokenizer_.rules().strip ? "1" : "0") + "|" + placement_.to_string();
}

}  // namespace ltx::pipeline
