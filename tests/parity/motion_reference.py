"""Independent numpy references for the motion tests: a small posable body, InterGen's InterHuman
processing (process_motion_np + rigid_transform) and HumanML3D's 263-d feature definition,
transcribed from the published descriptions with quaternions, as those projects compute them."""
import numpy as np

PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
# A plausible body (metres, Y up, facing +Z, left = +X); deliberately not vimo's template.
OFFSETS = np.array([
    [0, 0.95, 0], [0.08, -0.09, 0], [-0.08, -0.09, 0], [0, 0.11, -0.02], [0.02, -0.38, 0], [-0.02, -0.38, 0],
    [0, 0.13, 0.02], [0, -0.40, -0.03], [0, -0.40, -0.03], [0, 0.05, 0], [0.02, -0.06, 0.12], [-0.02, -0.06, 0.12],
    [0, 0.21, -0.04], [0.08, 0.12, -0.04], [-0.08, 0.12, -0.04], [0, 0.07, 0.05], [0.09, 0.03, -0.01],
    [-0.09, 0.03, -0.01], [0.26, 0, -0.02], [-0.26, 0, -0.02], [0.25, 0, 0], [-0.25, 0, 0]])
FID_L, FID_R = [7, 10], [8, 11]


def aa_to_mat(aa):
    th = np.linalg.norm(aa, axis=-1, keepdims=True)[..., None]
    k = aa / np.maximum(np.linalg.norm(aa, axis=-1, keepdims=True), 1e-12)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    z = np.zeros_like(kx)
    K = np.stack([z, -kz, ky, kz, z, -kx, -ky, kx, z], -1).reshape(aa.shape[:-1] + (3, 3))
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


def pose_clip(t, seed, yaw0=0.0, start=(0.0, 0.0), speed=0.02, turn=0.0):
    """Joints [t, 22, 3] (Y up) and local rotations [t, 22, 3, 3] of a smoothly moving body."""
    rng = np.random.default_rng(seed)
    amp = rng.uniform(0.05, 0.5, (22, 3))
    freq = rng.uniform(0.05, 0.25, (22, 3))
    phase = rng.uniform(0, 2 * np.pi, (22, 3))
    k = np.arange(t)[:, None, None]
    aa = amp * np.sin(freq * k + phase)
    yaw = yaw0 + turn * np.arange(t)
    aa[:, 0] = 0
    aa[:, 0, 1] = yaw
    rot = aa_to_mat(aa)
    heading = np.stack([np.sin(yaw), np.zeros(t), np.cos(yaw)], -1)
    root = np.zeros((t, 3))
    root[:, 0], root[:, 2] = start
    root += np.cumsum(heading * speed, 0)
    root[:, 1] = OFFSETS[0, 1] + 0.02 * np.sin(0.3 * np.arange(t))
    g = [None] * 22
    p = [None] * 22
    for j in range(22):
        if PARENTS[j] < 0:
            g[j], p[j] = rot[:, 0], root
        else:
            q = PARENTS[j]
            g[j] = g[q] @ rot[:, j]
            p[j] = p[q] + (g[q] @ OFFSETS[j])
    return np.stack(p, 1), rot


def interhuman_raw(joints, rot):
    """Y-up joints [T, 22, 3] and local rotations [T, 22, 3, 3] -> InterHuman raw rows [T, 492] (Z up)."""
    t = len(joints)
    z = np.stack([joints[..., 0], -joints[..., 2], joints[..., 1]], -1)
    pos = np.concatenate([z, np.repeat(z[:, 20:21], 40, 1)], 1)  # hand joints: anything
    r6 = rot[:, 1:, :2, :].reshape(t, -1)  # 6D = first two rows
    hands = np.tile(np.array([1, 0, 0, 0, 1, 0.0]), (t, 30))
    return np.concatenate([pos.reshape(t, -1), r6, hands], 1).astype(np.float32)


# --- quaternions (w, x, y, z) as InterGen/HumanML3D use them ---------------------------------------
def qmul(a, b):
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


def qinv(q):
    return q * np.array([1, -1, -1, -1])


def qrot(q, v):
    q = np.broadcast_to(q, v.shape[:-1] + (4,))
    u = q[..., 1:]
    uv = np.cross(u, v)
    return v + 2 * (q[..., :1] * uv + np.cross(u, uv))


def qbetween(v0, v1):
    w = np.sqrt((v0 ** 2).sum(-1, keepdims=True) * (v1 ** 2).sum(-1, keepdims=True)) + (v0 * v1).sum(-1, keepdims=True)
    q = np.concatenate([w, np.cross(v0, v1)], -1)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


