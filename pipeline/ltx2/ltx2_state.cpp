#include "pipeline/ltx2/ltx2_state.h"

#include <nlohmann/json.hpp>

#include "pipeline/io/safetensors.h"

namespace ltx::pipeline {
namespace {

using nlohmann::json;

Status bad(const std::string& field, const std::string& why) {
  return invalid_argument_error(field + " " + why);
}

// FastVideo's multi-frame blob: [u32 BE count] then count x ([u32 BE length][PNG]).
std::string pack_frames(const std::vector<std::string>& pngs) {
  std::string out;
  auto u32 = [&out](uint32_t v) {
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  u32(static_cast<uint32_t>(pngs.size()));
  for (const auto& p : pngs) {
    u32(static_cast<uint32_t>(p.size()));
    out += p;
  }
  return out;
}

Result<std::vector<std::string>> unpack_frames(const std::string& blob) {
  auto u32 = [&blob](size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(blob[at + i]);
    return v;
  };
  if (blob.size() < 4) return bad("payload.video.blob_id", "names a frame blob shorter than its count");
  const uint32_t count = u32(0);
  if (count > (blob.size() - 4) / 4) return bad("payload.video.blob_id", "names a frame blob whose count is too large");
  std::vector<std::string> out;
  size_t at = 4;
  for (uint32_t i = 0; i < count; ++i) {
    if (at + 4 > blob.size()) return bad("payload.video.blob_id", "names a truncated frame blob");
    const uint32_t n = u32(at);
    at += 4;
    if (n > blob.size() - at) return bad("payload.video.blob_id", "names a truncated frame blob");
    out.push_back(blob.substr(at, n));
    at += n;
  }
  return out;
}

bool is_png(const std::string& bytes) { return bytes.size() >= 8 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0; }

}  // namespace

Result<std::string> ltx2_state_to_json(const ContinuationState& state, const at::Tensor& audio_latents,
                                       int64_t sample_rate, const StateModelInfo& model, const BlobStore* store,
                                       size_t inline_limit) {
  LTX_ASSIGN_OR_RETURN(std::string project, to_json(state, model, store, inline_limit));
  json payload = {{"schema_version", 1},
                  {"segment_index", state.last_chunk},
                  {"video_conditioning_frame_idx", 0},
                  {"video_conditioning_strength", 1.0},
                  {"audio_conditioning_num_frames", audio_latents.defined() ? audio_latents.size(2) : 0},
                  {"audio_conditioning_strength", 0.0},  // the carried audio is kept as it is
                  {"video_position_offset_sec", 0.0},
                  {"audio_sample_rate", sample_rate},
                  {"metadata", {{kLtx2StateMetadataKey, json::parse(project)}}}};
  const size_t limit = std::min(inline_limit, kLtx2InlineBytes);
  size_t frame_bytes = 0;
  for (const auto& p : state.trailing_frames_png) frame_bytes += p.size();
  if (!state.trailing_frames_png.empty()) {
    if (store != nullptr && frame_bytes > limit) {
      LTX_ASSIGN_OR_RETURN(std::string id, store->put(pack_frames(state.trailing_frames_png)));
      payload["video"] = {{"blob_id", id}, {"frame_count", state.trailing_frames_png.size()}};
    } else {
      json frames = json::array();
      for (const auto& p : state.trailing_frames_png) frames.push_back(base64_encode(p));
      payload["video"] = {{"frames_b64", frames}};
    }
  }
  if (audio_latents.defined()) {
    LTX_ASSIGN_OR_RETURN(std::string bytes, serialize_safetensors({{"t", audio_latents.cpu().contiguous()}}));
    if (store != nullptr && bytes.size() > limit) {
      LTX_ASSIGN_OR_RETURN(std::string id, store->put(bytes));
      payload["audio"] = {{"blob_id", id}};
    } else {
      payload["audio"] = {{"safetensors_b64", base64_encode(bytes)}};
    }
  }
  return json({{"kind", kLtx2StateKind}, {"payload", payload}}).dump();
}

Result<ContinuationState> ltx2_state_from_json(const std::string& text, const StateModelInfo& model,
                                               const BlobStore* store) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return invalid_argument_error("state is not a JSON object");
  if (!doc.contains("kind") || !doc["kind"].is_string()) return bad("kind", "must be the string \"ltx2.v1\"");
  if (doc["kind"] != kLtx2StateKind) {
    return bad("kind", "is '" + doc["kind"].get<std::string>() + "'; this model's streams resume from \"ltx2.v1\"");
  }
  if (!doc.contains("payload") || !doc["payload"].is_object()) return bad("payload", "must be an object");
  const json& p = doc["payload"];
  // Every public field: absent takes the spec's default, present must have its type and range.
  auto integer = [&](const char* key, int64_t def, int64_t lo, int64_t* out) -> Status {
    *out = def;
    if (!p.contains(key)) return Status();
    if (!p[key].is_number_integer()) return bad(std::string("payload.") + key, "must be an integer");
    *out = p[key].get<int64_t>();
    if (*out < lo) return bad(std::string("payload.") + key, "must be >= " + std::to_string(lo));
    return Status();
  };
  auto number = [&](const char* key, double def, double lo, double hi, double* out) -> Status {
    *out = def;
    if (!p.contains(key)) return Status();
    if (!p[key].is_number()) return bad(std::string("payload.") + key, "must be a number");
    *out = p[key].get<double>();
    if (!(*out >= lo && *out <= hi)) {
      return bad(std::string("payload.") + key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return Status();
  };
  int64_t version = 0, segment = 0, frame_idx = 0, audio_frames = 0, rate = 0;
  double vstrength = 0, astrength = 0, offset = 0;
  LTX_RETURN_IF_ERROR(integer("schema_version", 1, 0, &version));
  if (version != 1) return bad("payload.schema_version", "is " + std::to_string(version) + "; only 1 is read");
  LTX_RETURN_IF_ERROR(integer("segment_index", 0, 0, &segment));
  LTX_RETURN_IF_ERROR(integer("video_conditioning_frame_idx", 0, 0, &frame_idx));
  LTX_RETURN_IF_ERROR(number("video_conditioning_strength", 1.0, 0.0, 1.0, &vstrength));
  LTX_RETURN_IF_ERROR(integer("audio_conditioning_num_frames", 0, 0, &audio_frames));
  LTX_RETURN_IF_ERROR(number("audio_conditioning_strength", 1.0, 0.0, 1.0, &astrength));
  LTX_RETURN_IF_ERROR(number("video_position_offset_sec", 0.0, -1e6, 1e6, &offset));
  LTX_RETURN_IF_ERROR(integer("audio_sample_rate", 0, 1, &rate));
  if (p.contains("metadata") && !p["metadata"].is_object()) return bad("payload.metadata", "must be an object");

  std::vector<std::string> frames;
  if (p.contains("video")) {
    const json& v = p["video"];
    if (!v.is_object()) return bad("payload.video", "must be an object");
    if (v.contains("frames_b64")) {
      if (!v["frames_b64"].is_array()) return bad("payload.video.frames_b64", "must be a list of base64 PNG strings");
      for (size_t i = 0; i < v["frames_b64"].size(); ++i) {
        const json& f = v["frames_b64"][i];
        const std::string where = "payload.video.frames_b64[" + std::to_string(i) + "]";
        if (!f.is_string()) return bad(where, "must be a base64 string");
        auto png = base64_decode(f.get<std::string>());
        if (!png.ok()) return bad(where, "is not valid base64");
        if (!is_png(*png)) return bad(where, "is not a PNG image");
        frames.push_back(std::move(*png));
      }
    } else if (v.contains("blob_id")) {
      if (!v["blob_id"].is_string() || !BlobStore::valid_id(v["blob_id"].get<std::string>())) {
        return bad("payload.video.blob_id", "must be a blob id (64 hex digits)");
      }
      if (!v.contains("frame_count") || !v["frame_count"].is_number_integer()) {
        return bad("payload.video.frame_count", "must be an integer with blob_id");
      }
      if (store == nullptr) return failed_precondition_error("payload.video.blob_id: no blob store is configured here");
      LTX_ASSIGN_OR_RETURN(std::string blob, store->get(v["blob_id"].get<std::string>()));
      LTX_ASSIGN_OR_RETURN(frames, unpack_frames(blob));
      if (static_cast<int64_t>(frames.size()) != v["frame_count"].get<int64_t>()) {
        return bad("payload.video.frame_count", "differs from the frames in the blob");
      }
      for (const auto& f : frames) {
        if (!is_png(f)) return bad("payload.video.blob_id", "names a blob holding a non-PNG frame");
      }
    } else {
      return bad("payload.video", "needs frames_b64 or blob_id");
    }
  }
  if (p.contains("audio")) {
    const json& a = p["audio"];
    if (!a.is_object()) return bad("payload.audio", "must be an object");
    std::string bytes;
    if (a.contains("safetensors_b64")) {
      if (!a["safetensors_b64"].is_string()) return bad("payload.audio.safetensors_b64", "must be a base64 string");
      auto decoded = base64_decode(a["safetensors_b64"].get<std::string>());
      if (!decoded.ok()) return bad("payload.audio.safetensors_b64", "is not valid base64");
      bytes = std::move(*decoded);
    } else if (a.contains("blob_id")) {
      if (!a["blob_id"].is_string() || !BlobStore::valid_id(a["blob_id"].get<std::string>())) {
        return bad("payload.audio.blob_id", "must be a blob id (64 hex digits)");
      }
      if (store == nullptr) return failed_precondition_error("payload.audio.blob_id: no blob store is configured here");
      LTX_ASSIGN_OR_RETURN(bytes, store->get(a["blob_id"].get<std::string>()));
    } else {
      return bad("payload.audio", "needs safetensors_b64 or blob_id");
    }
    auto file = SafetensorsFile::from_bytes(std::move(bytes), "payload.audio");
    if (!file.ok()) return bad("payload.audio", "is not a safetensors file: " + file.status().message());
    if (!(*file)->contains("t")) return bad("payload.audio", "must hold the tensor \"t\"");
    auto t = (*file)->tensor("t");
    if (!t.ok() || t->dim() != 4 || t->size(0) < 1) return bad("payload.audio", "tensor \"t\" must be [B, C, T, mel]");
    if (t->size(2) < audio_frames) {
      return bad("payload.audio_conditioning_num_frames", "exceeds the " + std::to_string(t->size(2)) +
                                                              " audio latent frames in payload.audio");
    }
  }

  // The project's exact resume data.
  if (!p.contains("metadata") || !p["metadata"].contains(kLtx2StateMetadataKey)) {
    return bad(std::string("payload.metadata.") + kLtx2StateMetadataKey,
               "is missing: this server resumes LTX-2 streams from its own ltx2.v1 documents only (continuing from "
               "another system's trailing frames needs the LTX-2 video VAE encoder, which is not built yet)");
  }
  const json& mine = p["metadata"][kLtx2StateMetadataKey];
  if (!mine.is_object()) return bad(std::string("payload.metadata.") + kLtx2StateMetadataKey, "must be an object");
  auto state = from_json(mine.dump(), model, store);
  if (!state.ok()) {
    return Status(state.status().code(),
                  std::string("payload.metadata.") + kLtx2StateMetadataKey + ": " + state.status().message());
  }
  if (state->last_chunk != segment) {
    return bad("payload.segment_index", "is " + std::to_string(segment) + ", the resume data's last chunk " +
                                            std::to_string(state->last_chunk));
  }
  if (state->audio_window.empty()) {
    return bad(std::string("payload.metadata.") + kLtx2StateMetadataKey, "holds no audio window (not an LTX-2 stream)");
  }
  state->trailing_frames_png = std::move(frames);
  return state;
}

}  // namespace ltx::pipeline
