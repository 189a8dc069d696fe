#include "pipeline/ltx2/ltx2_family.h"

#include "pipeline/ltx2/ltx2_small_model.h"

namespace ltx::pipeline {
namespace {

class Ltx2Family final : public ModelFamily {
 public:
  std::string name() const override { return "ltx2"; }
  std::string description() const override { return "LTX-2 / LTX-2.3 (Gemma 3 text encoder, audio and video)"; }

  bool recognizes(const ModelSource& s) const override {
    if (s.folder) {
      return s.class_name == "LTX2Pipeline" || s.class_name == "LTX2ImageToVideoPipeline" ||
             s.class_name == "LTX2ConditionPipeline";
    }
    return s.has_tensor_containing("av_ca_a2v_gate_adaln_single") ||
           s.has_tensor_containing("audio_embeddings_connector.") ||
           s.has_tensor_containing("audio_vae.per_channel_statistics");
  }

  Result<Model> load(const ModelSource& s, dist::Communicator&, const ModelPlacement&) const override {
    return unimplemented_error(
        s.path + ": an LTX-2 model; its components load and match the reference (ltx-parity, ltx-dit-bench), "
                 "but generating and serving it (the two-stream request path and video with sound in the MP4) are "
                 "not built yet (docs/status.md)");
  }

  Status write_builtin(const std::string& dir) const override { return write_ltx2_small_model(dir, 0); }
  std::string builtin_version() const override { return kLtx2SmallModelVersion; }
};

}  // namespace

const ModelFamily& ltx2_family() {
  static const Ltx2Family family;
  return family;
}

}  // namespace ltx::pipeline
