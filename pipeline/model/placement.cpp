#include "pipeline/model/placement.h"

#include <cmath>
#include <stdexcept>

#include <ATen/Context.h>

#include "common/check.h"

namespace ltx::pipeline {
namespace {

bool valid_device(const std::string& d) { return d.empty() || d == "auto" || d == "cpu" || d == "cuda"; }

Status check_dtype(const std::string& field, const std::string& value) {
  if (value.empty()) return Status();
  auto parsed = parse_dtype(value);
  if (!parsed.ok()) return invalid_argument_error(field + ": " + parsed.status().message());
  return Status();
}

at::ScalarType default_dtype(const at::Device& device) { return device.is_cuda() ? at::kBFloat16 : at::kFloat; }

// One component on rank 0's side (text encoder, decoders).
Result<Placement> resolve_component(const std::string& field, const std::string& device, const std::string& dtype,
                                    const std::string& all_dtype, const at::Device& group_device) {
  Placement p;
  if (device.empty() || device == "auto") {
    p.device = group_device;
  } else if (device == "cpu") {
    p.device = at::Device(at::kCPU);
  } else {  // cuda
    if (group_device.is_cuda()) {
      p.device = group_device;
    } else if (at::hasCUDA()) {
      p.device = at::Device(at::kCUDA, 0);
    } else {
      return failed_precondition_error(field + " cuda: this machine has no CUDA device (or this libtorch has no CUDA)");
    }
  }
  const std::string& name = !dtype.empty() ? dtype : all_dtype;
  if (name.empty()) {
    p.dtype = default_dtype(p.device);
  } else {
    LTX_ASSIGN_OR_RETURN(p.dtype, parse_dtype(name));
  }
  return p;
}

}  // namespace

std::string Placement::to_string() const {
  return device.str() + " " + dtype_name(dtype) + (step_graphs ? " step-graphs" : "") + (shared ? " shared" : "");
}

Result<at::ScalarType> parse_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32" || name == "float") return at::kFloat;
  if (name == "bf16" || name == "bfloat16") return at::kBFloat16;
  if (name == "fp16" || name == "float16" || name == "half") return at::kHalf;
  return invalid_argument_error("dtype must be fp32, bf16 or fp16, got '" + name + "'");
}

const char* dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "fp32";
    case at::kBFloat16: return "bf16";
    case at::kHalf: return "fp16";
    default: return c10::toString(dtype);
  }
}

namespace {

// A positive (or, with `zero_ok`, non-negative) finite number, or nullopt for "".
Result<std::optional<double>> parse_figure(const char* flag, const std::string& text, bool zero_ok) {
  if (text.empty()) return std::optional<double>();
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !std::isfinite(v) || v < 0 || (!zero_ok && v == 0)) {
    return invalid_argument_error(std::string(flag) + " must be a " + (zero_ok ? "non-negative" : "positive") +
                                  " number, got '" + text + "'");
  }
  return std::optional<double>(v);
}

}  // namespace

Status PlacementChoice::validate() const {
  LTX_RETURN_IF_ERROR(check_dtype("--dtype", dtype));
  LTX_RETURN_IF_ERROR(check_dtype("--text-dtype", text_dtype));
  LTX_RETURN_IF_ERROR(check_dtype("--denoiser-dtype", denoiser_dtype));
  LTX_RETURN_IF_ERROR(check_dtype("--decoder-dtype", decoder_dtype));
  if (!valid_device(text_device)) {
    return invalid_argument_error("--text-device must be auto, cpu or cuda, got '" + text_device + "'");
  }
  if (!(step_graphs.empty() || step_graphs == "auto" || step_graphs == "on" || step_graphs == "off")) {
    return invalid_argument_error("--step-graphs must be auto, on or off, got '" + step_graphs + "'");
  }
  for (const auto& [flag, value] : {std::pair<const char*, const std::string*>{"--decode-parallel", &decode_parallel},
                                    {"--guidance-parallel", &guidance_parallel}}) {
    if (!(value->empty() || *value == "auto" || *value == "on" || *value == "off")) {
      return invalid_argument_error(std::string(flag) + " must be auto, on or off, got '" + *value + "'");
    }
  }
  LTX_RETURN_IF_ERROR(link_figures().status());
  if (!ring_size.empty() && ring_size != "auto") {
    auto r = parse_figure("--ring-size", ring_size, false);
    if (!r.ok() || !r->has_value() || **r != static_cast<int>(**r) || **r > 65536) {
      return invalid_argument_error("--ring-size must be auto or a positive whole number, got '" + ring_size + "'");
    }
  }
  if (!valid_device(decoder_device)) {
    return invalid_argument_error("--decoder-device must be auto, cpu or cuda, got '" + decoder_device + "'");
  }
  return Status();
}


