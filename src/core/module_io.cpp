// Module weights to and from safetensors by tensor name (core/module_io.h).
#include "vimo/core/module_io.h"

#include <filesystem>

#include "vimo/core/error.h"

namespace vimo::core {

NamedTensors module_weights(torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& p : module.named_parameters(true)) out.emplace_back(p.key(), p.value().detach());
  for (const auto& b : module.named_buffers(true)) out.emplace_back(b.key(), b.value().detach());
  return out;
}

void load_module_weights(torch::nn::Module& module, const std::string& path) {
  VIMO_CHECK(std::filesystem::exists(path), "weights file '" + path + "' does not exist");
  auto st = SafeTensors::open(path);
  torch::NoGradGuard ng;
  auto assign = [&](const std::string& name, torch::Tensor& dst) {
    VIMO_CHECK(st.contains(name), "'" + path + "' has no tensor '" + name +
                                      "': it was written by a different model; check the run directory");
    auto src = st.get(name);
    VIMO_CHECK(src.sizes() == dst.sizes(), "tensor '" + name + "' in '" + path + "' has shape " +
                                              c10::str(src.sizes()) + " but the model expects " +
                                              c10::str(dst.sizes()) + " (architecture keys differ?)");
    dst.copy_(src.to(dst.dtype()));
  };
  for (auto& p : module.named_parameters(true)) assign(p.key(), p.value());
  for (auto& b : module.named_buffers(true)) assign(b.key(), b.value());
}

}  // namespace vimo::core
