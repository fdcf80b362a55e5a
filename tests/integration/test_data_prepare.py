"""`vimo data prepare` end to end: synthetic data through the InterHuman reader into packed splits
read back with h5py; rerun skipping; a clips folder packed with mirror copies checked against a
numpy mirror; config files validated; bad input reported."""
import json
import pathlib

import h5py
import numpy as np
import pytest

from conftest import SOURCE_DIR, run_vimo

CONFIGS = SOURCE_DIR / "configs" / "data"
PAIRS = [(1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21)]


@pytest.fixture(scope="module")
def readers(vimo_bin):
    """The dataset readers and `vimo data synth` come from the motion module; skip when it is not built."""
    if run_vimo(vimo_bin, "data", "synth", "--help", check=False).returncode != 0:
        pytest.skip("this vimo is built without the motion module's readers (VIMO_MODULES)")


def numpy_mirror(x):
    """Reference mirror of [..., 262] features written from the layout in docs/data.md."""
    perm = list(range(22))
    for a, b in PAIRS:
        perm[a], perm[b] = b, a
    pos = x[..., :66].reshape(*x.shape[:-1], 22, 3)[..., perm, :] * np.array([-1, 1, 1])
    vel = x[..., 66:132].reshape(*x.shape[:-1], 22, 3)[..., perm, :] * np.array([-1, 1, 1])
    rot = x[..., 132:258].reshape(*x.shape[:-1], 21, 6)[..., [p - 1 for p in perm[1:]], :]
    rot = rot * np.array([1, -1, -1, -1, 1, 1])
    con = x[..., 258:262][..., [2, 3, 0, 1]]
    flat = lambda a: a.reshape(*x.shape[:-1], -1)
    return np.concatenate([flat(pos), flat(vel), flat(rot), con], -1)


def read_split(path):
    with h5py.File(path, "r") as f:
        return {
            "motion": f["motion"][...],
            "ids": [s.decode() if isinstance(s, bytes) else s for s in f["index/id"][...]],
            "offset": f["index/offset"][...],
            "length": f["index/length"][...],
            "persons": f["index/persons"][...],
            "captions": [(s.decode() if isinstance(s, bytes) else s) for s in f["index/captions"][...]],
            "attrs": dict(f.attrs),
        }


def test_configs_validate(vimo_bin):
    files = sorted(CONFIGS.glob("*.yaml"))
    assert {f.stem for f in files} >= {"synthetic", "interhuman", "interx", "humanml3d", "clips"}
    p = run_vimo(vimo_bin, "config", "check", *files)
    assert p.stdout.count("ok ") == len(files)


