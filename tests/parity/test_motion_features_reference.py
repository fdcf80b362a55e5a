"""vimo's 262-d features and readers against numpy transcriptions of InterGen's InterHuman processing
and HumanML3D's 263-d definition (tests/parity/motion_reference.py), on fixtures made here."""
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import motion_reference as ref  # noqa: E402
from conftest import run_vimo  # noqa: E402


def make_pair(t, seed):
    ja, ra = ref.pose_clip(t, seed, yaw0=0.7, start=(0.3, -1.0), speed=0.015, turn=0.01)
    jb, rb = ref.pose_clip(t, seed + 1, yaw0=3.5, start=(1.2, 0.4), speed=0.01, turn=-0.005)
    return ref.interhuman_raw(ja, ra), ref.interhuman_raw(jb, rb)


def write_interhuman(root, clips, split_ids, ignore=()):
    for cid, (a, b, caps) in clips.items():
        for person, raw in (("person1", a), ("person2", b)):
            if raw is not None:
                (root / "motions_processed" / person).mkdir(parents=True, exist_ok=True)
                np.save(root / "motions_processed" / person / f"{cid}.npy", raw)
        (root / "annots").mkdir(parents=True, exist_ok=True)
        (root / "annots" / f"{cid}.txt").write_text("".join(c + "\n" for c in caps))
    (root / "split").mkdir(parents=True, exist_ok=True)
    (root / "split" / "train.txt").write_text("".join(i + "\n" for i in split_ids))
    (root / "split" / "ignore_list.txt").write_text("".join(i + "\n" for i in ignore))


def test_interhuman_reader_matches_intergen(vimo_bin, tmp_path):
    root = tmp_path / "ih"
    a1, b1 = make_pair(90, 1)
    a2, b2 = make_pair(40, 7)
    short_a, short_b = make_pair(12, 3)
    clips = {
        "1": (a1, b1, ["one waves, the other waves back.", "two people wave."]),
        "2": (a2, b2, ["a push."]),
        "3": (short_a, short_b, ["too short"]),
        "4": (a2, b2, ["ignored"]),
        "5": (a2, None, ["person2 file missing"]),
    }
    write_interhuman(root, clips, ["1", "2", "3", "4", "5"], ignore=["4"])
    out = tmp_path / "out"
    p = run_vimo(vimo_bin, "motion", "convert", root, "--format", "interhuman", "--split", "train", "--out", out)
    assert "2 clips read, 1 skipped as shorter" in p.stdout
    assert "1 on the ignore list, 1 with missing files" in p.stdout
    assert "person2/5.npy" in p.stderr + p.stdout
    assert sorted(f.name for f in out.iterdir()) == ["1.npy", "1.txt", "2.npy", "2.txt"]
    for cid in ("1", "2"):
        a, b, caps = clips[cid]
        want = ref.intergen_pair(a, b)
        got = np.load(out / f"{cid}.npy")
        assert got.shape == want.shape == (len(a) - 1, 2, 262) and got.dtype == np.float32
        err = np.abs(got - want).max(axis=(0, 1))
        assert err[:132].max() < 2e-5, f"positions/velocities differ by {err[:132].max()}"
        assert err[132:258].max() < 1e-6, "rotations must pass through unchanged"
        assert np.array_equal(got[..., 258:], want[..., 258:]), "foot contacts differ"
        assert (out / f"{cid}.txt").read_text().splitlines() == caps
        assert 0 < want[..., 258:].mean() < 1, "fixture should have both contact states"


def test_interhuman_bad_input(vimo_bin, tmp_path):
    a, b = make_pair(30, 5)
    bad = a.copy()
    bad[11, 40] = np.nan
    root = tmp_path / "nan"
    write_interhuman(root, {"77": (bad, b, ["x"])}, ["77"])
    p = run_vimo(vimo_bin, "motion", "convert", root, "--format", "interhuman", "--out", tmp_path / "o1", check=False)
    assert p.returncode != 0 and "77" in p.stderr and "NaN" in p.stderr and "frame 11" in p.stderr

    root = tmp_path / "len"
    write_interhuman(root, {"8": (a, b[:-3], ["x"])}, ["8"])
    p = run_vimo(vimo_bin, "motion", "convert", root, "--format", "interhuman", "--out", tmp_path / "o2", check=False)
    assert p.returncode != 0 and "8" in p.stderr and "same length" in p.stderr

    p = run_vimo(vimo_bin, "motion", "convert", root, "--format", "interhuman", "--split", "val", "--out",
                 tmp_path / "o3", check=False)
    assert p.returncode != 0 and "whole val split is missing" in p.stderr

    root = tmp_path / "gone"
    write_interhuman(root, {"9": (a, None, ["x"])}, ["9"])
    (root / "motions_processed" / "person2").mkdir()
    p = run_vimo(vimo_bin, "motion", "convert", root, "--format", "interhuman", "--out", tmp_path / "o4", check=False)
    assert p.returncode != 0 and "person2/9.npy" in p.stderr and "whole split" in p.stderr


