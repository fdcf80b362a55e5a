// InterHuman on disk: the reader (motions_processed/person1|2/<id>.npy, annots/<id>.txt, split lists,
// ignore list) and a writer of the same raw layout, so generated data flows through the real reader.
//
// Raw per-frame layout (float32, 30 fps, Z up, metres), 492 floats, as InterGen's load_motion reads it:
//   [0, 186)    positions of 62 joints: 22 SMPL body joints, 30 hand joints (15 left, 15 right),
//               10 finger tips (5 left, 5 right)
//   [186, 492)  6D local rotations of 51 joints: body joints 1..21, then 30 hand joints
// Only the 22 body positions ([0, 66)) and the 21 body rotations ([186, 312)) are used.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "vimo/motion/clip.h"
#include "vimo/motion/io.h"

namespace vimo::motion {

constexpr int kInterHumanRawDim = 492;
constexpr int kInterHumanRotStart = 186;  // 62 x 3 positions come first

// Reads split `split` (train, val, test) of an InterHuman root. Split lists are looked for in
// root/split/<split>.txt, then root/<split>.txt; the ignore list in root/split/ignore_list.txt, then
// root/ignore_list.txt (optional). Each clip becomes [T-1, 2, 262] in the pair's canonical frame.
std::vector<Clip> read_interhuman(const std::string& root, const std::string& split, const ReadOptions& opts = {},
                                  ReadStats* stats = nullptr);

// One raw InterHuman pair -> clip (what the reader does per id). raw_a, raw_b [T, >=312].
Clip interhuman_raw_to_clip(const torch::Tensor& raw_a, const torch::Tensor& raw_b, const std::string& id,
                            std::vector<std::string> captions);

// Joints [T, 22, 3] (Y up, metres) and optional local rotations ([T, 22, 3, 3], [T, 21, 3, 3] or
// [T, 21, 6]; undefined: found by inverse kinematics) -> one person's raw rows [T, 492] float32, Z up.
// Hand joints are placed at the wrists and hand rotations are the identity.
torch::Tensor interhuman_raw(const torch::Tensor& joints, const torch::Tensor& rotations = {});

// Writes one clip into an InterHuman root: motions_processed/person1/<id>.npy and person2/<id>.npy
// ([T, 492] float32) and annots/<id>.txt (one caption per line). Each file is written atomically.
// joints_a, joints_b: [T, 22, 3] float32/float64, Y up, metres, same T; rot_a/rot_b as interhuman_raw.
void write_interhuman_clip(const std::string& root, const std::string& id, const torch::Tensor& joints_a,
                           const torch::Tensor& joints_b, const torch::Tensor& rot_a = {},
                           const torch::Tensor& rot_b = {}, const std::vector<std::string>& captions = {});
// Writes root/split/<split>.txt listing `ids` (atomically).
void write_interhuman_split(const std::string& root, const std::string& split, const std::vector<std::string>& ids);

}  // namespace vimo::motion
