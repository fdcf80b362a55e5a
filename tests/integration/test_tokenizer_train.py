"""`vimo tokenizer train/eval/encode --data` on a tiny packed dataset written with h5py:
run directory contents, resume, eval JSON, token caches of every split (layout of docs/tokenizer.md),
and clear errors for bad input."""
import json
import shutil

import h5py
import numpy as np
import pytest

from conftest import SOURCE_DIR, run_vimo

TINY = ["model.width=16", "model.depth=1", "model.code_dim=8", "model.codebook_size=16", "model.num_quantizers=2",
        "data.window=16", "data.batch_size=4", "train.steps=6", "train.val_every=3", "train.ckpt_every=3",
        "train.log_every=2", "run.threads=1"]


def captions(split, i):
    """Clip i's captions (newline-joined in the packed file); every third clip has none."""
    return [] if i % 3 == 2 else [f"{split} clip {i} — les deux se saluent", "握手 again"][: 1 + i % 2]


def write_split(path, n, rng):
    """Packed layout of docs/data.md (motion + index group)."""
    split = path.stem
    lengths = rng.integers(20, 40, n)
    t = [np.linspace(0, 1, l)[:, None, None] for l in lengths]
    clips = [(np.sin(2 * np.pi * (x + rng.random((1, 2, 262)))) * 0.1).astype(np.float32) for x in t]
    with h5py.File(path, "w") as f:
        f.create_dataset("motion", data=np.concatenate(clips))
        g = f.create_group("index")
        g.create_dataset("id", data=[f"c{i}" for i in range(n)], dtype=h5py.string_dtype())
        g.create_dataset("captions", data=["\n".join(captions(split, i)) for i in range(n)],
                         dtype=h5py.string_dtype())
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


def strings(ds):
    return [s.decode() if isinstance(s, bytes) else s for s in ds[:]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, vimo_bin, packed):
    d, _ = packed
    run = tmp_path_factory.mktemp("tok") / "run"
    run_vimo(vimo_bin, "tokenizer", "train", "--config", SOURCE_DIR / "configs" / "tokenizer" / "demo.yaml",
             f"run.dir={run}", f"data.packed={d}", *TINY)
    return run


