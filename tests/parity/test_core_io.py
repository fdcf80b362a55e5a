"""Tensor files and TensorBoard events exchanged with the Python reference libraries
(numpy, safetensors, tensorboard): vimo reads what they write and they read what vimo writes."""
import json

import numpy as np
import pytest
from conftest import run_vimo

NUMPY_DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]


def sample(dtype, shape=(3, 4)):
    x = np.arange(1, 1 + int(np.prod(shape)), dtype=np.float64).reshape(shape)
    if dtype == "bool":
        return x % 3 == 0
    if dtype in ("int8", "uint8"):
        return (x % 100).astype(dtype)
    return (x * (0.37 if dtype.startswith("float") else 1)).astype(dtype)


@pytest.mark.parametrize("dtype", NUMPY_DTYPES)
def test_npy_numpy_to_vimo_to_numpy(vimo_bin, tmp_path, dtype):
    for shape in [(5,), (2, 3, 4), ()]:
        a = sample(dtype, shape)
        np.save(tmp_path / "a.npy", a)
        run_vimo(vimo_bin, "tensors", "convert", tmp_path / "a.npy", tmp_path / "b.npy")
        b = np.load(tmp_path / "b.npy")
        assert b.dtype == a.dtype and b.shape == a.shape
        np.testing.assert_array_equal(a, b)


def test_safetensors_python_to_vimo_to_python(vimo_bin, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    tensors = {f"t.{d}": torch.from_numpy(sample(d)) for d in NUMPY_DTYPES}
    tensors["bf16"] = torch.linspace(-3, 3, 12).reshape(3, 4).to(torch.bfloat16)
    tensors["model.layers.0.self_attn.q_proj.weight"] = torch.randn(8, 8)
    save_file(tensors, tmp_path / "py.safetensors", metadata={"format": "pt", "note": "x"})
    run_vimo(vimo_bin, "tensors", "convert", tmp_path / "py.safetensors", tmp_path / "vimo.safetensors")
    back = load_file(tmp_path / "vimo.safetensors")
    assert set(back) == set(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype, k
        assert torch.equal(back[k], v), k
    from safetensors import safe_open

    with safe_open(tmp_path / "vimo.safetensors", "pt") as f:
        assert f.metadata() == {"format": "pt", "note": "x"}
    shown = run_vimo(vimo_bin, "tensors", "show", tmp_path / "vimo.safetensors").stdout
    assert "model.layers.0.self_attn.q_proj.weight  F32   [8, 8]" in shown
    assert "BF16" in shown


def test_npy_to_safetensors_and_back(vimo_bin, tmp_path):
    from safetensors.numpy import load_file

    a = np.random.default_rng(0).standard_normal((10, 2, 262)).astype(np.float32)
    np.save(tmp_path / "clip.npy", a)
    run_vimo(vimo_bin, "tensors", "convert", tmp_path / "clip.npy", tmp_path / "clip.safetensors", "--name", "motion")
    np.testing.assert_array_equal(load_file(tmp_path / "clip.safetensors")["motion"], a)
    run_vimo(vimo_bin, "tensors", "convert", tmp_path / "clip.safetensors", tmp_path / "again.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "again.npy"), a)


def test_tensorboard_reader_loads_vimo_events(vimo_bin, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rng = np.random.default_rng(1)
    expected = {}
    with open(tmp_path / "metrics.jsonl", "w") as f:
        for step in range(1, 41):
            row = {"step": step, "split": "train", "loss": float(rng.random()), "lr": 1e-4 * step}
            if step % 10 == 0:
                f.write(json.dumps({"step": step, "split": "val", "mpjpe": float(rng.random() * 50)}) + "\n")
            f.write(json.dumps(row) + "\n")
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    expected = {}
    for r in rows:
        for k, v in r.items():
            if k not in ("step", "split", "time"):
                expected.setdefault(f"{r['split']}/{k}", []).append((r["step"], np.float32(v)))
    out = run_vimo(vimo_bin, "runs", "tb", tmp_path).stdout
    assert out.startswith(str(sum(len(v) for v in expected.values())))
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == sorted(expected)
    for tag, vals in expected.items():
        got = [(e.step, np.float32(e.value)) for e in acc.Scalars(tag)]
        assert got == vals, tag
