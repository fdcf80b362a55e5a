// Synthetic group scenes of three or more people, built from the pair scripts' blocks: one person
// greeting the others in turn (handshakes), and a circle holding hands and dancing round. Each scene
// lists the pairs it is made of (the order a two-person model composes it in) and its scripted contacts.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vimo::motion {

constexpr int kMaxGroupPersons = 8;  // largest group the generator and the composer accept

enum class GroupType { kGreet, kCircleDance };
constexpr int kNumGroupTypes = 2;
const char* group_type_name(GroupType t);  // "greet", "circle_dance"

// A pair of the scene: `other` interacts with `anchor`; the pair's clip is persons (anchor, other), in
// that order, and its captions are the two-person captions of that interaction (anchor = first person).
struct GroupPair {
  int anchor = 0, other = 1;
  std::vector<std::string> captions;  // 3 wordings
};

// A scripted touch: joint_a of person a meets joint_b of person b, first at `frame`.
struct GroupContact {
  int a = 0, b = 1, joint_a = 0, joint_b = 0, frame = 0;
};

struct GroupClip {
  std::string id;
  GroupType type = GroupType::kGreet;
  int persons = 3;
  torch::Tensor joints;     // [T, N, 22, 3] float32, Y up, metres, 30 fps
  torch::Tensor local_rot;  // [T, N, 22, 3, 3] float32
  std::vector<std::string> captions;  // of the whole scene, 3
  std::vector<GroupPair> pairs;       // N - 1, in composition order: pairs[k - 1].other == k
  std::vector<GroupContact> contacts;
};

// One scene of `persons` people (3..kMaxGroupPersons); identical for identical arguments.
GroupClip synth_group(uint64_t seed, int64_t index, GroupType type, int persons = 3);
// The index-th scene of a set: the types alternate.
GroupClip synth_group(uint64_t seed, int64_t index, int persons = 3);

// The scene as features [T-1, N, 262] (InterHuman layout, canonical to person 0).
torch::Tensor group_features(const GroupClip& c);

// "<id>.npy" features [T-1, N, 262] and "<id>.json" ({id, type, persons, captions, pairs, contacts}) for
// `count` scenes into `dir`, written atomically; a rerun keeps the scenes already there.
void write_group_set(const std::string& dir, int64_t count, int persons, uint64_t seed);

}  // namespace vimo::motion