def test_synthetic_end_to_end(vimo_bin, tmp_path, readers):
    root, out = tmp_path / "syn", tmp_path / "packed"
    run_vimo(vimo_bin, "data", "synth", "--out", root, "--clips", 40, "--seed", 3)
    args = ["data", "prepare", "--config", CONFIGS / "synthetic.yaml", f"data.root={root}", f"data.out={out}"]
    run_vimo(vimo_bin, *args)
    splits = {s: read_split(out / f"{s}.h5") for s in ("train", "val", "test")}
    train = splits["train"]
    n = len(train["ids"])
    assert n > 0 and all(len(splits[s]["ids"]) > 0 for s in ("val", "test"))
    assert train["motion"].dtype == np.float32 and train["motion"].shape[1:] == (2, 262)
    assert np.all(np.isfinite(train["motion"]))
    assert int(train["offset"][-1] + train["length"][-1]) == train["motion"].shape[0]
    assert np.all(train["length"] >= 16) and np.all(train["length"] <= 300)
    # Mirror copies: the second half of train mirrors the first, motion and text together.
    mirrored = [i for i, cid in enumerate(train["ids"]) if cid.endswith("#mirror")]
    assert len(mirrored) == n // 2
    for i in mirrored[:5]:
        j = train["ids"].index(train["ids"][i][: -len("#mirror")])
        a = train["motion"][train["offset"][j]: train["offset"][j] + train["length"][j]]
        b = train["motion"][train["offset"][i]: train["offset"][i] + train["length"][i]]
        np.testing.assert_allclose(b, numpy_mirror(a), atol=1e-6)
        if "left" in train["captions"][j].split():
            assert "right" in train["captions"][i].split()
    # Stats: float64 mean/std over train, both persons.
    from safetensors.numpy import load_file
    st = load_file(str(out / "stats.safetensors"))
    rows = train["motion"].reshape(-1, 262).astype(np.float64)
    np.testing.assert_allclose(st["mean"], rows.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(st["std"], np.maximum(rows.std(0), 1e-3), rtol=1e-4, atol=1e-5)
    # A rerun skips every split and leaves the files alone.
    before = {s: (out / f"{s}.h5").stat().st_mtime_ns for s in splits}
    p = run_vimo(vimo_bin, *args)
    assert "up to date" in p.stdout + p.stderr
    assert before == {s: (out / f"{s}.h5").stat().st_mtime_ns for s in splits}
    assert not list(out.glob("*.tmp*"))


def test_clips_folder_with_swap(vimo_bin, tmp_path, readers):
    rng = np.random.default_rng(5)
    root = tmp_path / "clips"
    root.mkdir()
    for i in range(30):
        x = rng.standard_normal((20 + i, 2, 262)).astype(np.float32) * 0.1
        x[:, :, 3], x[:, :, 6] = 0.1, -0.1  # l_hip / r_hip x: facing +Z
        np.save(root / f"clip{i:02d}.npy", x)
        (root / f"clip{i:02d}.txt").write_text("the first person turns left\n")
    np.save(root / "tiny.npy", np.zeros((8, 2, 262), np.float32))
    out = tmp_path / "packed"
    run_vimo(vimo_bin, "data", "prepare", "--config", CONFIGS / "clips.yaml", f"data.root={root}", f"data.out={out}")
    splits = {s: read_split(out / f"{s}.h5") for s in ("train", "val", "test")}
    originals = [c for s in splits.values() for c in s["ids"] if "#" not in c]
    assert sorted(originals) == [f"clip{i:02d}" for i in range(30)]  # each clip in exactly one split
    train = splits["train"]
    i = next(k for k, c in enumerate(train["ids"]) if c.endswith("#swap") and "#mirror" not in c)
    assert train["captions"][i] == "the second person turns left"
    j = train["ids"].index(train["ids"][i][: -len("#swap")])
    src = train["motion"][train["offset"][j]: train["offset"][j] + train["length"][j]]
    got = train["motion"][train["offset"][i]: train["offset"][i] + train["length"][i]]
    # Swapped persons, then re-canonicalized: the new first person's first-frame root is at the origin.
    assert abs(got[0, 0, 0]) < 1e-5 and abs(got[0, 0, 2]) < 1e-5
    np.testing.assert_allclose(got[:, :, 132:], src[:, ::-1, 132:], atol=1e-6)  # rotations, contacts unchanged


def test_bad_input_is_reported(vimo_bin, tmp_path, readers):
    p = run_vimo(vimo_bin, "data", "prepare", "--config", CONFIGS / "clips.yaml", f"data.root={tmp_path / 'nope'}",
                 f"data.out={tmp_path / 'o'}", check=False)
    assert p.returncode != 0 and "nope" in p.stdout + p.stderr
    root = tmp_path / "clips"
    root.mkdir()
    for i in range(20):
        x = np.full((30, 2, 262), 0.1, np.float32)
        x[:, :, 3], x[:, :, 6] = 0.1, -0.1
        if i == 7:
            x[4, 1, 10] = np.nan
        np.save(root / f"c{i}.npy", x)
    p = run_vimo(vimo_bin, "data", "prepare", "--config", CONFIGS / "clips.yaml", f"data.root={root}",
                 f"data.out={tmp_path / 'o2'}", "data.val_fraction=0", "data.test_fraction=0", "data.splits=[train]",
                 check=False)
    assert p.returncode != 0 and "c7" in p.stdout + p.stderr
