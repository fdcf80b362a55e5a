// HumanML3D: its 263-d single-person features (new_joint_vecs), joint recovery the way its
// recover_from_ric does it, captions with '#' fields and sub-clip times, and conversion to 262-d.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "vimo/motion/clip.h"
#include "vimo/motion/io.h"

namespace vimo::motion {

constexpr int kHumanML3DDim = 263;     // 4 root + 21x3 positions + 21x6 rotations + 22x3 velocities + 4 contacts
constexpr double kHumanML3DFps = 20.0;

// Features [T, 263] (float32 or float64) -> joints [T, 22, 3] float32, Y up, metres.
// Integrates the root's Y rotation and XZ velocity from frame 0 exactly as recover_from_ric.
torch::Tensor humanml3d_recover_joints(const torch::Tensor& features, const std::string& name = "humanml3d");

// One HumanML3D motion (or a part of it) as a one-person clip [T'-1, 1, 262] at 30 fps; the local
// rotations are found by inverse kinematics (HumanML3D's own rotation channels use another convention).
Clip humanml3d_to_clip(const torch::Tensor& features, const std::string& id, std::vector<std::string> captions);

// root/new_joint_vecs/<id>.npy, root/texts/<id>.txt ("caption#tokens#from#to" per line), and the split
// list root/<split>.txt. A caption with from/to times (seconds, not both 0) becomes its own clip,
// id "<id>@<from>-<to>", cut from the motion as HumanML3D does (frames from*20 .. to*20).
std::vector<Clip> read_humanml3d(const std::string& root, const std::string& split, const ReadOptions& opts = {},
                                 ReadStats* stats = nullptr);

}  // namespace vimo::motion
