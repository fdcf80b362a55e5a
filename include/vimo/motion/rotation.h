// Batched rotation conversions on torch tensors (any leading shape, float32 or float64).
// Quaternions are (w, x, y, z). 6D is the first two ROWS of the matrix, as in pytorch3d's
// matrix_to_rotation_6d, which InterGen and the InterHuman release use.
#pragma once
#include <torch/torch.h>

#include <array>

namespace vimo::motion {

torch::Tensor axis_angle_to_matrix(const torch::Tensor& aa);  // [..., 3] -> [..., 3, 3]
torch::Tensor matrix_to_axis_angle(const torch::Tensor& m);   // [..., 3, 3] -> [..., 3]
torch::Tensor quat_to_matrix(const torch::Tensor& q);         // [..., 4] -> [..., 3, 3]; normalizes q
torch::Tensor matrix_to_quat(const torch::Tensor& m);         // [..., 3, 3] -> [..., 4], w >= 0
torch::Tensor axis_angle_to_quat(const torch::Tensor& aa);    // [..., 3] -> [..., 4]
torch::Tensor quat_to_axis_angle(const torch::Tensor& q);     // [..., 4] -> [..., 3], angle in [0, pi]
torch::Tensor matrix_to_6d(const torch::Tensor& m);           // [..., 3, 3] -> [..., 6]
torch::Tensor sixd_to_matrix(const torch::Tensor& d6);        // [..., 6] -> [..., 3, 3] (Gram-Schmidt)

torch::Tensor quat_mul(const torch::Tensor& a, const torch::Tensor& b);     // [..., 4] Hamilton product
torch::Tensor quat_conj(const torch::Tensor& q);                            // inverse of a unit quaternion
torch::Tensor quat_rotate(const torch::Tensor& q, const torch::Tensor& v);  // [..., 4], [..., 3]
// Smallest rotation taking direction u to direction v ([..., 3] each, need not be unit) as a matrix;
// for opposite directions it turns by pi about an axis perpendicular to u.
torch::Tensor rotation_between(const torch::Tensor& u, const torch::Tensor& v);  // -> [..., 3, 3]
// Rotation by `angle` (radians, [...]) about +Y as matrices [..., 3, 3].
torch::Tensor rotation_about_y(const torch::Tensor& angle);
// Euler angles in degrees applied in the given axis order as intrinsic rotations (BVH channel order):
// R = R_axis0(a0) * R_axis1(a1) * R_axis2(a2). `order` holds 0/1/2 for X/Y/Z. angles [..., 3].
torch::Tensor euler_to_matrix(const torch::Tensor& degrees, const std::array<int, 3>& order);
// The inverse for the six orders with three different axes: [..., 3, 3] -> degrees [..., 3] with the
// middle angle in [-90, 90] and the others in (-180, 180]. At the middle angle's +-90 (gimbal lock) only
// the sum or difference of the outer angles is defined: the last angle is then 0.
torch::Tensor matrix_to_euler(const torch::Tensor& m, const std::array<int, 3>& order);

}  // namespace vimo::motion
