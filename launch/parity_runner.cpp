#include "launch/parity_runner.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/check.h"
#include "pipeline/gemma3_encoder.h"
#include "pipeline/ltx_transformer.h"
#include "pipeline/t5_encoder.h"
#include "pipeline/model_config.h"
#include "pipeline/safetensors.h"

namespace ltx::launch {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

ParityResult compare(const std::string& name, const at::Tensor& got, const at::Tensor& want,
                     double tol_rel, double tol_abs) {
  at::Tensor a = got.to(at::kCPU).to(at::kDouble), b = want.to(at::kCPU).to(at::kDouble);
  LTX_CHECK(a.sizes() == b.sizes(), name, ": output shape ", a.sizes(), " differs from the reference ",
            b.sizes());
  ParityResult r;
  r.output = name;
  const double denom = b.norm().item<double>();
  const double num = (a - b).norm().item<double>();
  r.rel_l2 = denom > 0 ? num / denom : num;
  r.max_abs = a.numel() ? (a - b).abs().max().item<double>() : 0.0;
  if (!std::isfinite(r.rel_l2)) r.rel_l2 = INFINITY;
  r.tol_rel_l2 = tol_rel;
  r.tol_max_abs = tol_abs;
  return r;
}

Result<at::ScalarType> case_dtype(const json& c, const std::string& where) {
  std::string d = c.value("dtype", "float32");
  if (d == "float32") return at::kFloat;
  if (d == "bfloat16") return at::kBFloat16;
  if (d == "float16") return at::kHalf;
  return invalid_argument_error(where + ": unsupported dtype '" + d + "'");
}

// Only rows where `mask` [B, T] is 1 are compared (x is [..., B, T, D]).
at::Tensor select_real(const at::Tensor& x, const at::Tensor& mask) {
  at::Tensor keep = mask.to(at::kBool).to(x.device());
  if (x.dim() == 3) return x.index({keep});
  return x.index({at::indexing::Slice(), keep});
}

Result<std::vector<ParityResult>> run_gemma3_case(const fs::path& dir, at::ScalarType dtype) {
  LTX_ASSIGN_OR_RETURN(auto config, pipeline::load_gemma3_config((dir / "config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto weights, pipeline::SafetensorsCheckpoint::open((dir / "weights.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto io, pipeline::SafetensorsFile::open((dir / "io.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto model, pipeline::Gemma3TextEncoder::from_checkpoint(config, weights, dtype, at::kCPU));
  LTX_ASSIGN_OR_RETURN(at::Tensor ids, io->tensor("in.input_ids"));
  LTX_ASSIGN_OR_RETURN(at::Tensor mask, io->tensor("in.attention_mask"));
  auto out = model.encode(ids, mask, /*all_hidden_states=*/true);
  const bool fp32 = dtype == at::kFloat;
  std::vector<ParityResult> results;
  for (const char* suffix : {"", "_eager"}) {
    LTX_ASSIGN_OR_RETURN(at::Tensor last, io->tensor(std::string("out.last_hidden_state") + suffix));
    LTX_ASSIGN_OR_RETURN(at::Tensor all, io->tensor(std::string("out.hidden_states") + suffix));
    results.push_back(compare(std::string("out.last_hidden_state") + suffix, select_real(out.last_hidden_state, mask),
                              select_real(last, mask), fp32 ? 1e-5 : 3e-2, fp32 ? 1e-4 : 0));
    results.push_back(compare(std::string("out.hidden_states") + suffix,
                              select_real(at::stack(out.hidden_states), mask), select_real(all, mask),
                              fp32 ? 1e-5 : 3e-2, fp32 ? 1e-4 : 0));
  }
  return results;
}

Result<std::vector<ParityResult>> run_t5_case(const fs::path& dir, at::ScalarType dtype) {
  LTX_ASSIGN_OR_RETURN(auto config, pipeline::load_t5_config((dir / "config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto weights, pipeline::SafetensorsCheckpoint::open((dir / "weights.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto io, pipeline::SafetensorsFile::open((dir / "io.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto model, pipeline::T5Encoder::from_checkpoint(config, weights, dtype, at::kCPU));
  LTX_ASSIGN_OR_RETURN(at::Tensor ids, io->tensor("in.input_ids"));
  LTX_ASSIGN_OR_RETURN(at::Tensor mask, io->tensor("in.attention_mask"));
  LTX_ASSIGN_OR_RETURN(at::Tensor want, io->tensor("out.last_hidden_state"));
  const bool fp32 = dtype == at::kFloat;
  // The case's reference output covers every position (all keys are masked the same way).
  return std::vector<ParityResult>{compare("out.last_hidden_state", model.encode(ids, mask, true), want,
                                           fp32 ? 1e-5 : 3e-2, fp32 ? 1e-4 : 0)};
}

Result<std::vector<ParityResult>> run_transformer_case(const fs::path& dir, const json& c,
                                                       dist::Communicator& comm, at::ScalarType dtype) {
  LTX_ASSIGN_OR_RETURN(auto config, pipeline::load_transformer_config((dir / "config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto weights, pipeline::SafetensorsCheckpoint::open((dir / "weights.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto io, pipeline::SafetensorsFile::open((dir / "io.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto model, pipeline::LtxTransformer::from_checkpoint(config, weights, comm, dtype, comm.device()));

  const json& kw = c.at("kwargs");
  pipeline::LatentGrid grid{kw.at("num_frames").get<int64_t>(), kw.at("height").get<int64_t>(),
                            kw.at("width").get<int64_t>(), 0};
  pipeline::RopeSettings rope;
  auto scale = kw.at("rope_interpolation_scale");
  // (temporal compression / fps, spatial compression, spatial compression)
  rope.temporal_compression = 8;
  rope.frame_rate = 8.0 / scale.at(0).get<double>();
  rope.spatial_compression = scale.at(1).get<int64_t>();

  LTX_ASSIGN_OR_RETURN(at::Tensor hidden, io->tensor("in.hidden_states"));
  LTX_ASSIGN_OR_RETURN(at::Tensor text, io->tensor("in.encoder_hidden_states"));
  LTX_ASSIGN_OR_RETURN(at::Tensor mask, io->tensor("in.encoder_attention_mask"));
  LTX_ASSIGN_OR_RETURN(at::Tensor timestep, io->tensor("in.timestep"));
  LTX_ASSIGN_OR_RETURN(at::Tensor want, io->tensor("out.sample"));
  const at::Device dev = comm.device();
  auto cond = model.prepare_text(text.to(dev), mask.to(dev));
  at::Tensor got = model.forward_full(hidden.to(dev), timestep.to(dev), cond, grid, rope);
  const bool fp32 = dtype == at::kFloat;
  return std::vector<ParityResult>{compare("out.sample", got, want, fp32 ? 1e-5 : 2e-2, fp32 ? 1e-4 : 0)};
}

}  // namespace

bool ParityReport::pass() const {
  if (results.empty()) return false;
  for (const auto& r : results) {
    if (!r.pass()) return false;
  }
  return true;
}

std::string ParityReport::to_string() const {
  std::ostringstream os;
  os.precision(3);
  for (const auto& r : results) {
    os << std::scientific << case_name << " " << r.output << ": rel_l2=" << r.rel_l2
       << " (tol " << r.tol_rel_l2 << ") max_abs=" << r.max_abs;
    if (r.tol_max_abs > 0) os << " (tol " << r.tol_max_abs << ")";
    os << (r.pass() ? " PASS" : " FAIL") << "\n";
  }
  return os.str();
}

Result<ParityReport> run_parity_case(const std::string& case_dir, dist::Communicator& comm,
                                     const ParityOptions& options) {
  return [&]() -> Result<ParityReport> {
    try {
      const fs::path dir(case_dir);
      LTX_ASSIGN_OR_RETURN(std::string text, pipeline::read_text_file((dir / "case.json").string()));
      json c = json::parse(text, nullptr, false);
      if (c.is_discarded() || !c.is_object()) {
        return invalid_argument_error((dir / "case.json").string() + ": not a JSON object");
      }
      ParityReport report;
      report.case_name = c.value("case", dir.filename().string());
      report.call = c.value("call", "");
      LTX_ASSIGN_OR_RETURN(at::ScalarType case_type, case_dtype(c, (dir / "case.json").string()));
      const at::ScalarType dtype = options.dtype.value_or(case_type);
      if (report.call == "diffusers.LTXVideoTransformer3DModel(**config).forward") {
        LTX_ASSIGN_OR_RETURN(report.results, run_transformer_case(dir, c, comm, dtype));
      } else if (report.call.rfind("transformers.Gemma3TextModel", 0) == 0) {
        LTX_ASSIGN_OR_RETURN(report.results, run_gemma3_case(dir, dtype));
      } else if (report.call.rfind("transformers.T5EncoderModel", 0) == 0) {
        LTX_ASSIGN_OR_RETURN(report.results, run_t5_case(dir, dtype));
      } else {
        return unimplemented_error(case_dir + ": no runner yet for '" + report.call + "'");
      }
      return report;
    } catch (...) {
      return status_from_current_exception().with_context(case_dir);
    }
  }();
}

}  // namespace ltx::launch
