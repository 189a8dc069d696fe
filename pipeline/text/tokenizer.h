// Tokenizer: a checkpoint's own SentencePiece model plus the rules of its
// model family, producing the id and mask tensors the text encoders take.
//
//   Gemma 3 (LTX-2): prompt stripped, BOS prepended, no EOS, truncated to
//   max_length ids (BOS included), LEFT-padded with the pad id.
//   T5 (LTX-Video 0.9.x): EOS appended, truncated to max_length - 1 text ids +
//   EOS, RIGHT-padded with the pad id; not stripped (diffusers LTXPipeline).
// Runs on rank 0 only (the text encoder's rank). The SentencePiece processor
// is immutable after load, so encode() may be called from several threads.
// SentencePiece itself is reached through a small shim module loaded at run
// time (see spm_shim/spm_shim.h for why it cannot be linked directly).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

struct ltx_spm;

namespace ltx::pipeline {

enum class TokenizerFamily { kGemma, kT5 };

struct TokenizerRules {
  TokenizerFamily family = TokenizerFamily::kGemma;
  int64_t max_length = 1024;  // Gemma: LTX-2's 1024; T5: diffusers' 128
  bool strip = true;          // strip leading/trailing whitespace first

  static TokenizerRules gemma(int64_t max_length = 1024) { return {TokenizerFamily::kGemma, max_length, true}; }
  static TokenizerRules t5(int64_t max_length = 128) { return {TokenizerFamily::kT5, max_length, false}; }
};

struct TokenizedBatch {
  at::Tensor input_ids;       // [B, max_length] int64
  at::Tensor attention_mask;  // [B, max_length] int64, 1 = real token
};

class Tokenizer {
 public:
  // Loads a SentencePiece model file (tokenizer.model / spiece.model).
  static Result<Tokenizer> load(const std::string& model_path, const TokenizerRules& rules);
  // The same from the serialized model bytes.
  static Result<Tokenizer> from_serialized(const std::string& model_bytes, const TokenizerRules& rules,
                                           const std::string& label);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  const TokenizerRules& rules() const { return rules_; }
  int64_t vocab_size() const;
  int64_t pad_id() const { return pad_id_; }
  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }

  // Ids of one prompt after the family's rules, before padding.
  Result<std::vector<int64_t>> ids(const std::string& prompt) const;
  // A batch of prompts, padded to max_length.
  Result<TokenizedBatch> encode(const std::vector<std::string>& prompts) const;
  // Text of ids (special ids skipped); for logs and tests.
  std::string decode(const std::vector<int64_t>& ids) const;

 private:
  struct Handle {
    ltx_spm* spm = nullptr;
    ~Handle();
  };
  Tokenizer(std::unique_ptr<Handle> sp, TokenizerRules rules, std::string label);
  std::unique_ptr<Handle> sp_;
  TokenizerRules rules_;
  std::string label_;
  int64_t pad_id_ = 0, bos_id_ = 2, eos_id_ = 1;
};

// Trains a SentencePiece model (SentencePieceTrainer flags, e.g.
// "--input=corpus.txt --model_prefix=dir/tok --vocab_size=200"). Used by the
// small-model tool and by tests.
Status train_sentencepiece(const std::string& flags);

}  // namespace ltx::pipeline
