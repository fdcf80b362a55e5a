// Foot-skate cleanup of generated motion: a foot that the features mark in contact with the floor is
// held where it stands and the leg is re-solved to reach it (two-bone IK, hip fixed), so decoded
// motion keeps its planted feet (docs/groups.md).
#pragma once
#include <torch/torch.h>

#include <cstdint>

namespace vimo::motion {

struct FootCleanupOptions {
  double contact_threshold = 0.5;  // a contact channel above this marks its joint on the floor
  int blend_frames = 4;            // frames over which a hold fades in before and out after its span
  int min_frames = 2;              // contact spans shorter than this are left alone
};

struct FootCleanupStats {
  int64_t spans = 0;             // contact spans held (all persons, both legs)
  int64_t unreachable = 0;       // frames where the held foot was out of the leg's reach (moved to the limit)
  double max_shift_m = 0;        // the largest horizontal move of a foot joint
};

// features [T, P, 262] (or [T, 262]) -> the same shape with the knee, ankle and toe positions of both
// legs moved and the velocities recomputed from the positions. A leg is held over each span of frames
// in which its ankle or toe contact channel is on: its toe keeps the span's mean horizontal position
// (ankle moved with it, heights unchanged), the knee is placed by two-bone IK in the leg's own bend
// plane with that frame's bone lengths. Rotations and contact channels stay as given. NaN/inf input and
// a wrong last dimension are named errors.
torch::Tensor clean_foot_contacts(const torch::Tensor& features, const FootCleanupOptions& o = {},
                                  FootCleanupStats* stats = nullptr);

}  // namespace vimo::motion
