// Inter-X reader, as far as its released files give joint positions without the SMPL-X body model.
//
// Supported: root/splits/<split>.txt, root/texts/<id>.txt, and root/motions/<id>/P1.npz, P2.npz with
// SMPL-X parameters at 120 fps (root_orient [T, 3], pose_body [T, 63], trans [T, 3]), stored
// uncompressed (np.savez). Joints come from forward kinematics of the 21 body rotations on vimo's
// SMPL template skeleton: the rotations are exact, bone lengths are the template's (betas need the
// SMPL-X model, which vimo does not ship). Up axis (Y or Z) is detected from the body; 120 fps is
// resampled to 30 fps. Not supported: skeletons/ (64 OptiTrack markers), the processed *.h5 files,
// hand poses, np.savez_compressed archives.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "vimo/motion/clip.h"
#include "vimo/motion/io.h"

namespace vimo::motion {

constexpr double kInterXFps = 120.0;

std::vector<Clip> read_interx(const std::string& root, const std::string& split, const ReadOptions& opts = {},
                              ReadStats* stats = nullptr);

// The float arrays of an uncompressed .npz archive by name (without ".npy"); others are skipped.
std::map<std::string, torch::Tensor> read_npz(const std::string& path);

// SMPL-X body parameters of one person -> joints [T, 22, 3] (float64, world frame of the file) and
// local rotations [T, 22, 3, 3].
torch::Tensor smplx_body_joints(const torch::Tensor& root_orient, const torch::Tensor& pose_body,
                                const torch::Tensor& trans, torch::Tensor* local_rot = nullptr);

}  // namespace vimo::motion
