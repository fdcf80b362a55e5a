// Synthetic group scenes: one person greeting the others in turn, and a circle dancing hand in hand.
#include "vimo/motion/synth_group.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/tensor_io.h"
#include "vimo/motion/features.h"
#include "vimo/motion/synth_script.h"

namespace vimo::motion {
std::vector<std::string> synth_captions(SynthType type, const SynthRoles& roles, synth::Rng& rng);

namespace {
using namespace synth;

struct GroupScene {
  int T = 0, end = 0;
  std::vector<Person> p;
  Rng* rng = nullptr;
  GroupClip* out = nullptr;
  void resize(int frames) {
    T = frames;
    for (auto& q : p) q.f.assign(T, PoseInput{});
  }
  double u(double lo, double hi) { return rng->uniform(lo, hi); }
};

const char* const kNumberWords[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight"};
int wrist(int side) { return side == 0 ? kRightWrist : kLeftWrist; }

// Person 0 walks up to each of the others in turn (they stand in an arc in front of it) and shakes
// their right hand; a guest turns to face the host as it comes.
void greet(GroupScene& g, int& first_side) {
  const int N = static_cast<int>(g.p.size());
  g.resize(sec(14));
  auto& H = g.p[0];
  const double span = g.u(0.5, 0.75);     // half the arc, radians
  first_side = g.rng->pick(2);            // 1: the first guest stands on the host's left (+X at yaw 0)
  const double sgn = first_side == 1 ? 1 : -1;
  for (int k = 1; k < N; ++k) {
    const double a = sgn * (N == 2 ? 0 : span - 2 * span * (k - 1) / (N - 2)), d = g.u(1.5, 2.1);
    const V3 pos{d * std::sin(a), 0, d * std::cos(a)};
    const double yaw = yaw_towards(pos, {0, 0, 0}) + g.u(-0.25, 0.25);
    for (int t = 0; t < g.T; ++t) g.p[k].f[t].root = pos, g.p[k].f[t].yaw = yaw;
  }
  int f = sec(g.u(0.2, 0.5));
  for (int k = 1; k < N; ++k) {
    auto& G = g.p[k];
    const V3 gp = G.f[0].root, hp = H.f[f].root;
    const double gap = g.u(0.72, 0.85);
    const V3 to = gp + unit(V3{hp.x - gp.x, 0, hp.z - gp.z}) * gap;
    const int fm = walk_to(H, f, to, g.u(1.0, 1.3), yaw_towards(to, gp));
    turn_to(G, std::max(0, fm - sec(1.0)), fm, yaw_towards(gp, to) + g.u(-0.1, 0.1));
    const int pumps = 2 + g.rng->pick(2);
    const double period = g.u(0.3, 0.4);
    const int r0 = fm - sec(0.4), r1 = fm + sec(0.25), r2 = r1 + sec(period * pumps), r3 = r2 + sec(0.45);
    for (int t = std::max(0, r0); t < std::min(g.T, r3 + 1); ++t) {
      const V3 mid = lerp(H.f[t].root, G.f[t].root, 0.5);
      const double h = 0.5 * (H.body.pelvis_height + G.body.pelvis_height) + 0.08;
      const double pump = t > r1 && t < r2 ? 0.045 * std::sin(2 * M_PI * (t - r1) / (kFps * period)) : 0;
      const V3 m{mid.x, h + pump, mid.z};
      const double w = env(t, r0, r1, r2, r3);
      reach(H, 0, t, m + H.side(t, 0) * 0.03, elbow_down(H, t, 0), w);
      reach(G, 0, t, m + G.side(t, 0) * 0.03, elbow_down(G, t, 0), w);
    }
    g.out->contacts.push_back({0, k, kRightWrist, kRightWrist, r1});
    f = r3;
  }
  g.end = f + sec(g.u(0.6, 1.0));
}

// Everyone on a circle facing its centre, each holding both neighbours' hands, stepping round together.
void circle_dance(GroupScene& g, int& direction) {
  const int N = static_cast<int>(g.p.size());
  g.resize(sec(g.u(5.0, 7.0)));
  const double nd = g.u(0.95, 1.1), r = nd / (2 * std::sin(M_PI / N));
  direction = g.rng->pick(2);  // 1: each steps to their own left
  const double omega = (direction == 1 ? -1 : 1) * g.u(0.9, 1.3) / r, bounce = g.u(1.6, 2.2);
  const int f0 = sec(g.u(0.3, 0.6)), f1 = g.T - sec(g.u(0.3, 0.6));
  const double th0 = g.u(-0.3, 0.3);
  double phi = 0;
  const V3 c{0, 0, 0};
  // The hand each person gives each neighbour: the side that neighbour stands on (fixed on a circle).
  std::vector<std::array<int, 2>> hand(static_cast<size_t>(N));  // [i] = {hand towards i+1, hand towards i-1}
  for (int t = 0; t < g.T; ++t) {
    const double w = env(t, f0, f0 + sec(0.8), f1 - sec(0.8), f1);
    phi += omega * w / kFps;
    for (int i = 0; i < N; ++i) {
      const double th = th0 + phi + 2 * M_PI * i / N;
      auto& q = g.p[static_cast<size_t>(i)];
      q.f[t].root = c + V3{std::sin(th), 0, std::cos(th)} * r;
      q.f[t].yaw = yaw_towards(q.f[t].root, c);
      q.f[t].crouch = 0.035 * w * (1 - std::cos(2 * M_PI * bounce * t / kFps));
    }
  }
  for (int i = 0; i < N; ++i) {
    auto& q = g.p[static_cast<size_t>(i)];
    const V3 next = g.p[static_cast<size_t>((i + 1) % N)].f[0].root - q.f[0].root;
    hand[static_cast<size_t>(i)][0] = dot(next, q.side(0, 0)) > 0 ? 0 : 1;
    hand[static_cast<size_t>(i)][1] = 1 - hand[static_cast<size_t>(i)][0];
  }
  const int pairs = N == 2 ? 1 : N;
  for (int i = 0; i < pairs; ++i) {
    const int j = (i + 1) % N;
    auto& A = g.p[static_cast<size_t>(i)];
    auto& B = g.p[static_cast<size_t>(j)];
    const int sa = hand[static_cast<size_t>(i)][0], sb = hand[static_cast<size_t>(j)][1];
    for (int t = 0; t < g.T; ++t) {
      const double wa = env(t, f0 - sec(0.4), f0 + sec(0.3), f1, f1 + sec(0.5));
      if (wa <= 0) continue;
      V3 m = lerp(A.f[t].root, B.f[t].root, 0.5) * 0.92;  // a little inside the circle
      m.y = 0.5 * (A.body.pelvis_height + B.body.pelvis_height) + 0.1;
      reach(A, sa, t, m, elbow_down(A, t, sa), wa);
      reach(B, sb, t, m, elbow_down(B, t, sb), wa);
    }
    g.out->contacts.push_back({i, j, wrist(sa), wrist(sb), f0 + sec(0.3)});
  }
  for (auto& q : g.p) q.step_time = 0.3;
}

std::vector<std::string> group_captions(GroupType type, int N, int side, Rng& rng) {
  const std::string n = kNumberWords[N], others = kNumberWords[N - 1];
  const std::string where = side == 1 ? "left" : "right";
  std::vector<std::vector<std::string>> forms;
  if (type == GroupType::kGreet) {
    forms = {{"one of " + n + " people walks up to each of the other " + others +
                  " in turn and shakes their right hand, starting with the person on the " + where + "."},
             {"a person greets " + others + " others one after another with a handshake, first the one on the " +
                  where + "."},
             {"the first person goes round the group and shakes hands with each of the " + others +
                  " others, beginning on the " + where + "."}};
  } else {
    forms = {{n + " people hold hands in a circle and dance around to their " + where + "."},
             {"a ring of " + n + " people joined by the hands steps round to the " + where + " with a light bounce."},
             {n + " people dance in a circle, holding their neighbours' hands and circling to their " + where + "."}};
  }
  std::vector<std::string> out;
  for (auto& f : forms) out.push_back(f[static_cast<size_t>(rng.pick(static_cast<int>(f.size())))]);
  return out;
}

}  // namespace

const char* group_type_name(GroupType t) { return t == GroupType::kGreet ? "greet" : "circle_dance"; }

GroupClip synth_group(uint64_t seed, int64_t index, GroupType type, int persons) {
  VIMO_CHECK(persons >= 3 && persons <= kMaxGroupPersons,
             "synth group: --persons must be 3.." + std::to_string(kMaxGroupPersons) + " (two people are the pair "
             "generator's: `vimo motion synth`), got " + std::to_string(persons));
  Rng rng(seed * 0xA24BAED4963EE407ULL + static_cast<uint64_t>(index) * 0x9FB21C651E98DF25ULL +
          static_cast<uint64_t>(persons) * 0x2545F4914F6CDD1DULL + 0x6A09E667F3BCC909ULL);
  rng.next();
  GroupClip c;
  c.id = "group" + std::to_string(persons) + "_" + std::to_string(index + 1);  // write_group_set's file names
  c.type = type;
  c.persons = persons;
  GroupScene g;
  g.rng = &rng;
  g.out = &c;
  g.p.resize(static_cast<size_t>(persons));
  for (auto& q : g.p) q.body = make_body(rng), q.step_time = rng.uniform(0.36, 0.44);
  int side = 0;
  if (type == GroupType::kGreet) greet(g, side);
  else circle_dance(g, side);
  if (g.end > 0 && g.end < g.T) g.T = std::max(g.end, kMinClipFrames);
  g.T = std::min(g.T, kMaxClipFrames);
  for (auto& q : g.p) q.f.resize(static_cast<size_t>(g.T));
  c.contacts.erase(std::remove_if(c.contacts.begin(), c.contacts.end(), [&](const GroupContact& k) { return k.frame >= g.T; }),
                   c.contacts.end());
  const double world_yaw = rng.uniform(-M_PI, M_PI);
  const V3 shift{rng.uniform(-1, 1), 0, rng.uniform(-1, 1)};
  std::vector<Person*> people;
  for (auto& q : g.p) people.push_back(&q);
  std::tie(c.joints, c.local_rot) = solve_people(people.data(), persons, g.T, M3::ry(world_yaw), shift);
  c.captions = group_captions(type, persons, side, rng);
  for (int k = 1; k < persons; ++k) {
    GroupPair pr;
    pr.other = k;
    SynthRoles roles;
    roles.actor = 0;
    if (type == GroupType::kGreet) {
      pr.anchor = 0;
      roles.actor_side = roles.partner_side = 0;
      roles.variant = "actor_approaches";
      pr.captions = synth_captions(SynthType::kHandshake, roles, rng);
    } else {
      pr.anchor = k - 1;
      roles.direction = side;
      roles.variant = "hold_hands";
      pr.captions = synth_captions(SynthType::kDance, roles, rng);
    }
    c.pairs.push_back(pr);
  }
  return c;
}

GroupClip synth_group(uint64_t seed, int64_t index, int persons) {
  return synth_group(seed, index, static_cast<GroupType>(index % kNumGroupTypes), persons);
}

torch::Tensor group_features(const GroupClip& c) {
  std::vector<torch::Tensor> joints, rots;
  for (int p = 0; p < c.persons; ++p) joints.push_back(c.joints.select(1, p)), rots.push_back(c.local_rot.select(1, p));
  FeatureOptions o;
  o.name = "group scene " + c.id;
  return joints_to_features(joints, rots, o);
}

void write_group_set(const std::string& dir, int64_t count, int persons, uint64_t seed) {
  VIMO_CHECK(count >= 1, "synth group: --count must be at least 1");
  core::ensure_writable_dir(dir);
  for (int64_t i = 0; i < count; ++i) {
    const auto base = (std::filesystem::path(dir) / ("group" + std::to_string(persons) + "_" + std::to_string(i + 1))).string();
    if (std::filesystem::exists(base + ".npy") && std::filesystem::exists(base + ".json")) continue;
    const auto c = synth_group(seed, i, persons);
    core::save_npy(base + ".npy", group_features(c));
    nlohmann::ordered_json j;
    j["id"] = c.id;
    j["type"] = group_type_name(c.type);
    j["persons"] = c.persons;
    j["frames"] = c.joints.size(0) - 1;
    j["captions"] = c.captions;
    j["pairs"] = nlohmann::json::array();
    for (const auto& p : c.pairs) j["pairs"].push_back({{"anchor", p.anchor}, {"other", p.other}, {"captions", p.captions}});
    j["contacts"] = nlohmann::json::array();
    for (const auto& k : c.contacts)
      j["contacts"].push_back({{"a", k.a}, {"b", k.b}, {"joint_a", k.joint_a}, {"joint_b", k.joint_b}, {"frame", k.frame}});
    core::write_file_atomic(base + ".json", j.dump(2) + "\n");
  }
}

}  // namespace vimo::motion