Result<std::optional<parallel::LinkFigures>> PlacementChoice::link_figures() const {
  LTX_ASSIGN_OR_RETURN(auto bw, parse_figure("--link-bandwidth-gbps", link_bandwidth_gbps, false));
  LTX_ASSIGN_OR_RETURN(auto lat, parse_figure("--link-latency-us", link_latency_us, true));
  if (!bw && !lat) return std::optional<parallel::LinkFigures>();
  if (!bw || !lat) {
    return invalid_argument_error("--link-bandwidth-gbps and --link-latency-us go together (the link the scaling "
                                  "model assumes); give both or neither");
  }
  return std::optional<parallel::LinkFigures>(parallel::LinkFigures{*bw, *lat});
}

parallel::LinkFigures StepPlanning::link_for(const std::string& backend) const {
  return link ? *link : parallel::LinkFigures::for_backend(backend);
}

Result<ModelPlacement> ModelPlacement::resolve(const PlacementChoice& c, const at::Device& group_device) {
  LTX_RETURN_IF_ERROR(c.validate());
  ModelPlacement p;
  LTX_ASSIGN_OR_RETURN(p.text_encoder, resolve_component("--text-device", c.text_device, c.text_dtype, c.dtype, group_device));
  LTX_ASSIGN_OR_RETURN(p.decoder, resolve_component("--decoder-device", c.decoder_device, c.decoder_dtype, c.dtype, group_device));
  LTX_ASSIGN_OR_RETURN(p.denoiser, resolve_component("denoiser", "auto", c.denoiser_dtype, c.dtype, group_device));
  p.decoder.shared = c.decode_parallel == "on" ||
                     ((c.decode_parallel.empty() || c.decode_parallel == "auto") && p.decoder.device.is_cuda());
  LTX_ASSIGN_OR_RETURN(p.planning.guidance, parallel::parse_guidance_parallel(c.guidance_parallel));
  LTX_ASSIGN_OR_RETURN(p.planning.link, c.link_figures());
  p.planning.ring_size = c.ring_size.empty() || c.ring_size == "auto" ? 0 : std::stoi(c.ring_size);
  p.denoiser.step_graphs = c.step_graphs == "on" || ((c.step_graphs.empty() || c.step_graphs == "auto") &&
                                                     p.denoiser.device.is_cuda());
  return p;
}

ModelPlacement ModelPlacement::defaults(const at::Device& group_device) {
  auto p = resolve(PlacementChoice{}, group_device);  // "auto" everywhere cannot fail
  LTX_INTERNAL_ASSERT(p.ok(), p.status().to_string());
  return *p;
}

std::string ModelPlacement::to_string() const {
  return "text " + text_encoder.to_string() + ", denoiser " + denoiser.to_string() + ", decoder " + decoder.to_string();
}

bool ModelPlacement::uses_cuda() const {
  return text_encoder.device.is_cuda() || denoiser.device.is_cuda() || decoder.device.is_cuda();
}

void allow_tf32_on_cuda() {
  at::globalContext().setAllowTF32CuBLAS(true);
  at::globalContext().setAllowTF32CuDNN(true);
}

}  // namespace ltx::pipeline
