#include "pipeline/runtime/continuation_state.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/runtime/video_pipeline.h"

namespace ltx::pipeline {
namespace fs = std::filesystem;
using nlohmann::json;

std::string base64_encode(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> base64_decode(const std::string& text) {
  if (text.size() % 4 != 0) return invalid_argument_error("base64 text length is not a multiple of 4");
  for (char c : text) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=')) {
      return invalid_argument_error("base64 text holds a character outside the alphabet");
    }
  }
  std::string out(3 * (text.size() / 4), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return invalid_argument_error("base64 text does not decode");
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

namespace {

std::string sha256_hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 15]);
  }
  return out;
}

// A stream's settings are the stream fields of the request type's one field list.
json settings_to_json(const StreamSettings& s, bool makes_sound) {
  json j = json::object();
  for_each_param(s, [&j, makes_sound](const char* name, const auto& v, unsigned uses) {
    if (takes_param(uses, kStreamParam, makes_sound)) j[name] = v;
  });
  return j;
}

// Reads a required field of the expected JSON type or fails naming it.
template <typename T>
Status field(const json& obj, const std::string& where, const char* key, T* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return invalid_argument_error("state: missing field '" + where + key + "'");
  try {
    if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) throw std::invalid_argument("");
    } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
      if (!it->is_number_unsigned()) throw std::invalid_argument("");  // as the API: no negative seeds
    } else if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_integer()) throw std::invalid_argument("");
      if (it->is_number_unsigned() && it->template get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        throw std::invalid_argument("");
      }
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!it->is_number()) throw std::invalid_argument("");
    } else {
      if (!it->is_string()) throw std::invalid_argument("");
    }
    *out = it->get<T>();
  } catch (const std::exception&) {
    return invalid_argument_error("state: field '" + where + key + "' has the wrong type");
  }
  return Status();
}

Status check_shape(const at::Tensor& t, const std::vector<int64_t>& shape, const std::string& name) {
  if (t.sizes().vec() != shape) {
    return invalid_argument_error("state: tensor '" + name + "' has shape " + c10::str(t.sizes()) + ", expected " +
                                  c10::str(c10::IntArrayRef(shape)));
  }
  return Status();
}

}  // namespace

bool BlobStore::valid_id(const std::string& id) {
  if (id.size() != 64) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

namespace {

// What a failed write means for a client: a full disk or a folder that cannot
// be written, said plainly (the service answers 503 with Retry-After).
Status write_error(const std::string& what, int err) {
  if (err == ENOSPC || err == EDQUOT) {
    return unavailable_error(what + " is full (" + std::strerror(err) + "); retry after space is freed");
  }
  if (err == EROFS || err == EACCES || err == EPERM) {
    return unavailable_error(what + " cannot be written (" + std::strerror(err) + ")");
  }
  return unavailable_error(what + ": " + std::strerror(err));
}

bool is_temporary(const std::string& name) { return name.find(".tmp.") != std::string::npos; }

}  // namespace

Result<std::string> BlobStore::put(const std::string& bytes) const {
  const std::string id = sha256_hex(bytes);
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return write_error("blob store " + dir_, ec.value());
  const fs::path path = fs::path(dir_) / id;
  if (fs::exists(path, ec)) {
    fs::last_write_time(path, fs::file_time_type::clock::now(), ec);  // retention counts from the last use
    return id;
  }
  LTX_RETURN_IF_ERROR(write_file_atomically(path.string(), bytes, "blob store " + dir_));
  return id;
}

Status write_file_atomically(const std::string& path, const std::string& bytes, const std::string& what) {
  static std::atomic<uint64_t> serial{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(serial++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return write_error(what, errno);
  int err = 0;
  for (size_t done = 0; done < bytes.size() && err == 0;) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno != EINTR) err = errno;
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    return write_error(what, err);
  }
  return Status();
}

size_t BlobStore::remove_temporaries() const {
  size_t removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (is_temporary(it->path().filename().string()) && fs::remove(it->path(), ec)) ++removed;
  }
  return removed;
}