# --- InterGen: one person, then person 2 moved into person 1's frame -------------------------------
def intergen_person(raw, thres=0.001):
    pos = raw[:, :66].astype(np.float64).reshape(-1, 22, 3)
    rot = raw[:, 186:312].astype(np.float64)
    m = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
    pos = np.einsum("mn,tjn->tjm", m, pos)
    pos[:, :, 1] -= pos.min(axis=0).min(axis=0)[1]
    root_xz = pos[0, 0] * np.array([1, 0, 1])
    pos = pos - root_xz
    across = pos[0, 2] - pos[0, 1]
    across = across / np.linalg.norm(across)
    fwd = np.cross(np.array([0, 1, 0]), across)
    fwd = fwd / np.linalg.norm(fwd)
    q = qbetween(fwd[None], np.array([[0, 0, 1.0]]))
    pos = qrot(q[:, None], pos)

    def feet(ids):
        d = ((pos[1:, ids] - pos[:-1, ids]) ** 2).sum(-1)
        return ((d < thres) & (pos[:-1, ids, 1] < np.array([0.12, 0.05]))).astype(np.float64)

    data = np.concatenate([pos[:-1].reshape(len(pos) - 1, -1), (pos[1:] - pos[:-1]).reshape(len(pos) - 1, -1),
                           rot[:-1], feet(FID_L), feet(FID_R)], -1)
    return data, q, root_xz[None]


def intergen_pair(raw1, raw2):
    m1, q1, r1 = intergen_person(raw1)
    m2, q2, r2 = intergen_person(raw2)
    rel = qmul(q2, qinv(q1))
    angle = np.arctan2(rel[:, 2], rel[:, 0])[0]
    xz = qrot(q1, r2 - r1)[0, [0, 2]]
    qr = np.array([np.cos(angle), 0, np.sin(angle), 0])
    pos = m2[:, :66].reshape(-1, 22, 3)
    vel = m2[:, 66:132].reshape(-1, 22, 3)
    pos = qrot(qinv(qr), pos)
    pos[..., [0, 2]] += xz
    m2[:, :66] = pos.reshape(len(m2), -1)
    m2[:, 66:132] = qrot(qinv(qr), vel).reshape(len(m2), -1)
    return np.stack([m1, m2], 1)


# --- HumanML3D 263-d (process_file without skeleton retargeting or forward smoothing) --------------
def humanml3d_features(positions, thres=0.002):
    """Joints [T, 22, 3] -> (features [T-1, 263], the canonical joints HumanML3D publishes [T, 22, 3])."""
    pos = positions.astype(np.float64).copy()
    pos[:, :, 1] -= pos.min(axis=0).min(axis=0)[1]
    pos = pos - pos[0, 0] * np.array([1, 0, 1])
    face = [2, 1, 17, 16]

    def forward(p):
        across = (p[..., face[0], :] - p[..., face[1], :]) + (p[..., face[2], :] - p[..., face[3], :])
        across = across / np.linalg.norm(across, axis=-1, keepdims=True)
        f = np.cross(np.array([0, 1, 0]), across)
        return f / np.linalg.norm(f, axis=-1, keepdims=True)

    q0 = qbetween(forward(pos[0])[None], np.array([[0, 0, 1.0]]))
    pos = qrot(q0[:, None], pos)
    glob = pos.copy()
    t = len(pos)
    r_rot = qbetween(forward(pos), np.tile([0, 0, 1.0], (t, 1)))  # [T, 4]

    def feet(ids, heights):
        d = ((glob[1:, ids] - glob[:-1, ids]) ** 2).sum(-1)
        return ((d < thres) & (glob[:-1, ids, 1] < heights)).astype(np.float64)

    vel = qrot(r_rot[1:], glob[1:, 0] - glob[:-1, 0])
    r_vel = qmul(r_rot[1:], qinv(r_rot[:-1]))
    ric = pos.copy()
    ric[..., 0] -= ric[:, 0:1, 0]
    ric[..., 2] -= ric[:, 0:1, 2]
    ric = qrot(r_rot[:, None], ric)
    root = np.concatenate([np.arcsin(r_vel[:, 2:3]), vel[:, [0, 2]], ric[:-1, 0, 1:2]], -1)
    rot6 = np.tile([1, 0, 0, 0, 1, 0.0], (t - 1, 21))  # not used by recovery
    local_vel = qrot(r_rot[:-1, None], glob[1:] - glob[:-1]).reshape(t - 1, -1)
    data = np.concatenate([root, ric[:-1, 1:].reshape(t - 1, -1), rot6, local_vel,
                           feet([7, 10], np.array([3.0, 2.0])), feet([8, 11], np.array([3.0, 2.0]))], -1)
    return data, glob
