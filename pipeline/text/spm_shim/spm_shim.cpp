#include "pipeline/text/spm_shim/spm_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

struct ltx_spm {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

char* copy_string(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out != nullptr) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

void set_error(char** error, const std::string& text) {
  if (error != nullptr) *error = copy_string(text);
}

}  // namespace

extern "C" {

ltx_spm* ltx_spm_load(const char* path, char** error, int* not_found) {
  auto* spm = new (std::nothrow) ltx_spm();
  if (spm == nullptr) return nullptr;
  auto st = spm->processor.Load(path);
  if (!st.ok()) {
    if (not_found != nullptr) *not_found = st.code() == sentencepiece::util::StatusCode::kNotFound;
    set_error(error, st.ToString());
    delete spm;
    return nullptr;
  }
  return spm;
}

ltx_spm* ltx_spm_load_serialized(const char* data, size_t size, char** error) {
  auto* spm = new (std::nothrow) ltx_spm();
  if (spm == nullptr) return nullptr;
  auto st = spm->processor.LoadFromSerializedProto(std::string(data, size));
  if (!st.ok()) {
    set_error(error, st.ToString());
    delete spm;
    return nullptr;
  }
  return spm;
}

void ltx_spm_free(ltx_spm* spm) { delete spm; }

int ltx_spm_piece_size(const ltx_spm* spm) { return spm->processor.GetPieceSize(); }
int ltx_spm_pad_id(const ltx_spm* spm) { return spm->processor.pad_id(); }
int ltx_spm_bos_id(const ltx_spm* spm) { return spm->processor.bos_id(); }
int ltx_spm_eos_id(const ltx_spm* spm) { return spm->processor.eos_id(); }

int ltx_spm_encode(const ltx_spm* spm, const char* text, size_t size, int** ids, size_t* count, char** error) {
  std::vector<int> out;
  auto st = spm->processor.Encode(std::string(text, size), &out);
  if (!st.ok()) {
    set_error(error, st.ToString());
    return 1;
  }
  *count = out.size();
  *ids = static_cast<int*>(std::malloc(sizeof(int) * (out.empty() ? 1 : out.size())));
  if (*ids == nullptr) {
    set_error(error, "out of memory");
    return 1;
  }
  if (!out.empty()) std::memcpy(*ids, out.data(), sizeof(int) * out.size());
  return 0;
}

int ltx_spm_decode(const ltx_spm* spm, const int* ids, size_t count, char** text, char** error) {
  std::string out;
  auto st = spm->processor.Decode(std::vector<int>(ids, ids + count), &out);
  if (!st.ok()) {
    set_error(error, st.ToString());
    return 1;
  }
  *text = copy_string(out);
  return 0;
}

int ltx_spm_train(const char* flags, char** error) {
  auto st = sentencepiece::SentencePieceTrainer::Train(flags);
  if (!st.ok()) {
    set_error(error, st.ToString());
    return 1;
  }
  return 0;
}

void ltx_spm_free_buffer(void* buffer) { std::free(buffer); }

}  // extern "C"