def test_train_resume_eval(vimo_bin, tmp_path, packed):
    d, lengths = packed
    run = tmp_path / "run"
    cfg = SOURCE_DIR / "configs" / "tokenizer" / "demo.yaml"
    p = run_vimo(vimo_bin, "tokenizer", "train", "--config", cfg, f"run.dir={run}", f"data.packed={d}", *TINY)
    assert "tokenizer step 6/6 | loss" in p.stdout + p.stderr
    for f in ["config.yaml", "log.txt", "metrics.jsonl", "latest", "best/model.safetensors",
              "checkpoints/step_00000006/optimizer.safetensors", "checkpoints/step_00000006/DONE"]:
        assert (run / f).exists(), f
    state = json.loads((run / "checkpoints/step_00000006/state.json").read_text())
    # The data position is the WindowLoader's: batches of 4 windows of 16 frames, one epoch being
    # about one pass over the train split's person-frames.
    per_epoch = -(-int(sum(lengths["train"])) * 2 // (16 * 4))
    assert state["step"] == 6 and state["data"]["loader"] == "windows"
    assert state["data"]["epoch"] * per_epoch + state["data"]["cursor"] == 6
    # Same command again: already done. More steps: resumes from step 6 (architecture from the run).
    p = run_vimo(vimo_bin, "tokenizer", "train", "--config", cfg, f"run.dir={run}", f"data.packed={d}", *TINY)
    assert "nothing to do" in p.stdout + p.stderr
    more = [a for a in TINY if not a.startswith("train.steps") and not a.startswith("model.width")]
    p = run_vimo(vimo_bin, "tokenizer", "train", "--config", cfg, f"run.dir={run}", f"data.packed={d}",
                 *more, "train.steps=8")
    assert "resumed from" in p.stdout + p.stderr and "step 8/8" in p.stdout + p.stderr
    assert "train.steps is 8, the checkpoint was trained toward 6" in p.stdout + p.stderr

    p = run_vimo(vimo_bin, "tokenizer", "eval", "--run", run, "--split", "test")
    res = json.loads((run / "eval_test.json").read_text())
    assert len(res["mpjpe_by_layers_mm"]) == 2 and len(res["codebook_usage"]) == 2
    assert res["frames"] == int(sum(l // 4 * 4 for l in lengths["test"])) * 2
    assert "MPJPE" in p.stdout
    # Decoding all levels' codes reconstructs what the forward pass did; aligned poses are closer.
    assert res["mpjpe_by_layers_mm"][-1] == pytest.approx(res["mpjpe_mm"], rel=1e-5)
    assert 0 < res["pa_mpjpe_mm"] <= res["mpjpe_mm"]
    # The same command under the evaluation group.
    run_vimo(vimo_bin, "eval", "tokenizer", "--run", run, "--split", "test", "--out", tmp_path / "e.json")
    again = json.loads((tmp_path / "e.json").read_text())
    assert again["mpjpe_mm"] == res["mpjpe_mm"] and again["pa_mpjpe_mm"] == res["pa_mpjpe_mm"]


def test_encode_every_split_into_token_caches(vimo_bin, tmp_path, packed, trained):
    d, lengths = packed
    # A config.yaml with a section this vimo does not know: the architecture comes from the weights.
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    with open(run / "config.yaml", "a") as f:
        f.write("future_section:\n  new_key: 1\n")
    out = tmp_path / "tokens"
    p = run_vimo(vimo_bin, "tokenizer", "encode", "--run", run, "--data", d, "--out", out)
    assert sorted(x.name for x in out.iterdir()) == ["test.h5", "train.h5", "val.h5"]
    for split in ["train", "val", "test"]:  # a progress line per split
        assert f"encode {d / split}.h5" in p.stderr + p.stdout
    for split, n in [("train", 8), ("val", 3), ("test", 3)]:
        with h5py.File(out / f"{split}.h5", "r") as f:
            steps = [(int(l) + 3) // 4 for l in lengths[split]]
            assert f["codes"].shape == (sum(steps), 2, 2) and f["codes"].dtype == np.int16
            assert list(f["lengths"][:]) == steps
            assert list(f["offsets"][:]) == list(np.cumsum([0] + steps[:-1]))
            assert list(f["frames"][:]) == list(lengths[split])
            assert list(f["persons"][:]) == [2] * n
            assert 0 <= f["codes"][:].min() and f["codes"][:].max() < 16
            assert strings(f["ids"]) == [f"c{i}" for i in range(n)]
            caps, offs = strings(f["captions"]), list(f["caption_offsets"][:])
            assert [caps[offs[i]:offs[i + 1]] for i in range(n)] == [captions(split, i) for i in range(n)]
            assert f.attrs["codebook_size"] == 16 and f.attrs["num_quantizers"] == 2
            assert f.attrs["downsample"] == 4 and f.attrs["format_version"] == 2
            assert f.attrs["tokenizer_run"] == str(run) and f.attrs["source"] == str(d / f"{split}.h5")
            assert f.attrs["tokenizer_checkpoint"].startswith(str(run))
    # One split file to one cache file: the same codes; rerunning rewrites in place.
    one = tmp_path / "one.h5"
    for _ in range(2):
        run_vimo(vimo_bin, "tokenizer", "encode", "--run", run, "--data", d / "test.h5", "--out", one)
    with h5py.File(one, "r") as a, h5py.File(out / "test.h5", "r") as b:
        assert np.array_equal(a["codes"][:], b["codes"][:])
    assert sorted(x.name for x in tmp_path.iterdir()) == ["one.h5", "run", "tokens"]  # no temporaries


def test_encode_refuses_missing_or_unfinished_runs(vimo_bin, tmp_path, packed):
    d, _ = packed
    out = tmp_path / "tokens"
    p = run_vimo(vimo_bin, "tokenizer", "encode", "--run", tmp_path / "nope", "--data", d, "--out", out, check=False)
    assert p.returncode != 0 and "does not exist" in p.stderr and "vimo tokenizer train" in p.stderr
    unfinished = tmp_path / "unfinished"
    (unfinished / "checkpoints" / "step_00000003").mkdir(parents=True)
    (unfinished / "config.yaml").write_text("model:\n  width: 16\n")
    p = run_vimo(vimo_bin, "tokenizer", "encode", "--run", unfinished, "--data", d, "--out", out, check=False)
    assert p.returncode != 0 and "no complete checkpoint" in p.stderr and str(unfinished) in p.stderr
    assert not out.exists()


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
