// Scenes of three or more people composed by iterative prompting of a two-person run: the first pair
// from the text (t2m), then each further person as the reaction to the person it interacts with (its
// anchor), moved into the shared frame and placed, by turning it about the anchor, where it does not
// pass through anyone already placed (docs/groups.md).
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "vimo/motion/foot_cleanup.h"
#include "vimo/motion/synth_group.h"
#include "vimo/vim/model.h"

namespace vimo::vim {

struct GroupOptions {
  int persons = 3;
  int max_persons = motion::kMaxGroupPersons;
  std::string layout = "star";     // star: person k reacts to person 0; chain: to person k - 1
  std::vector<int> anchors;        // person k's anchor (k = 2..N-1) in place of the layout's; empty: the layout
  // texts[0]: the first pair (persons 0 and 1); texts[k - 1]: person k with its anchor. The last one is
  // used again for every later person.
  std::vector<std::string> texts;
  int tries = 4;                   // samples drawn (one batch) for the first pair and for each further person
  std::vector<double> angles_deg = {0, 60, -60, 120, -120, 180};  // turns about the anchor's root tried in order
  double max_penetration = 0.05;   // a placement is taken when its overlap ratio with everyone is at most this
  bool foot_cleanup = true;        // hold the feet the decoded contacts mark planted (motion/foot_cleanup.h)
};

struct GroupPlacement {
  int person = 0, anchor = 0, sample = 0;
  double angle_deg = 0, penetration = 0;  // the overlap ratio of the placement kept (worst over the others)
  bool accepted = false;                  // false: none was clear; the least overlapping one is kept
};

struct GroupResult {
  torch::Tensor features;                  // [T, N, 262], canonical to person 0
  double pair_penetration = 0;             // overlap ratio of the first pair kept
  std::vector<GroupPlacement> placements;  // persons 2..N-1
  motion::FootCleanupStats foot_cleanup;   // zeros when GroupOptions::foot_cleanup is off
};

// Named errors: fewer than 2 or more than max_persons people, no text, a run without t2m or a2b, an
// anchor that is not an earlier person.
GroupResult generate_group(VimModel& m, const GroupOptions& o, const GenerateSettings& s);

}  // namespace vimo::vim
