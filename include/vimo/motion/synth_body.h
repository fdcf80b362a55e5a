// The kinematic body behind the synthetic interactions: scalar 3D math, bodies with varied
// proportions, a pose solver (limb IK -> local rotations -> forward kinematics) and a stepping planner
// that keeps planted feet fixed on the floor.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "vimo/motion/clip.h"

namespace vimo::motion::synth {

struct V3 {
  double x = 0, y = 0, z = 0;
};
inline V3 operator+(V3 a, V3 b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
inline V3 operator-(V3 a, V3 b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
inline V3 operator*(V3 a, double s) { return {a.x * s, a.y * s, a.z * s}; }
inline double dot(V3 a, V3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
inline V3 cross(V3 a, V3 b) { return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x}; }
inline double norm(V3 a) { return std::sqrt(dot(a, a)); }
inline V3 unit(V3 a, V3 fallback = {0, 0, 1}) {
  double n = norm(a);
  return n > 1e-12 ? a * (1.0 / n) : fallback;
}
inline V3 lerp(V3 a, V3 b, double t) { return a + (b - a) * t; }

// Row-major 3x3 rotation.
struct M3 {
  double m[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  V3 operator*(V3 v) const {
    return {m[0][0] * v.x + m[0][1] * v.y + m[0][2] * v.z, m[1][0] * v.x + m[1][1] * v.y + m[1][2] * v.z,
            m[2][0] * v.x + m[2][1] * v.y + m[2][2] * v.z};
  }
  M3 operator*(const M3& o) const;
  M3 t() const;
  static M3 cols(V3 a, V3 b, V3 c);
  static M3 axis_angle(V3 axis, double angle);
  static M3 rx(double a) { return axis_angle({1, 0, 0}, a); }
  static M3 ry(double a) { return axis_angle({0, 1, 0}, a); }
  static M3 rz(double a) { return axis_angle({0, 0, 1}, a); }
  static M3 between(V3 from, V3 to);  // smallest rotation taking direction `from` onto `to`
};
// Facing direction for a yaw: the body faces +Z at yaw 0 and turns about +Y.
inline V3 heading(double yaw) { return {std::sin(yaw), 0, std::cos(yaw)}; }
inline double yaw_towards(V3 from, V3 to) { return std::atan2(to.x - from.x, to.z - from.z); }
double wrap_angle(double a);  // to (-pi, pi]

// Deterministic generator (splitmix64): the same seed gives the same clip on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next();
  double uniform(double lo = 0, double hi = 1);
  bool chance(double p) { return uniform() < p; }
  int pick(int n) { return static_cast<int>(uniform() * n) % n; }

 private:
  uint64_t s_;
};

// A body: SMPL rest offsets scaled per segment group (overall size, legs, arms, torso, width).
struct Body {
  std::array<V3, kNumJoints> off;  // offset from the parent; off[0] unused
  double pelvis_height = 0.92;     // standing, feet flat, toe joints on the floor
  double thigh = 0, shin = 0, upper_arm = 0, forearm = 0, ankle_height = 0;
  double shoulder_height = 1.4, head_height = 1.6, scale = 1;
};
Body make_body(Rng& rng);

// Everything a frame of a person needs; the solver turns it into local rotations and joints.
struct Limb {
  V3 target;          // world position of the wrist / ankle
  V3 pole{0, 0, 1};   // direction the elbow / knee points to
  double w = 0;       // arms: blend from the relaxed pose (0) to `target` (1)
};
struct PoseInput {
  V3 root;  // pelvis x, z (y is solved so the legs reach the feet)
  double yaw = 0, lean_fwd = 0, lean_side = 0, twist = 0, crouch = 0;
  double neck_yaw = 0, neck_pitch = 0;
  std::array<Limb, 2> arm;   // 0 right, 1 left
  std::array<Limb, 2> foot;  // ankle targets; pole = foot forward direction
  std::array<double, 2> foot_yaw{0, 0}, foot_pitch{0, 0};
  std::array<double, 2> arm_swing{0, 0};  // forward swing of a relaxed arm, metres
  std::array<Limb, 2> kick;  // a scripted foot (w > 0): ankle target blended over the planned one
  std::array<double, 2> kick_pitch{0, 0};  // its foot pitch (radians, toes down > 0)
};
struct PoseOutput {
  std::array<M3, kNumJoints> local;  // joint 0: pelvis world orientation
  std::array<V3, kNumJoints> joints;
};
PoseOutput solve_pose(const Body& body, const PoseInput& in);

// Rest position of a foot's ankle relative to the pelvis (body frame, y ignored); side 0 right, 1 left.
V3 rest_ankle(const Body& body, int side);

// Plans steps for a root path: each foot stays planted until it is too far from where the body wants
// it, then swings along an arc to where it will be wanted. Fills in.foot / foot_yaw / foot_pitch.
// No step starts while a scripted foot (kick.w > 0) is in use.
void plan_steps(const Body& body, std::vector<PoseInput>& frames, double step_time);

}  // namespace vimo::motion::synth