BlobStore::Usage BlobStore::prune(int64_t max_bytes, int64_t max_age_s) const {
  struct Blob {
    fs::path path;
    fs::file_time_type written;
    int64_t bytes;
  };
  std::vector<Blob> blobs;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (!valid_id(it->path().filename().string())) continue;
    std::error_code e2;
    const auto size = fs::file_size(it->path(), e2);
    const auto written = fs::last_write_time(it->path(), e2);
    if (!e2) blobs.push_back({it->path(), written, static_cast<int64_t>(size)});
  }
  std::sort(blobs.begin(), blobs.end(), [](const Blob& a, const Blob& b) { return a.written < b.written; });
  Usage u;
  for (const auto& b : blobs) u.bytes += b.bytes;
  u.files = static_cast<int64_t>(blobs.size());
  const auto now = fs::file_time_type::clock::now();
  for (const auto& b : blobs) {
    const bool too_old = max_age_s > 0 && now - b.written > std::chrono::seconds(max_age_s);
    const bool too_much = max_bytes > 0 && u.bytes > max_bytes;
    if (!too_old && !too_much) continue;
    std::error_code e2;
    if (!fs::remove(b.path, e2)) continue;
    u.bytes -= b.bytes;
    u.files -= 1;
    u.pruned_bytes += b.bytes;
    u.pruned_files += 1;
  }
  return u;
}

Result<std::string> BlobStore::get(const std::string& id) const {
  if (!valid_id(id)) return invalid_argument_error("state: blob id '" + id.substr(0, 80) + "' is not a SHA-256 hex id");
  const fs::path path = fs::path(dir_) / id;
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found_error("state: blob " + id + " is not in the blob store");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (sha256_hex(bytes) != id) return invalid_argument_error("state: blob " + id + " does not match its id (corrupt)");
  return bytes;
}

Result<std::string> to_json(const ContinuationState& s, const StateModelInfo& model, const BlobStore* store,
                            size_t inline_limit) {
  NamedTensors tensors = {{"text.embeddings", s.text_embeddings.cpu()}, {"text.mask", s.text_mask.cpu()}};
  for (const auto& [index, latents] : s.window) {
    tensors.emplace_back("window." + std::to_string(index) + ".latents", latents.cpu());
  }
  if (s.decode_context.defined()) tensors.emplace_back("decode.context", s.decode_context.cpu());
  for (const auto& [index, latents] : s.audio_window) {
    tensors.emplace_back("audio." + std::to_string(index) + ".latents", latents.cpu());
  }
  if (s.audio_context.defined()) tensors.emplace_back("audio.context", s.audio_context.cpu());
  LTX_ASSIGN_OR_RETURN(std::string bytes, serialize_safetensors(tensors));
  json t = {{"encoding", "safetensors"}, {"bytes", bytes.size()}};
  if (bytes.size() <= inline_limit || store == nullptr) {
    t["sha256"] = sha256_hex(bytes);
    t["inline"] = base64_encode(bytes);
  } else {
    LTX_ASSIGN_OR_RETURN(std::string id, store->put(bytes));
    t["blob"] = id;
  }
  json doc = {{"kind", kStreamStateKind},
              {"schema_version", kStreamStateVersion},
              {"session", {{"last_chunk", s.last_chunk}, {"next_chunk", s.last_chunk + 1}, {"base_frame", s.base_frame}}},
              {"settings", settings_to_json(s.settings, model.geometry.makes_sound())},
              {"model", {{"latent_channels", model.latent_channels}, {"caption_channels", model.caption_channels}}},
              {"tensors", t}};
  json frames = json::array();
  for (const auto& png : s.trailing_frames_png) frames.push_back(base64_encode(png));
  doc["trailing_frames_png"] = frames;
  return doc.dump();
}

