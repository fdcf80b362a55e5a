// Loading a tokenizer run directory; encoding and decoding whole clips.
#include "vimo/tokenizer/tokenizer.h"

#include <filesystem>

#include "vimo/core/checkpoint.h"
#include "vimo/core/error.h"
#include "vimo/train/trainer.h"

namespace fs = std::filesystem;

namespace vimo::tokenizer {

MotionTokenizer MotionTokenizer::load(const std::string& run_dir, torch::Device device) {
  VIMO_CHECK(fs::is_directory(run_dir), "tokenizer run '" + run_dir +
                                            "' does not exist; train one with `vimo tokenizer train --config "
                                            "configs/tokenizer/demo.yaml run.dir=" + run_dir + " data.packed=DIR`");
  const std::string cfg_path = (fs::path(run_dir) / "config.yaml").string();
  VIMO_CHECK(fs::exists(cfg_path), "'" + run_dir + "' is not a tokenizer run: it has no config.yaml");
  TokenizerConfig cfg;
  try {
    cfg = core::resolve_config<TokenizerConfig>(core::ConfigSource::from_files({cfg_path}));
  } catch (const Error& e) {
    throw Error("'" + cfg_path + "' is not a valid tokenizer config: " + e.what());
  } catch (const std::exception& e) {
    throw Error("cannot read '" + cfg_path + "' (" + e.what() + "); is '" + run_dir + "' a tokenizer run?");
  }
  std::string ckpt;
  const fs::path best = fs::path(run_dir) / "best";
  if (fs::exists(best / "DONE") && fs::exists(best / "model.safetensors")) {
    ckpt = best.string();
  } else {
    core::CheckpointManager cm(run_dir, 0);
    auto latest = cm.latest();
    VIMO_CHECK(latest, "tokenizer run '" + run_dir + "' has no complete checkpoint (no best/ and no "
                       "checkpoints/step_*/DONE); train it first or resume its training");
    ckpt = *latest;
  }
  Rqvae model(cfg.model.o);
  try {
    train::load_module_weights(*model, ckpt + "/model.safetensors");
  } catch (const std::exception& e) {
    throw Error("cannot load tokenizer weights from '" + ckpt + "': " + e.what());
  }
  model->to(device);
  model->eval();
  return MotionTokenizer(model, cfg, ckpt, device);
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
