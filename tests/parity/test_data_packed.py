"""Packed HDF5 splits against h5py: files written by h5py are read by vimo, and files written by
vimo (through `vimo data prepare` on a clips folder) are read by h5py."""
import json
import pathlib

import h5py
import numpy as np
import pytest

from conftest import run_vimo


def write_h5py_split(path, clips, fixed_strings=False):
    """The packed layout documented in docs/data.md, written with h5py only."""
    frames = np.concatenate([m if m.shape[1] == 2 else np.concatenate([m, np.zeros_like(m)], 1) for _, m, _ in clips])
    lengths = np.array([m.shape[0] for _, m, _ in clips], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    ids = [c[0] for c in clips]
    caps = ["\n".join(c[2]) for c in clips]
    with h5py.File(path, "w") as f:
        f.create_dataset("motion", data=frames)  # float64 here: vimo converts
        g = f.create_group("index")
        if fixed_strings:
            g.create_dataset("id", data=np.array([s.encode() for s in ids], dtype="S32"))
            g.create_dataset("captions", data=np.array([s.encode() for s in caps], dtype="S200"))
        else:
            g.create_dataset("id", data=ids, dtype=h5py.string_dtype())
            g.create_dataset("captions", data=caps, dtype=h5py.string_dtype())
        g.create_dataset("offset", data=offsets)
        g.create_dataset("length", data=lengths)
        g.create_dataset("persons", data=np.array([m.shape[1] for _, m, _ in clips], np.int32))
        f.attrs["format_version"] = 1
        f.attrs["split"] = "train"


@pytest.mark.parametrize("fixed_strings", [False, True])
def test_h5py_written_split_is_read_by_vimo(vimo_bin, tmp_path, fixed_strings):
    rng = np.random.default_rng(0)
    clips = [("walk_01", rng.standard_normal((30, 2, 262)), ["two people walk", "they stroll side by side"]),
             ("solo", rng.standard_normal((17, 1, 262)), ["a person waves"]),
             ("quiet", rng.standard_normal((21, 2, 262)), [])]
    path = tmp_path / "train.h5"
    write_h5py_split(path, clips, fixed_strings)
    info = json.loads(run_vimo(vimo_bin, "data", "show", path, "--json").stdout)
    assert info["ids"] == [c[0] for c in clips]
    assert info["lengths"] == [30, 17, 21]
    assert info["offsets"] == [0, 30, 47]
    assert info["clip_persons"] == [2, 1, 2]
    assert info["captions"] == [c[2] for c in clips]
    assert info["attrs"]["split"] == "train"
    for cid, m, _ in clips:
        out = tmp_path / f"{cid}.npy"
        run_vimo(vimo_bin, "data", "show", path, "--clip", cid, "--out", out)
        got = np.load(out)
        assert got.dtype == np.float32 and got.shape == m.shape
        np.testing.assert_array_equal(got, m.astype(np.float32))


def test_not_a_packed_file_is_named(vimo_bin, tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("motion", data=np.zeros((4, 2, 263), np.float32))
    p = run_vimo(vimo_bin, "data", "show", path, check=False)
    assert p.returncode != 0
    assert "other.h5" in p.stderr + p.stdout and "motion" in p.stderr + p.stdout
