// Loading a tokenizer run directory (architecture from the weights' metadata); encoding and
// decoding whole clips.
#include "vimo/tokenizer/tokenizer.h"

#include <filesystem>

#include "vimo/core/checkpoint.h"
#include "vimo/core/error.h"
#include "vimo/core/module_io.h"
#include "vimo/core/tensor_io.h"

namespace fs = std::filesystem;

namespace vimo::tokenizer {
namespace {

// Fills the architecture keys of RqvaeOptions from the weights' metadata, else from the run's
// config.yaml (`model` section; unknown keys there are ignored), else keeps the default.
struct ArchitectureReader {
  const std::map<std::string, std::string>& meta;
  const YAML::Node& model_yaml;  // may be undefined
  std::string weights, config;
  template <class T> void key(const std::string& name, T& value, const std::string&, const core::KeyOpts& o = {}) {
    if (!o.arch) return;
    auto it = meta.find(name);
    if (it != meta.end()) {
      YAML::Node n;
      try {
        n = YAML::Load(it->second);
      } catch (const std::exception&) {
      }
      VIMO_CHECK(n && core::detail::convert(n, value),
                 "metadata key '" + name + "' of '" + weights + "' is '" + it->second + "', not a " +
                     core::detail::type_name(&value) + "; the checkpoint is damaged: retrain the tokenizer");
    } else if (model_yaml && model_yaml.IsMap() && model_yaml[name]) {
      VIMO_CHECK(core::detail::convert(model_yaml[name], value),
                 "key 'model." + name + "' of '" + config + "' is not a " + core::detail::type_name(&value) +
                     "; fix it there");
    }
  }
};

std::string find_checkpoint(const std::string& run_dir) {
  const fs::path best = fs::path(run_dir) / "best";
  if (fs::exists(best / "DONE") && fs::exists(best / "model.safetensors")) return best.string();
  auto latest = core::CheckpointManager(run_dir, 0).latest();
  VIMO_CHECK(latest, "tokenizer run '" + run_dir +
                         "' has no complete checkpoint (no best/ and no checkpoints/step_*/DONE); finish its "
                         "training first: rerun `vimo tokenizer train --config FILE run.dir=" + run_dir + "`");
  return *latest;
}

}  // namespace

MotionTokenizer MotionTokenizer::load(const std::string& run_dir, torch::Device device) {
  VIMO_CHECK(fs::is_directory(run_dir), "tokenizer run '" + run_dir +
                                            "' does not exist; train one with `vimo tokenizer train --config "
                                            "configs/tokenizer/demo.yaml run.dir=" + run_dir + " data.packed=DIR`");
  const std::string ckpt = find_checkpoint(run_dir);
  const std::string weights = ckpt + "/model.safetensors";
  VIMO_CHECK(fs::exists(weights), "checkpoint '" + ckpt + "' of tokenizer run '" + run_dir +
                                      "' has no model.safetensors; delete that checkpoint and resume the training");
  std::map<std::string, std::string> meta;
  try {
    meta = core::SafeTensors::open(weights).metadata();
  } catch (const std::exception& e) {
    throw Error("cannot load tokenizer weights from '" + weights + "' (" + e.what() +
                "): the checkpoint is damaged; delete it and resume the training, or retrain");
  }
  auto fmt = meta.find("format");
  VIMO_CHECK(fmt == meta.end() || fmt->second == kRqvaeFormat,
             "'" + weights + "' holds a '" + fmt->second + "' model, not a tokenizer (" + kRqvaeFormat +
                 "); is '" + run_dir + "' a tokenizer run?");
  // Runs of older vimo stored only some architecture keys: the others come from config.yaml, read
  // leniently (no schema check), so keys added since then do not make the run unreadable.
  const std::string cfg_path = (fs::path(run_dir) / "config.yaml").string();
  YAML::Node cfg;
  if (fs::exists(cfg_path)) {
    try {
      cfg = YAML::LoadFile(cfg_path);
    } catch (const std::exception& e) {
      throw Error("cannot read '" + cfg_path + "' (" + e.what() + "); restore it or retrain the tokenizer");
    }
  }
  VIMO_CHECK(fmt != meta.end() || cfg, "'" + run_dir + "' is not a tokenizer run: the metadata of '" + weights +
                                           "' names no model and there is no config.yaml");
  RqvaeOptions o;
  const YAML::Node& ccfg = cfg;  // const: lookups add no keys
  const YAML::Node model_yaml = ccfg && ccfg.IsMap() ? ccfg["model"] : YAML::Node();
  ArchitectureReader reader{meta, model_yaml, weights, cfg_path};
  o.visit(reader);
  Rqvae model(o);
  try {
    core::load_module_weights(*model, weights);
  } catch (const std::exception& e) {
    throw Error("cannot load tokenizer weights from '" + ckpt + "': " + e.what());
  }
  model->to(device);
  model->eval();
  auto resolved = architecture_metadata(o);
  std::string packed;
  if (auto it = meta.find("data.packed"); it != meta.end())
    packed = it->second;
  else if (ccfg && ccfg.IsMap() && ccfg["data"] && ccfg["data"].IsMap() && ccfg["data"]["packed"])
    packed = ccfg["data"]["packed"].as<std::string>("");
  resolved["data.packed"] = packed;
  return MotionTokenizer(model, std::move(resolved), run_dir, ckpt, device);
}

torch::Tensor MotionTokenizer::encode(const torch::Tensor& clip_in) {
  torch::NoGradGuard ng;
  const auto& o = options();
  auto clip = clip_in.dim() == 2 ? clip_in.unsqueeze(1) : clip_in;
  VIMO_CHECK(clip.dim() == 3 && clip.size(2) == o.feature_dim,
             "motion has shape " + c10::str(clip_in.sizes()) + "; the tokenizer expects [T, P, " +
                 std::to_string(o.feature_dim) + "] or [T, " + std::to_string(o.feature_dim) + "]");
  VIMO_CHECK(clip.size(0) > 0, "motion has no frames");
  const int64_t ds = o.downsample(), T = clip.size(0);
  const int64_t Tp = (T + ds - 1) / ds * ds;
  auto x = clip.to(torch::kFloat);
  if (Tp > T) x = torch::cat({x, x.narrow(0, T - 1, 1).expand({Tp - T, x.size(1), x.size(2)})});
  auto codes = model_->encode(x.permute({1, 0, 2}).to(device_));  // [P, T/4, Q]
  return codes.permute({1, 0, 2}).contiguous().to(torch::kCPU);
}

torch::Tensor MotionTokenizer::decode(const torch::Tensor& codes_in) {
  torch::NoGradGuard ng;
  VIMO_CHECK(!codes_in.is_floating_point(), "codes must be integers, got " + c10::str(codes_in.scalar_type()));
  auto codes = codes_in.dim() == 2 ? codes_in.unsqueeze(1) : codes_in;
  VIMO_CHECK(codes.dim() == 3 && codes.size(2) >= 1 && codes.size(2) <= options().num_quantizers,
             "codes have shape " + c10::str(codes_in.sizes()) + "; expected [T/4, P, L] with 1 <= L <= " +
                 std::to_string(options().num_quantizers));
  auto y = model_->decode(codes.permute({1, 0, 2}).to(device_, torch::kLong));  // [P, T, F]
  return y.permute({1, 0, 2}).contiguous().to(torch::kCPU);
}

}  // namespace vimo::tokenizer
