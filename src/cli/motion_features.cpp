// `vimo motion from-joints` and `vimo motion to-joints`: joints <-> InterHuman 262-d features.
#include <iostream>
#include <memory>

#include "command.h"
#include "vimo/core/error.h"
#include "vimo/core/tensor_io.h"
#include "vimo/motion/features.h"
#include "vimo/motion/humanml3d.h"

namespace vimo::cli {
namespace {

struct FromJoints {
  std::string a, b, out, up = "y";
  double fps = motion::kFps;
};

struct ToJoints {
  std::string in, out, format = "interhuman";
};

Registrar reg(30, [](CLI::App& app) {
  auto* g = group(app, "motion", "motion data: features, readers, import and renders");

  auto fj = std::make_shared<FromJoints>();
  auto* c = g->add_subcommand("from-joints", "joints [T, 22, 3] (metres) -> features [T-1, P, 262] in the pair's canonical frame");
  c->add_option("--a", fj->a, "person A joints .npy [T, 22, 3], float32 or float64")->required();
  c->add_option("--b", fj->b, "person B joints .npy [T, 22, 3] (omit for one person)");
  c->add_option("--fps", fj->fps, "frame rate of the input; resampled to 30 fps")->check(CLI::PositiveNumber);
  c->add_option("--up", fj->up, "up axis of the input")->check(CLI::IsMember({"y", "z"}));
  c->add_option("--out", fj->out, "output .npy, float32 [T-1, P, 262]")->required();
  c->callback([fj] {
    std::vector<torch::Tensor> joints = {core::load_npy(fj->a)};
    if (!fj->b.empty()) joints.push_back(core::load_npy(fj->b));
    motion::FeatureOptions o;
    o.up = fj->up[0];
    o.fps = fj->fps;
    o.name = fj->b.empty() ? fj->a : fj->a + " + " + fj->b;
    auto f = motion::joints_to_features(joints, {}, o);
    core::save_npy(fj->out, f);
    std::cout << "wrote " << fj->out << " [" << f.size(0) << ", " << f.size(1) << ", 262]\n";
  });

  auto tj = std::make_shared<ToJoints>();
  auto* t = g->add_subcommand("to-joints", "features -> joints [T, P, 22, 3] (metres, Y up)");
  t->add_option("in", tj->in, "features .npy: [T, P, 262] or [T, 262] (interhuman), [T, 263] (humanml3d)")->required();
  t->add_option("--format", tj->format, "feature format")->check(CLI::IsMember({"interhuman", "humanml3d"}));
  t->add_option("--out", tj->out, "output .npy, float32 [T, P, 22, 3]")->required();
  t->callback([tj] {
    auto f = core::load_npy(tj->in).to(torch::kFloat32);
    torch::Tensor j;
    if (tj->format == "humanml3d") {
      j = motion::humanml3d_recover_joints(f, tj->in).unsqueeze(1);
    } else {
      VIMO_CHECK(f.size(-1) == motion::kFeatureDim && (f.dim() == 2 || f.dim() == 3),
                 tj->in + ": expected InterHuman features [T, P, 262] or [T, 262], got " + c10::str(f.sizes()) +
                     (f.size(-1) == 263 ? "; for HumanML3D files pass --format humanml3d" : ""));
      if (f.dim() == 2) f = f.unsqueeze(1);
      j = motion::features_to_joints(f);
    }
    core::save_npy(tj->out, j.contiguous());
    std::cout << "wrote " << tj->out << " " << c10::str(j.sizes()) << "\n";
  });
});

}  // namespace
}  // namespace vimo::cli
