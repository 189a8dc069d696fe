#include "pipeline/io/weight_loader.h"

#include "common/check.h"

namespace ltx::pipeline {

Result<at::Tensor> checked_convert(const std::string& source, const std::string& name,
                                   const at::Tensor& t, const std::vector<int64_t>& shape,
                                   at::ScalarType dtype, const at::Device& device) {
  if (t.sizes().vec() != shape) {
    return invalid_argument_error(source + ": tensor '" + name + "' has shape " + c10::str(t.sizes()) +
                                  ", expected " + c10::str(c10::IntArrayRef(shape)));
  }
  if (!at::isFloatingType(t.scalar_type())) {
    return invalid_argument_error(source + ": tensor '" + name + "' is not floating point");
  }
  return t.to(device, dtype);
}

Result<std::map<std::string, at::Tensor>> load_expected_tensors(
    const SafetensorsCheckpoint& ckpt, const std::vector<ExpectedTensor>& expected,
    const NameMapper& mapper, const std::string& model, at::ScalarType dtype,
    const at::Device& device) {
  std::map<std::string, const std::vector<int64_t>*> wanted;
  for (const auto& e : expected) wanted[e.name] = &e.shape;
  std::map<std::string, std::string> raw_of;  // canonical -> name in the file
  for (const std::string& raw : ckpt.names()) {
    auto canon = mapper(raw);
    if (!canon) continue;
    if (!wanted.count(*canon)) {
      return invalid_argument_error(ckpt.source() + ": unexpected tensor '" + raw + "' (not part of " +
                                    model + ")");
    }
    auto [it, inserted] = raw_of.emplace(*canon, raw);
    if (!inserted) {
      return invalid_argument_error(ckpt.source() + ": tensors '" + it->second + "' and '" + raw +
                                    "' are both '" + *canon + "'");
    }
  }
  std::map<std::string, at::Tensor> loaded;
  for (const auto& e : expected) {
    auto it = raw_of.find(e.name);
    if (it == raw_of.end()) {
      return invalid_argument_error(ckpt.source() + ": missing tensor '" + e.name + "' of " + model);
    }
    LTX_ASSIGN_OR_RETURN(at::Tensor view, ckpt.tensor(it->second));
    LTX_ASSIGN_OR_RETURN(loaded[e.name], checked_convert(ckpt.source(), it->second, view, e.shape, dtype, device));
    // Converted into memory of its own (another dtype or device): the file's
    // pages of this tensor go back, so a load holds one tensor's pages at a
    // time, never the whole file beside the weights (design rule 5). A
    // weight that stayed a view of the mapping keeps its pages.
    const bool copied = loaded[e.name].data_ptr() != view.data_ptr();
    view = at::Tensor();
    if (copied) ckpt.release_pages(it->second);
  }
  return loaded;
}

std::vector<at::Tensor> tensors_of(const std::map<std::string, at::Tensor>& loaded) {
  std::vector<at::Tensor> out;
  out.reserve(loaded.size());
  for (const auto& kv : loaded) out.push_back(kv.second);
  return out;
}

int64_t bytes_of(const std::vector<at::Tensor>& tensors) {
  int64_t n = 0;
  for (const auto& t : tensors) n += static_cast<int64_t>(t.nbytes());
  return n;
}

at::Tensor take_tensor(std::map<std::string, at::Tensor>& loaded, const std::string& name) {
  auto it = loaded.find(name);
  if (it == loaded.end()) return at::Tensor();
  at::Tensor t = std::move(it->second);
  loaded.erase(it);
  return t;
}

at::Tensor LinearWeights::operator()(const at::Tensor& x) const {
  if (exact_rows && x.device().is_cpu() && x.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat) {
    const at::Tensor b = bias.defined() ? bias.to(at::kDouble) : at::Tensor();
    return at::linear(x.to(at::kDouble), weight.to(at::kDouble), b.defined() ? c10::optional<at::Tensor>(b) : c10::nullopt)
        .to(at::kFloat);
  }
  return at::linear(x, weight, bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt);
}

LinearWeights LinearWeights::take(std::map<std::string, at::Tensor>& loaded, const std::string& prefix) {
  return {take_tensor(loaded, prefix + ".weight"), take_tensor(loaded, prefix + ".bias")};
}

}  // namespace ltx::pipeline
