"""`vimo motion import` and the joints round trip on the CMU pair in ../shared/data/cmu-mocap
(skipped when absent), against the small numpy BVH reader in tests/bvh_reference.py."""
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from bvh_reference import read_bvh  # noqa: E402
from conftest import run_vimo  # noqa: E402

CMU_UNIT = 0.056444  # metres per unit, from the data's README
# SMPL joint -> (BVH joint, other joint, weight): the same points vimo's CMU table names (docs/motion.md).
CMU_MAP = [("Hips",), ("LeftUpLeg",), ("RightUpLeg",), ("Spine",), ("LeftLeg",), ("RightLeg",),
           ("Spine", "Spine1", 0.5), ("LeftFoot",), ("RightFoot",), ("Spine1",), ("LeftToeBase",),
           ("RightToeBase",), ("Neck1",), ("LeftShoulder", "LeftArm", 0.5), ("RightShoulder", "RightArm", 0.5),
           ("Head",), ("LeftArm",), ("RightArm",), ("LeftForeArm",), ("RightForeArm",), ("LeftHand",),
           ("RightHand",)]


def smpl_joints(path):
    names, pos, dt = read_bvh(path)
    assert abs(dt - 1 / 120) < 1e-4
    pos = pos[1:]  # frame 0 is a T-pose
    cols = []
    for m in CMU_MAP:
        p = pos[:, names.index(m[0])]
        if len(m) == 3:
            p = p * (1 - m[2]) + pos[:, names.index(m[1])] * m[2]
        cols.append(p)
    return (np.stack(cols, 1) * CMU_UNIT)[::4]  # 120 -> 30 fps


def rigid_residual(src, dst):
    """Largest distance left after the best rotation + translation from src to dst ([N, 3] each)."""
    ms, md = src.mean(0), dst.mean(0)
    u, _, vt = np.linalg.svd((dst - md).T @ (src - ms))
    r = u @ vt
    return np.abs((src - ms) @ r.T + md - dst).max(), r


@pytest.fixture(scope="module")
def cmu(shared_data):
    d = shared_data / "cmu-mocap"
    if not (d / "18_01.bvh").exists():
        pytest.skip("cmu-mocap pair absent")
    return d


def test_import_pair(vimo_bin, cmu, tmp_path):
    out = tmp_path / "pair.npy"
    run_vimo(vimo_bin, "motion", "import", "--a", cmu / "18_01.bvh", "--b", cmu / "19_01.bvh", "--skip-frames", "1",
             "--caption", "two people walk towards each other and shake hands.", "--out", out)
    clip = np.load(out)
    assert clip.shape == (75, 2, 262) and clip.dtype == np.float32  # 303 frames at 120 fps -> 76 at 30
    assert (tmp_path / "pair.txt").read_text().startswith("two people walk")
    ref = [smpl_joints(cmu / "18_01.bvh"), smpl_joints(cmu / "19_01.bvh")]
    got = clip[..., :66].reshape(75, 2, 22, 3)
    for p in range(2):
        res, r = rigid_residual(ref[p][:-1].reshape(-1, 3), got[:, p].reshape(-1, 3))
        print(f"CMU person {p + 1}: joints -> features -> joints residual after the rigid fit {res * 1000:.4f} mm")
        assert res < 1e-4 and abs(r[1, 1] - 1) < 1e-6
    # Both persons were moved by the same turn and shift (each onto its own floor, as in InterGen):
    # the cross-person distances of the floored inputs are kept.
    fl = [r - np.array([0, r[..., 1].min(), 0]) for r in ref]
    cross = np.linalg.norm(fl[0][:-1, 21] - fl[1][:-1, 21], axis=-1)
    cross_got = np.linalg.norm(got[:, 0, 21] - got[:, 1, 21], axis=-1)
    assert np.abs(cross - cross_got).max() < 1e-4
    print(f"CMU handshake: closest right wrists {cross_got.min():.3f} m at frame {cross_got.argmin()}")
    assert 0.2 < cross_got.min() < 0.6  # README: ~0.38 m apart at the handshake
    pelvis = got[:, :, 0, 1]
    assert 0.75 < pelvis.mean() < 1.1, f"pelvis height {pelvis.mean()} m: unit scale wrong?"
    contacts = clip[..., 258:]
    print(f"CMU foot contact rate {contacts.mean():.2f}")
    assert 0.15 < contacts.mean() < 0.9  # walking: feet plant and lift
    # A's first frame: pelvis at the XZ origin, facing +Z (right hip towards -X).
    assert np.abs(got[0, 0, 0, [0, 2]]).max() < 1e-5
    across = got[0, 0, 2] - got[0, 0, 1]
    assert abs(across[2]) < 1e-5 and across[0] < 0


def test_from_joints_round_trip(vimo_bin, cmu, tmp_path):
    a, b = smpl_joints(cmu / "18_01.bvh"), smpl_joints(cmu / "19_01.bvh")
    np.save(tmp_path / "a.npy", a.astype(np.float32))
    np.save(tmp_path / "b.npy", b)
    run_vimo(vimo_bin, "motion", "from-joints", "--a", tmp_path / "a.npy", "--b", tmp_path / "b.npy",
             "--out", tmp_path / "f.npy")
    run_vimo(vimo_bin, "motion", "to-joints", tmp_path / "f.npy", "--out", tmp_path / "j.npy")
    j = np.load(tmp_path / "j.npy")
    # Each person stands on its own floor (as in InterGen); after that the pair shares one rigid transform.
    a0, b0 = a.copy(), b.copy()
    a0[..., 1] -= a[..., 1].min()
    b0[..., 1] -= b[..., 1].min()
    both = np.concatenate([a0[:-1], b0[:-1]], 1).reshape(-1, 3)
    res, _ = rigid_residual(both, j.reshape(-1, 3).astype(np.float64))
    print(f"CMU from-joints/to-joints round trip: {res * 1000:.4f} mm after one rigid transform for the pair")
    assert res < 1e-4
    for p, src in enumerate((a, b)):
        r, _ = rigid_residual(src[:-1].reshape(-1, 3), j[:, p].reshape(-1, 3).astype(np.float64))
        assert r < 1e-4


def test_bad_bvh(vimo_bin, tmp_path, cmu):
    text = (cmu / "18_01.bvh").read_text().replace("CHANNELS 3 Zrotation Yrotation Xrotation", "CHANNELS 3 Zrotation Yrotation Qrotation", 1)
    (tmp_path / "bad.bvh").write_text(text)
    p = run_vimo(vimo_bin, "motion", "import", "--a", tmp_path / "bad.bvh", "--out", tmp_path / "x.npy", check=False)
    assert p.returncode != 0 and "Qrotation" in p.stderr and "bad.bvh:" in p.stderr
    lines = (cmu / "19_01.bvh").read_text().splitlines()
    cut = [l if not l.startswith("Frames:") else "Frames: 200" for l in lines]
    cut = cut[:cut.index("Frames: 200") + 2 + 200]
    (tmp_path / "short.bvh").write_text("\n".join(cut) + "\n")
    p = run_vimo(vimo_bin, "motion", "import", "--a", cmu / "18_01.bvh", "--b", tmp_path / "short.bvh",
                 "--out", tmp_path / "y.npy", check=False)
    assert p.returncode != 0 and "different lengths" in p.stderr
    assert not (tmp_path / "x.npy").exists() and not (tmp_path / "y.npy").exists()
