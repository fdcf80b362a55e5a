// Tensor files: safetensors (memory-mapped, lazy, sharded *.index.json) and numpy .npy.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace vimo::core {

class MappedFile;

struct TensorInfo {
  std::string dtype;           // safetensors name: F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F64
  std::vector<int64_t> shape;
  size_t begin = 0, end = 0;   // byte range inside the file's data section
  std::string file;            // the file holding it (differs per shard)
};

// A safetensors file, or a sharded set through its `*.index.json`. Tensors are views of a private
// memory map: nothing is read until used, and writing to them never touches the file.
class SafeTensors {
 public:
  static SafeTensors open(const std::string& path);
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return infos_.count(name) > 0; }
  const TensorInfo& info(const std::string& name) const;
  torch::Tensor get(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

 private:
  void add_file(const std::string& file, const std::vector<std::string>* expected);
  std::string path_;
  std::map<std::string, TensorInfo> infos_;
  std::map<std::string, std::shared_ptr<MappedFile>> maps_;
  std::map<std::string, size_t> data_start_;  // per file
  std::map<std::string, std::string> metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Writes atomically; tensors are made contiguous and moved to the CPU.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});
NamedTensors load_safetensors(const std::string& path);  // all tensors, copied into memory

torch::ScalarType safetensors_dtype(const std::string& name, const std::string& context);
std::string safetensors_dtype_name(torch::ScalarType t);

// numpy .npy, C order; float16/32/64, int8/16/32/64, uint8, bool.
torch::Tensor load_npy(const std::string& path);
void save_npy(const std::string& path, const torch::Tensor& t);

// `vimo tensors convert`: .npy -> .safetensors (one tensor named `name`, default "tensor"),
// .safetensors -> .npy (the tensor `name`, or the only one), .safetensors -> .safetensors (rewrite).
struct ConvertOptions {
  std::string input, output, name;
};
void convert_tensor_file(const ConvertOptions& o);

}  // namespace vimo::core
