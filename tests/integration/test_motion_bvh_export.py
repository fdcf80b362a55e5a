"""`vimo motion export` (features -> one BVH file per person) on a synthetic 3-person scene, read back
with the independent numpy BVH reader of tests/bvh_reference.py; the exported files imported again
(`vimo motion import A.bvh B.bvh C.bvh`); bad input."""
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from bvh_reference import read_bvh  # noqa: E402
from conftest import run_vimo  # noqa: E402

# The joint names the exporter writes (docs/motion.md "BVH export"), in SMPL order.
SMPL_NAMES = ["Pelvis", "L_Hip", "R_Hip", "Spine1", "L_Knee", "R_Knee", "Spine2", "L_Ankle", "R_Ankle", "Spine3",
              "L_Foot", "R_Foot", "Neck", "L_Collar", "R_Collar", "Head", "L_Shoulder", "R_Shoulder", "L_Elbow",
              "R_Elbow", "L_Wrist", "R_Wrist"]
END_JOINTS = [15, 20, 21, 10, 11]  # head, wrists, toes: the joints that carry the end sites


@pytest.fixture(scope="module")
def scene(vimo_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("group")
    run_vimo(vimo_bin, "data", "synth-group", "--out", d, "--count", 1, "--persons", 3, "--seed", 5)
    (npy,) = sorted(d.glob("*.npy"))
    return npy


def joints_of(features):
    """The position channels 0..65 as joints [T, P, 22, 3] float64 (what features_to_joints returns)."""
    return features[..., :66].reshape(features.shape[:2] + (22, 3)).astype(np.float64)


def test_export_matches_features(vimo_bin, scene, tmp_path):
    feats = np.load(scene)
    T, P = feats.shape[:2]
    assert P == 3
    p = run_vimo(vimo_bin, "motion", "export", scene, "--out", tmp_path / "take")
    files = [tmp_path / f"take_{c}.bvh" for c in "ABC"]
    assert p.stdout.split() == [w for f in files for w in ("wrote", str(f))]
    joints = joints_of(feats)
    for k, f in enumerate(files):
        names, pos, dt = read_bvh(f)
        assert abs(dt - 1 / 30) < 1e-6 and pos.shape[0] == T
        assert names.count(None) == 5 and len(names) == 27  # 22 joints + end sites
        got = pos[:, [names.index(n) for n in SMPL_NAMES]]
        err = np.linalg.norm(got - joints[:, k], axis=-1)  # [T, 22] metres
        end = err[:, END_JOINTS].max()
        inner = np.delete(err, END_JOINTS, axis=1).max()
        print(f"person {'ABC'[k]}: pelvis {err[:, 0].max() * 1e3:.5f} mm, inner joints {inner * 1e3:.5f} mm, "
              f"end joints {end * 1e3:.5f} mm (numpy reader)")
        # Same world frame for all: absolute positions, not each person recentred.
        assert err.max() < 1e-5
        # End sites sit beyond their joints: above the head, in front of the toes.
        head_top = pos[:, names.index("Head") + 1]
        assert (head_top[:, 1] > got[:, 15, 1] - 1e-9).mean() > 0.5


def test_import_exported_persons(vimo_bin, scene, tmp_path):
    feats = np.load(scene)
    T = feats.shape[0]
    run_vimo(vimo_bin, "motion", "export", scene, "--out", str(tmp_path / "bvh") + "/")
    files = [tmp_path / "bvh" / f"{scene.stem}_{c}.bvh" for c in "ABC"]
    assert all(f.exists() for f in files)
    run_vimo(vimo_bin, "motion", "import", *files, "--out", tmp_path / "back.npy")
    back = np.load(tmp_path / "back.npy")
    assert back.shape == (T - 1, 3, 262)  # T BVH frames at 30 fps -> T-1 feature frames (velocities)
    err = np.abs(joints_of(back) - joints_of(feats[:-1])).max()
    print(f"export -> import: positions within {err * 1e3:.4f} mm")
    assert err < 1e-4
    # The same persons given with --person; contacts agree with the input's.
    run_vimo(vimo_bin, "motion", "import", "--person", files[0], "--person", files[1], "--person", files[2],
             "--out", tmp_path / "again.npy")
    assert np.array_equal(np.load(tmp_path / "again.npy"), back)
    assert np.mean(back[..., 258:] == feats[:-1, :, 258:]) > 0.99
    p = run_vimo(vimo_bin, "motion", "import", *(files * 3), "--out", tmp_path / "nine.npy", check=False)
    assert p.returncode != 0 and "1 to 8" in p.stderr and not (tmp_path / "nine.npy").exists()
    p = run_vimo(vimo_bin, "motion", "import", "--a", files[0], files[1], "--out", tmp_path / "mixed.npy", check=False)
    assert p.returncode != 0 and "--a/--b" in p.stderr


def test_bad_input_writes_nothing(vimo_bin, tmp_path):
    out = tmp_path / "out"
    np.save(tmp_path / "short.npy", np.zeros((20, 261), np.float32))
    p = run_vimo(vimo_bin, "motion", "export", tmp_path / "short.npy", "--out", out / "x", check=False)
    assert p.returncode != 0 and "short.npy" in p.stderr and "261" in p.stderr
    np.save(tmp_path / "nine.npy", np.zeros((20, 9, 262), np.float32))
    p = run_vimo(vimo_bin, "motion", "export", tmp_path / "nine.npy", "--out", out / "y", check=False)
    assert p.returncode != 0 and "1..8" in p.stderr
    f = np.zeros((20, 2, 262), np.float32)
    f[3, 1, 10] = np.nan
    np.save(tmp_path / "nan.npy", f)
    p = run_vimo(vimo_bin, "motion", "export", tmp_path / "nan.npy", "--out", out / "z", check=False)
    assert p.returncode != 0 and "nan.npy" in p.stderr and "NaN" in p.stderr
    assert not out.exists() or not any(out.iterdir())
