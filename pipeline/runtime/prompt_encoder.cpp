#include "pipeline/runtime/prompt_encoder.h"

#include <array>
#include <cstring>

#include "common/check.h"
#include "common/logging.h"

namespace ltx::pipeline {
PromptEncoder::PromptEncoder(dist::Communicator& comm, std::unique_ptr<TextConditioner> conditioner, size_t capacity)
    : comm_(comm), encoder_(std::move(conditioner)), capacity_(capacity) {
  LTX_CHECK((encoder_ != nullptr) == (comm_.rank() == 0),
            "the text encoder lives on rank 0 only (this is rank ", comm_.rank(), ", encoder ",
            encoder_ != nullptr ? "given" : "missing", ")");
}

Result<EncodedPrompts> PromptEncoder::encode_on_root(const std::vector<std::string>& prompts) {
  if (prompts.empty()) return invalid_argument_error("no prompts to encode");
  std::vector<size_t> misses;
  std::vector<std::string> keys;
  for (size_t i = 0; i < prompts.size(); ++i) {
    keys.push_back(encoder_->settings_key() + '\0' + prompts[i]);
    if (cache_.count(keys.back())) {
      ++stats_.hits;
    } else {
      ++stats_.misses;
      misses.push_back(i);
    }
  }
  std::vector<Entry> rows(prompts.size());
  if (!misses.empty()) {
    std::vector<std::string> todo;
    for (size_t i : misses) todo.push_back(prompts[i]);
    LTX_ASSIGN_OR_RETURN(EncodedPrompts fresh, encoder_->encode(todo));
    for (size_t j = 0; j < misses.size(); ++j) {
      rows[misses[j]] = {fresh.embeddings[j].clone(), fresh.mask[j].clone()};
    }
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto it = cache_.find(keys[i]);
    if (it != cache_.end()) {
      if (!rows[i].embeddings.defined()) rows[i] = it->second.first;
      lru_.erase(it->second.second);
      lru_.push_front(keys[i]);
      it->second.second = lru_.begin();
    } else if (capacity_ > 0) {
      lru_.push_front(keys[i]);
      cache_.emplace(keys[i], std::make_pair(rows[i], lru_.begin()));
      while (cache_.size() > capacity_) {
        cache_.erase(lru_.back());
        lru_.pop_back();
      }
    }
  }
  stats_.entries = static_cast<int64_t>(cache_.size());
  EncodedPrompts out;
  std::vector<at::Tensor> e, m;
  for (const auto& r : rows) {
    e.push_back(r.embeddings);
    m.push_back(r.mask);
  }
  out.embeddings = at::stack(e);
  out.mask = at::stack(m);
  return out;
}

Result<EncodedPrompts> PromptEncoder::encode(const std::vector<std::string>& prompts) {
  const at::Device dev = comm_.device();
  // Rank 0 encodes; its verdict, with the embeddings' shape and dtype, reaches
  // every rank before any tensor moves, so a failure there is everyone's.
  Result<EncodedPrompts> local = internal_error("not rank 0");
  Status root_status;
  std::array<int64_t, 4> header{};  // batch, tokens, width, dtype
  std::string payload;
  if (comm_.rank() == 0) {
    local = encode_on_root(prompts);
    if (local.ok()) {
      header = {local->embeddings.size(0), local->embeddings.size(1), local->embeddings.size(2),
                static_cast<int64_t>(local->embeddings.scalar_type())};
      payload.assign(reinterpret_cast<const char*>(header.data()), sizeof(header));
    } else {
      root_status = local.status();
    }
  }
  Status verdict = comm_.root_verdict(root_status, &payload);
  if (!verdict.ok()) return Status(verdict.code(), "rank 0 could not encode the prompts: " + verdict.message());
  LTX_INTERNAL_ASSERT(payload.size() == sizeof(header), "prompt header of ", payload.size(), " bytes");
  std::memcpy(header.data(), payload.data(), sizeof(header));
  const auto dtype = static_cast<at::ScalarType>(header[3]);
  EncodedPrompts out;
  if (comm_.rank() == 0) {
    out.embeddings = local->embeddings.to(dev).contiguous();
    out.mask = local->mask.to(dev).contiguous();
  } else {
    out.embeddings = at::empty({header[0], header[1], header[2]}, at::TensorOptions().dtype(dtype).device(dev));
    out.mask = at::empty({header[0], header[1]}, at::TensorOptions().dtype(at::kLong).device(dev));
  }
  comm_.broadcast(out.embeddings, 0);
  comm_.broadcast(out.mask, 0);
  return out;
}

}  // namespace ltx::pipeline
