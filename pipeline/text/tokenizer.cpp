#include "pipeline/text/tokenizer.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <mutex>

#include "common/check.h"
#include "pipeline/text/spm_shim/spm_shim.h"

namespace ltx::pipeline {
namespace {

// The shim's entry points, resolved once per process.
struct SentencePieceModule {
  decltype(&ltx_spm_load) load = nullptr;
  decltype(&ltx_spm_load_serialized) load_serialized = nullptr;
  decltype(&ltx_spm_free) free = nullptr;
  decltype(&ltx_spm_piece_size) piece_size = nullptr;
  decltype(&ltx_spm_pad_id) pad_id = nullptr;
  decltype(&ltx_spm_bos_id) bos_id = nullptr;
  decltype(&ltx_spm_eos_id) eos_id = nullptr;
  decltype(&ltx_spm_encode) encode = nullptr;
  decltype(&ltx_spm_decode) decode = nullptr;
  decltype(&ltx_spm_train) train = nullptr;
  decltype(&ltx_spm_free_buffer) free_buffer = nullptr;
  Status status;
};

std::string executable_dir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string p(buf, n);
  return p.substr(0, p.find_last_of('/'));
}

const SentencePieceModule& module() {
  static SentencePieceModule m;
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("LTX_SPM_SHIM")) candidates.push_back(env);
    candidates.push_back(executable_dir() + "/libltx_spm_shim.so");
    candidates.push_back(LTX_SPM_SHIM_PATH);
    void* h = nullptr;
    std::string tried;
    for (const auto& c : candidates) {
      // A link-map namespace of its own: sentencepiece and its protobuf copy
      // never meet libtorch's libprotobuf in either direction. Memory crosses
      // the boundary only as caller-owned inputs and shim-freed outputs.
      h = dlmopen(LM_ID_NEWLM, c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h != nullptr) break;
      tried += "\n  " + c + ": " + dlerror();
    }
    if (h == nullptr) {
      m.status = unavailable_error("cannot load the SentencePiece shim libltx_spm_shim.so (set LTX_SPM_SHIM):" + tried);
      return;
    }
    bool ok = true;
    auto sym = [&](const char* name, auto* fn) {
      *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(dlsym(h, name));
      ok = ok && *fn != nullptr;
    };
    sym("ltx_spm_load", &m.load);
    sym("ltx_spm_load_serialized", &m.load_serialized);
    sym("ltx_spm_free", &m.free);
    sym("ltx_spm_piece_size", &m.piece_size);
    sym("ltx_spm_pad_id", &m.pad_id);
    sym("ltx_spm_bos_id", &m.bos_id);
    sym("ltx_spm_eos_id", &m.eos_id);
    sym("ltx_spm_encode", &m.encode);
    sym("ltx_spm_decode", &m.decode);
    sym("ltx_spm_train", &m.train);
    sym("ltx_spm_free_buffer", &m.free_buffer);
    if (!ok) m.status = unavailable_error("the SentencePiece shim lacks an entry point (stale build?)");
  });
  return m;
}

// Takes ownership of a malloc'ed error string from the shim.
std::string take_error(char* error) {
  std::string s = error != nullptr ? error : "unknown error";
  if (error != nullptr) module().free_buffer(error);
  return s;
}

std::string strip(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

Status check_rules(const TokenizerRules& rules, const std::string& label) {
  if (rules.max_length < 2) {
    return invalid_argument_error(label + ": tokenizer max_length must be at least 2, got " +
                                  std::to_string(rules.max_length));
  }
  return Status();
}

}  // namespace

Tokenizer::Handle::~Handle() {
  if (spm != nullptr) module().free(spm);
}