def test_from_joints_matches_intergen(vimo_bin, tmp_path):
    a, b = make_pair(50, 11)
    want = ref.intergen_pair(a, b)
    ja = a[:, :66].reshape(-1, 22, 3).astype(np.float64)
    jb = b[:, :66].reshape(-1, 22, 3)
    np.save(tmp_path / "a.npy", ja)
    np.save(tmp_path / "b.npy", jb)
    run_vimo(vimo_bin, "motion", "from-joints", "--a", tmp_path / "a.npy", "--b", tmp_path / "b.npy", "--up", "z",
             "--out", tmp_path / "clip.npy")
    got = np.load(tmp_path / "clip.npy")
    assert got.shape == (49, 2, 262) and got.dtype == np.float32
    assert np.abs(got[..., :132] - want[..., :132]).max() < 2e-5
    assert np.array_equal(got[..., 258:], want[..., 258:])
    # Rotations come from inverse kinematics here; they are proper rotations in 6D (unit, orthogonal rows).
    r = got[..., 132:258].reshape(49, 2, 21, 6)
    assert np.allclose(np.linalg.norm(r[..., :3], axis=-1), 1, atol=1e-5)
    assert np.allclose((r[..., :3] * r[..., 3:]).sum(-1), 0, atol=1e-5)
    run_vimo(vimo_bin, "motion", "to-joints", tmp_path / "clip.npy", "--out", tmp_path / "j.npy")
    j = np.load(tmp_path / "j.npy")
    assert j.shape == (49, 2, 22, 3)
    assert np.abs(j - want[..., :66].reshape(49, 2, 22, 3)).max() < 2e-5
    # One person: [T-1, 1, 262], equal to person 1 of the pair.
    run_vimo(vimo_bin, "motion", "from-joints", "--a", tmp_path / "a.npy", "--up", "z", "--out", tmp_path / "one.npy")
    one = np.load(tmp_path / "one.npy")
    assert one.shape == (49, 1, 262)
    assert np.abs(one[:, 0] - got[:, 0]).max() < 1e-6


def test_humanml3d_recovery_mm(vimo_bin, tmp_path):
    joints, _ = ref.pose_clip(120, 21, yaw0=-0.4, start=(0.5, 2.0), speed=0.03, turn=0.02)
    feats, published = ref.humanml3d_features(joints)
    np.save(tmp_path / "m.npy", feats.astype(np.float32))
    run_vimo(vimo_bin, "motion", "to-joints", tmp_path / "m.npy", "--format", "humanml3d", "--out", tmp_path / "j.npy")
    got = np.load(tmp_path / "j.npy")
    assert got.shape == (119, 1, 22, 3)
    err_mm = np.linalg.norm(got[:, 0] - published[:-1], axis=-1) * 1000
    print(f"HumanML3D recovery from 263-d (float32 file): mean {err_mm.mean():.4f} mm, max {err_mm.max():.4f} mm")
    assert err_mm.max() < 0.5
    np.save(tmp_path / "m64.npy", feats)
    run_vimo(vimo_bin, "motion", "to-joints", tmp_path / "m64.npy", "--format", "humanml3d", "--out", tmp_path / "j64.npy")
    err64 = np.linalg.norm(np.load(tmp_path / "j64.npy")[:, 0] - published[:-1], axis=-1) * 1000
    print(f"HumanML3D recovery from 263-d (float64 file): max {err64.max():.6f} mm")
    assert err64.max() < 0.01


def test_humanml3d_reader(vimo_bin, tmp_path):
    root = tmp_path / "hml"
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    joints, _ = ref.pose_clip(100, 4, speed=0.02)  # 5 s at 20 fps
    feats, published = ref.humanml3d_features(joints)
    np.save(root / "new_joint_vecs" / "000001.npy", feats)  # float64 file
    (root / "texts" / "000001.txt").write_text(
        "a person walks forward.#a/DET person/NOUN walk/VERB forward/ADV#0.0#0.0\n"
        "someone strolls ahead#someone/PRON stroll/VERB ahead/ADV#nan#nan\n"
        "the person turns.#the/DET person/NOUN turn/VERB#1.0#3.0\n")
    np.save(root / "new_joint_vecs" / "000002.npy", feats[:8].astype(np.float32))
    (root / "texts" / "000002.txt").write_text("short#x#0.0#0.0\n")
    (root / "train.txt").write_text("000001\n000002\n")
    out = tmp_path / "out"
    p = run_vimo(vimo_bin, "motion", "convert", root, "--format", "humanml3d", "--split", "train", "--out", out)
    assert "2 clips read, 1 skipped as shorter" in p.stdout
    whole = np.load(out / "000001.npy")
    assert whole.shape == (147, 1, 262)  # 99 frames at 20 fps = 4.9 s -> 148 frames at 30 fps
    assert (out / "000001.txt").read_text().splitlines() == ["a person walks forward.", "someone strolls ahead"]
    part = sorted(out.glob("000001@*.npy"))
    assert len(part) == 1 and np.load(part[0]).shape == (58, 1, 262)  # 40 frames at 20 fps -> 59 at 30
    assert part[0].with_suffix(".txt").read_text().strip() == "the person turns."
    # 30 fps joints are the 20 fps published joints interpolated: frame 3k at 30 fps = frame 2k at 20 fps.
    j = whole[:, 0, :66].reshape(-1, 22, 3)
    pub = published[:-1]
    # Canonicalization re-anchors the clip (floor, origin, facing): compare shapes after removing it.
    a, b = pub[0:98:2] - pub[0, 0], j[0:147:3] - j[0, 0]
    h = b.reshape(-1, 3).T @ a.reshape(-1, 3)
    u, _, vt = np.linalg.svd(h)
    r = u @ vt
    fit = a.reshape(-1, 3) @ r.T
    assert np.abs(fit - b.reshape(-1, 3)).max() < 1e-3
