// A LibTorch module's weights as named tensors (parameters, then buffers), and loading them back
// from a safetensors file by name, every tensor required with its shape.
#pragma once
#include <torch/torch.h>

#include <string>

#include "vimo/core/tensor_io.h"

namespace vimo::core {

NamedTensors module_weights(torch::nn::Module& module);
// Reads `path` (a model.safetensors) into `module`; a missing tensor or a shape mismatch is an error
// naming the file and the tensor.
void load_module_weights(torch::nn::Module& module, const std::string& path);

}  // namespace vimo::core
