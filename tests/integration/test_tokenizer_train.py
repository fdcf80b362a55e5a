"""`vimo tokenizer train/eval/encode --data` on a tiny packed dataset written with h5py:
run directory contents, resume, eval JSON, token cache layout, and clear errors for bad input."""
import json

import h5py
import numpy as np
import pytest

from conftest import SOURCE_DIR, run_vimo

TINY = ["model.width=16", "model.depth=1", "model.code_dim=8", "model.codebook_size=16", "model.num_quantizers=2",
        "data.window=16", "data.batch_size=4", "train.steps=6", "train.val_every=3", "train.ckpt_every=3",
        "train.log_every=2", "run.threads=1"]


def write_split(path, n, rng):
    """Packed layout of docs/data.md (motion + index group)."""
    lengths = rng.integers(20, 40, n)
    t = [np.linspace(0, 1, l)[:, None, None] for l in lengths]
    clips = [(np.sin(2 * np.pi * (x + rng.random((1, 2, 262)))) * 0.1).astype(np.float32) for x in t]
    with h5py.File(path, "w") as f:
        f.create_dataset("motion", data=np.concatenate(clips))
        g = f.create_group("index")
        g.create_dataset("id", data=[f"c{i}" for i in range(n)], dtype=h5py.string_dtype())
        g.create_dataset("captions", data=[""] * n, dtype=h5py.string_dtype())
        g.create_dataset("offset", data=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64))
        g.create_dataset("length", data=lengths.astype(np.int64))
        g.create_dataset("persons", data=np.full(n, 2, np.int32))
        f.attrs["format_version"] = 1
    return lengths


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    d = tmp_path_factory.mktemp("packed")
    rng = np.random.default_rng(0)
    lengths = {s: write_split(d / f"{s}.h5", n, rng) for s, n in [("train", 8), ("val", 3), ("test", 3)]}
    return d, lengths


def test_train_resume_eval_and_token_cache(vimo_bin, tmp_path, packed):
    d, lengths = packed
    run = tmp_path / "run"
    cfg = SOURCE_DIR / "configs" / "tokenizer" / "demo.yaml"
    p = run_vimo(vimo_bin, "tokenizer", "train", "--config", cfg, f"run.dir={run}", f"data.packed={d}", *TINY)
    assert "tokenizer step 6/6 | loss" in p.stdout + p.stderr
    for f in ["config.yaml", "log.txt", "metrics.jsonl", "latest", "best/model.safetensors",
              "checkpoints/step_00000006/optimizer.pt", "checkpoints/step_00000006/DONE"]:
        assert (run / f).exists(), f
    state = json.loads((run / "checkpoints/step_00000006/state.json").read_text())
    assert state["step"] == 6 and state["data"]["batches"] == 6
    # Same command again: already done. More steps: resumes from step 6 (architecture from the run).
    p = run_vimo(vimo_bin, "tokenizer", "train", "--config", cfg, f"run.dir={run}", f"data.packed={d}", *TINY)
    assert "nothing to do" in p.stdout + p.stderr
    more = [a for a in TINY if not a.startswith("train.steps") and not a.startswith("model.width")]
    p = run_vimo(vimo_bin, "tokenizer", "train", "--config", cfg, f"run.dir={run}", f"data.packed={d}",
                 *more, "train.steps=8")
    assert "resumed from" in p.stdout + p.stderr and "step 8/8" in p.stdout + p.stderr

    p = run_vimo(vimo_bin, "tokenizer", "eval", "--run", run, "--split", "test")
    res = json.loads((run / "eval_test.json").read_text())
    assert len(res["mpjpe_by_layers_mm"]) == 2 and len(res["codebook_usage"]) == 2
    assert res["frames"] == int(sum(l // 4 * 4 for l in lengths["test"])) * 2
    assert "MPJPE" in p.stdout

    out = tmp_path / "tokens.h5"
    run_vimo(vimo_bin, "tokenizer", "encode", "--run", run, "--data", d / "test.h5", "--out", out)
    with h5py.File(out, "r") as f:
        assert f["codes"].shape == (int(sum((l + 3) // 4 for l in lengths["test"])), 2, 2)
        assert list(f["lengths"][:]) == [(l + 3) // 4 for l in lengths["test"]]
        assert f["codes"][:].max() < 16 and f["codes"][:].min() >= 0
        assert f.attrs["codebook_size"] == 16
        assert [s.decode() if isinstance(s, bytes) else s for s in f["ids"][:]] == ["c0", "c1", "c2"]


def test_bad_inputs(vimo_bin, tmp_path, packed):
    d, _ = packed
    cfg = SOURCE_DIR / "configs" / "tokenizer" / "demo.yaml"
    p = run_vimo(vimo_bin, "tokenizer", "train", "--config", cfg, f"run.dir={tmp_path / 'r1'}",
                 f"data.packed={tmp_path / 'missing'}", *TINY, check=False)
    assert p.returncode != 0 and "vimo data prepare" in p.stderr + p.stdout
    assert not (tmp_path / "r1").exists()
    p = run_vimo(vimo_bin, "tokenizer", "train", "--config", cfg, f"run.dir={tmp_path / 'r2'}",
                 f"data.packed={d}", *TINY, "model.feature_dim=263", check=False)
    assert p.returncode != 0 and "model.feature_dim=263" in p.stderr + p.stdout
    assert not (tmp_path / "r2").exists()
    p = run_vimo(vimo_bin, "tokenizer", "eval", "--run", tmp_path / "nope", check=False)
    assert p.returncode != 0 and "does not exist" in p.stderr + p.stdout
