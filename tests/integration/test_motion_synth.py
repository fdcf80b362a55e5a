"""`vimo data synth`: InterHuman layout, splits, determinism per seed, every type, Z-up raw rows."""
import hashlib
import json
import pathlib

import numpy as np
import pytest

from conftest import run_vimo

CLIPS = 36


@pytest.fixture(scope="module")
def dataset(vimo_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    run_vimo(vimo_bin, "data", "synth", "--out", root / "a", "--clips", CLIPS, "--seed", 4)
    return root


def digest(root):
    h = hashlib.sha256()
    for p in sorted(pathlib.Path(root).rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_layout_and_splits(dataset):
    root = dataset / "a"
    ids = [str(i) for i in range(1, CLIPS + 1)]
    for i in ids:
        a = np.load(root / "motions_processed" / "person1" / f"{i}.npy")
        b = np.load(root / "motions_processed" / "person2" / f"{i}.npy")
        assert a.dtype == np.float32 and a.shape == b.shape and a.shape[1] == 492 and a.shape[0] >= 16
        caps = (root / "annots" / f"{i}.txt").read_text().strip().splitlines()
        assert len(caps) == 3 and len(set(caps)) == 3
    splits = {s: (root / "split" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    allids = sum(splits.values(), [])
    assert sorted(allids, key=int) == ids, "splits cover every clip exactly once"
    assert len(splits["train"]) > len(splits["test"]) > 0


def test_raw_rows_are_z_up_with_feet_on_the_floor(dataset):
    root = dataset / "a"
    for i in range(1, CLIPS + 1):
        a = np.load(root / "motions_processed" / "person1" / f"{i}.npy")[:, :66].reshape(-1, 22, 3)
        feet = a[:, [7, 10, 8, 11], 2]  # InterHuman's raw files are Z up
        assert feet.min() > -0.02
        assert feet.min(axis=1).max() < 0.03, "a foot is on the floor in every frame"
        assert a[:, 15, 2].min() > 1.0, "the head stays high: no one lies down"


def test_every_type_and_same_seed_same_bytes(vimo_bin, dataset):
    meta = json.loads((dataset / "a" / "synth_meta.json").read_text())
    assert len({m["type"] for m in meta["clips_meta"]}) == 12
    run_vimo(vimo_bin, "data", "synth", "--out", dataset / "b", "--clips", CLIPS, "--seed", 4, "--threads", 1)
    assert digest(dataset / "a") == digest(dataset / "b")
    run_vimo(vimo_bin, "data", "synth", "--out", dataset / "c", "--clips", CLIPS, "--seed", 5)
    assert digest(dataset / "a") != digest(dataset / "c")


def test_bad_arguments(vimo_bin, tmp_path):
    p = run_vimo(vimo_bin, "data", "synth", "--out", tmp_path / "x", "--clips", 0, check=False)
    assert p.returncode != 0