Tokenizer::Tokenizer(std::unique_ptr<Handle> sp, TokenizerRules rules, std::string label)
    : sp_(std::move(sp)), rules_(rules), label_(std::move(label)) {
  // Ids the model file declares; the families' conventional values otherwise.
  const auto& m = module();
  pad_id_ = m.pad_id(sp_->spm) >= 0 ? m.pad_id(sp_->spm) : 0;
  eos_id_ = m.eos_id(sp_->spm) >= 0 ? m.eos_id(sp_->spm) : 1;
  bos_id_ = m.bos_id(sp_->spm) >= 0 ? m.bos_id(sp_->spm) : 2;
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Result<Tokenizer> Tokenizer::load(const std::string& model_path, const TokenizerRules& rules) {
  LTX_RETURN_IF_ERROR(check_rules(rules, model_path));
  const auto& m = module();
  LTX_RETURN_IF_ERROR(m.status);
  char* error = nullptr;
  int not_found = 0;
  auto handle = std::make_unique<Handle>();
  handle->spm = m.load(model_path.c_str(), &error, &not_found);
  if (handle->spm == nullptr) {
    std::string why = take_error(error);
    return not_found ? not_found_error(model_path + ": " + why)
                     : invalid_argument_error(model_path + ": not a SentencePiece model: " + why);
  }
  return Tokenizer(std::move(handle), rules, model_path);
}

Result<Tokenizer> Tokenizer::from_serialized(const std::string& bytes, const TokenizerRules& rules,
                                             const std::string& label) {
  LTX_RETURN_IF_ERROR(check_rules(rules, label));
  const auto& m = module();
  LTX_RETURN_IF_ERROR(m.status);
  char* error = nullptr;
  auto handle = std::make_unique<Handle>();
  handle->spm = m.load_serialized(bytes.data(), bytes.size(), &error);
  if (handle->spm == nullptr) return invalid_argument_error(label + ": not a SentencePiece model: " + take_error(error));
  return Tokenizer(std::move(handle), rules, label);
}

int64_t Tokenizer::vocab_size() const { return module().piece_size(sp_->spm); }

Result<std::vector<int64_t>> Tokenizer::ids(const std::string& prompt) const {
  const std::string text = rules_.strip ? strip(prompt) : prompt;
  int* raw = nullptr;
  size_t count = 0;
  char* error = nullptr;
  if (module().encode(sp_->spm, text.data(), text.size(), &raw, &count, &error) != 0) {
    return invalid_argument_error(label_ + ": cannot tokenize the prompt: " + take_error(error));
  }
  std::vector<int> pieces(raw, raw + count);
  module().free_buffer(raw);
  std::vector<int64_t> out;
  const size_t limit = static_cast<size_t>(rules_.max_length);
  if (rules_.family == TokenizerFamily::kGemma) {
    out.push_back(bos_id_);
    for (int p : pieces) {
      if (out.size() >= limit) break;
      out.push_back(p);
    }
  } else {
    for (int p : pieces) {
      if (out.size() >= limit - 1) break;
      out.push_back(p);
    }
    out.push_back(eos_id_);
  }
  return out;
}

Result<TokenizedBatch> Tokenizer::encode(const std::vector<std::string>& prompts) const {
  if (prompts.empty()) return invalid_argument_error("tokenizer: no prompts to encode");
  const int64_t b = static_cast<int64_t>(prompts.size()), t = rules_.max_length;
  at::Tensor ids = at::full({b, t}, pad_id_, at::kLong);
  at::Tensor mask = at::zeros({b, t}, at::kLong);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < b; ++i) {
    LTX_ASSIGN_OR_RETURN(std::vector<int64_t> one, this->ids(prompts[i]));
    const int64_t n = static_cast<int64_t>(one.size());
    const int64_t start = rules_.family == TokenizerFamily::kGemma ? t - n : 0;  // left vs right padding
    for (int64_t j = 0; j < n; ++j) {
      ids_a[i][start + j] = one[j];
      mask_a[i][start + j] = 1;
    }
  }
  return TokenizedBatch{ids, mask};
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int> keep;
  for (int64_t id : ids) {
    if (id == pad_id_ || id == bos_id_ || id == eos_id_) continue;
    if (id >= 0 && id < vocab_size()) keep.push_back(static_cast<int>(id));
  }
  char* text = nullptr;
  char* error = nullptr;
  if (module().decode(sp_->spm, keep.data(), keep.size(), &text, &error) != 0) {
    take_error(error);
    return "";
  }
  std::string out = text;
  module().free_buffer(text);
  return out;
}

Status train_sentencepiece(const std::string& flags) {
  const auto& m = module();
  LTX_RETURN_IF_ERROR(m.status);
  char* error = nullptr;
  if (m.train(flags.c_str(), &error) != 0) return invalid_argument_error("sentencepiece training: " + take_error(error));
  return Status();
}

}  // namespace ltx::pipeline