Result<ContinuationState> from_json(const std::string& text, const StateModelInfo& model, const BlobStore* store) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return invalid_argument_error("state: not a JSON object");
  std::string kind;
  LTX_RETURN_IF_ERROR(field(doc, "", "kind", &kind));
  if (kind != kStreamStateKind) return invalid_argument_error("state: kind '" + kind + "' is not " + kStreamStateKind);
  int version = 0;
  LTX_RETURN_IF_ERROR(field(doc, "", "schema_version", &version));
  if (version != kStreamStateVersion) {
    return invalid_argument_error("state: schema_version " + std::to_string(version) + " is not supported (this build reads " +
                                  std::to_string(kStreamStateVersion) + ")");
  }
  ContinuationState s;
  for (const char* obj : {"session", "settings", "model", "tensors"}) {
    if (!doc.contains(obj) || !doc[obj].is_object()) return invalid_argument_error(std::string("state: missing object '") + obj + "'");
  }
  const json& ss = doc["session"];
  LTX_RETURN_IF_ERROR(field(ss, "session.", "last_chunk", &s.last_chunk));
  LTX_RETURN_IF_ERROR(field(ss, "session.", "base_frame", &s.base_frame));
  const json& st = doc["settings"];
  StreamSettings& p = s.settings;
  Status read;
  p = default_request(model.geometry);
  for_each_param(p, [&](const char* name, auto& v, unsigned uses) {
    if (read.ok() && takes_param(uses, kStreamParam, model.geometry.makes_sound())) read = field(st, "settings.", name, &v);
  });
  LTX_RETURN_IF_ERROR(read);
  LTX_RETURN_IF_ERROR(validate_stream_settings(p, model.geometry).with_context("state settings"));
  if (s.last_chunk < 0) return invalid_argument_error("state: session.last_chunk must be >= 0 (export after a chunk)");
  {
    // The cache's position 0: the oldest cached chunk's first latent frame
    // (a sink keeps chunk 0, so 0).
    const int64_t oldest_chunk = std::max<int64_t>(0, s.last_chunk - p.window_chunks + 1);
    const int64_t expected = p.sink ? 0 : oldest_chunk * p.chunk_frames;
    if (s.base_frame != expected && !model.geometry.makes_sound()) {
      return invalid_argument_error("state: session.base_frame is " + std::to_string(s.base_frame) + "; after chunk " +
                                    std::to_string(s.last_chunk) + " with these settings it is " + std::to_string(expected));
    }
    if (model.geometry.makes_sound() && s.base_frame != 0) {
      return invalid_argument_error("state: session.base_frame must be 0 (LTX-2 streams keep absolute positions)");
    }
  }
  int64_t lc = 0, cc = 0;
  LTX_RETURN_IF_ERROR(field(doc["model"], "model.", "latent_channels", &lc));
  LTX_RETURN_IF_ERROR(field(doc["model"], "model.", "caption_channels", &cc));
  if (lc != model.latent_channels || cc != model.caption_channels) {
    return invalid_argument_error("state: made by a model with " + std::to_string(lc) + " latent / " + std::to_string(cc) +
                                  " caption channels; this model has " + std::to_string(model.latent_channels) + " / " +
                                  std::to_string(model.caption_channels));
  }

  const json& tj = doc["tensors"];
  std::string encoding;
  int64_t declared = 0;
  LTX_RETURN_IF_ERROR(field(tj, "tensors.", "encoding", &encoding));
  LTX_RETURN_IF_ERROR(field(tj, "tensors.", "bytes", &declared));
  if (encoding != "safetensors") return invalid_argument_error("state: tensors.encoding '" + encoding + "' is not safetensors");
  std::string bytes;
  if (tj.contains("inline")) {
    std::string b64, sum;
    LTX_RETURN_IF_ERROR(field(tj, "tensors.", "inline", &b64));
    LTX_RETURN_IF_ERROR(field(tj, "tensors.", "sha256", &sum));
    auto decoded = base64_decode(b64);
    if (!decoded.ok()) return invalid_argument_error("state: tensors.inline: " + decoded.status().message());
    bytes = std::move(*decoded);
    if (sha256_hex(bytes) != sum) {
      return invalid_argument_error("state: tensors.inline does not match tensors.sha256 (the document was changed or damaged)");
    }
  } else if (tj.contains("blob")) {
    std::string id;
    LTX_RETURN_IF_ERROR(field(tj, "tensors.", "blob", &id));
    if (store == nullptr) return failed_precondition_error("state: tensors are in a blob store, and none is configured");
    auto blob = store->get(id);
    if (!blob.ok() && blob.status().code() == StatusCode::kNotFound) {
      return invalid_argument_error("state: tensors.blob " + id + " is not in this server's blob store");
    }
    LTX_ASSIGN_OR_RETURN(bytes, std::move(blob));
  } else {
    return invalid_argument_error("state: tensors needs 'inline' or 'blob'");
  }
  if (static_cast<int64_t>(bytes.size()) != declared) {
    return invalid_argument_error("state: tensors.bytes says " + std::to_string(declared) + ", the data has " +
                                  std::to_string(bytes.size()));
  }
  LTX_ASSIGN_OR_RETURN(auto file, SafetensorsFile::from_bytes(std::move(bytes), "state tensors"));
  const bool cfg = p.guidance_scale > 1.0;
  const int64_t batch = cfg ? 2 : 1;
  LTX_ASSIGN_OR_RETURN(s.text_embeddings, file->tensor("text.embeddings"));
  LTX_ASSIGN_OR_RETURN(s.text_mask, file->tensor("text.mask"));
  s.text_embeddings = s.text_embeddings.clone();
  s.text_mask = s.text_mask.clone();
  if (s.text_embeddings.dim() != 3) return invalid_argument_error("state: text.embeddings must be [B, L, D]");
  if (s.text_embeddings.size(1) < 1) return invalid_argument_error("state: text.embeddings holds no tokens");
  if (!at::isFloatingType(s.text_embeddings.scalar_type()) || !at::isfinite(s.text_embeddings).all().item<bool>()) {
    return invalid_argument_error("state: tensor 'text.embeddings' must hold finite floats");
  }
  LTX_RETURN_IF_ERROR(check_shape(s.text_embeddings, {batch, s.text_embeddings.size(1), model.caption_channels}, "text.embeddings"));
  LTX_RETURN_IF_ERROR(check_shape(s.text_mask, {batch, s.text_embeddings.size(1)}, "text.mask"));
  if (s.text_mask.scalar_type() != at::kLong || (s.text_mask.numel() && (s.text_mask.min().item<int64_t>() < 0 || s.text_mask.max().item<int64_t>() > 1))) {
    return invalid_argument_error("state: text.mask must be int64 zeros and ones");
  }
  if ((s.text_mask.sum(1) < 1).any().item<bool>()) {
    return invalid_argument_error("state: text.mask marks no token of a prompt (an empty text sequence)");
  }
  const int64_t tokens = p.chunk_frames * (p.height / model.geometry.spatial_compression) * (p.width / model.geometry.spatial_compression);
  const int64_t oldest = std::max<int64_t>(0, s.last_chunk - p.window_chunks + 1);
  for (const auto& name : file->names()) {
    if (name.rfind("window.", 0) != 0) continue;
    const std::string middle = name.substr(7, name.size() - 7 - 8);
    if (name.size() < 16 || name.substr(name.size() - 8) != ".latents" || middle.empty() ||
        middle.find_first_not_of("0123456789") != std::string::npos || middle.size() > 9) {
      return invalid_argument_error("state: unexpected tensor '" + name + "'");
    }
    const int64_t index = std::stoll(middle);
    const bool sink_chunk = p.sink && index == 0;
    if (index > s.last_chunk || (index < oldest && !sink_chunk)) {
      return invalid_argument_error("state: window chunk " + std::to_string(index) + " lies outside the cached window");
    }
    LTX_ASSIGN_OR_RETURN(at::Tensor lat, file->tensor(name));
    LTX_RETURN_IF_ERROR(check_shape(lat, {1, tokens, model.latent_channels}, name));
    if (!at::isFloatingType(lat.scalar_type()) || !at::isfinite(lat).all().item<bool>()) {
      return invalid_argument_error("state: tensor '" + name + "' must hold finite floats");
    }
    s.window[index] = lat.to(at::kFloat).clone();
  }
  for (int64_t i = oldest; i <= s.last_chunk; ++i) {
    if (!s.window.count(i)) return invalid_argument_error("state: the window lacks chunk " + std::to_string(i));
  }
  if (file->contains("decode.context")) {
    LTX_ASSIGN_OR_RETURN(at::Tensor ctx, file->tensor("decode.context"));
    if (ctx.dim() != 5 || ctx.size(2) < 1 || ctx.size(2) > p.decode_context) {
      return invalid_argument_error("state: decode.context must be [1, C, k, H, W] with 1 <= k <= decode_context");
    }
    LTX_RETURN_IF_ERROR(check_shape(ctx, {1, model.latent_channels, ctx.size(2), p.height / model.geometry.spatial_compression,
                                               p.width / model.geometry.spatial_compression}, "decode.context"));
    if (!at::isFloatingType(ctx.scalar_type()) || !at::isfinite(ctx).all().item<bool>()) {
      return invalid_argument_error("state: tensor 'decode.context' must hold finite floats");
    }
    s.decode_context = ctx.to(at::kFloat).clone();
  }
  if (model.geometry.makes_sound()) {
    const ModelGeometry& g = model.geometry;
    for (const auto& [index, unused] : s.window) {
      const std::string name = "audio." + std::to_string(index) + ".latents";
      if (!file->contains(name)) return invalid_argument_error("state: the window lacks tensor '" + name + "'");
      LTX_ASSIGN_OR_RETURN(at::Tensor lat, file->tensor(name));
      const int64_t frames = g.audio_frame_at(g.chunk_first_frame(p.chunk_frames, index + 1), p.fps) -
                             g.audio_frame_at(g.chunk_first_frame(p.chunk_frames, index), p.fps);
      LTX_RETURN_IF_ERROR(check_shape(lat, {1, frames, g.audio_token_channels}, name));
      if (!at::isFloatingType(lat.scalar_type()) || !at::isfinite(lat).all().item<bool>()) {
        return invalid_argument_error("state: tensor '" + name + "' must hold finite floats");
      }
      s.audio_window[index] = lat.to(at::kFloat).clone();
    }
    if (file->contains("audio.context")) {
      LTX_ASSIGN_OR_RETURN(at::Tensor ctx, file->tensor("audio.context"));
      if (ctx.dim() != 4 || ctx.size(0) != 1 || ctx.size(2) < 1 || ctx.size(1) * ctx.size(3) != g.audio_token_channels ||
          !at::isFloatingType(ctx.scalar_type()) || !at::isfinite(ctx).all().item<bool>()) {
        return invalid_argument_error("state: audio.context must be finite floats [1, C, k, M] with C * M = " +
                                      std::to_string(g.audio_token_channels));
      }
      s.audio_context = ctx.to(at::kFloat).clone();
    }
  }
  for (const auto& name : file->names()) {
    if (name.rfind("audio.", 0) == 0 && !model.geometry.makes_sound()) {
      return invalid_argument_error("state: tensor '" + name + "' is sound, and this model makes none");
    }
  }
  if (doc.contains("trailing_frames_png")) {
    if (!doc["trailing_frames_png"].is_array()) return invalid_argument_error("state: trailing_frames_png must be a list");
    for (const auto& f : doc["trailing_frames_png"]) {
      if (!f.is_string()) return invalid_argument_error("state: trailing_frames_png holds a non-string");
      LTX_ASSIGN_OR_RETURN(std::string png, base64_decode(f.get<std::string>()));
      s.trailing_frames_png.push_back(std::move(png));
    }
  }
  return s;
}

}  // namespace ltx::pipeline
