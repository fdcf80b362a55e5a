"""vimo tokenizer encode/decode against the PyTorch reference RQ-VAE (bench/tokenizer_reference.py)
holding the same weights, plus the errors for bad runs and bad codes (nothing written on failure)."""
import os
import pathlib
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from conftest import SOURCE_DIR, run_vimo

sys.path.insert(0, str(SOURCE_DIR / "bench"))
from tokenizer_reference import Rqvae  # noqa: E402

ARCH = dict(width=16, depth=2, code_dim=8, codebook_size=16, num_quantizers=3)


def make_run(root: pathlib.Path, seed=0, root_relative=True):
    """A tokenizer run directory written by Python: config.yaml + one complete checkpoint."""
    torch.manual_seed(seed)
    arch = dict(ARCH, root_relative=root_relative)
    m = Rqvae(**arch).eval()
    with torch.no_grad():
        for layer in m.quantizer.layers:
            layer.codebook.normal_()
            layer.inited.fill_(1)
        m.normalizer.mean.normal_(0, 0.1)
        m.normalizer.std.uniform_(0.5, 1.5)
    ck = root / "checkpoints" / "step_00000001"
    ck.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(ck / "model.safetensors"))
    (ck / "DONE").write_text("complete\n")
    (root / "latest").write_text("checkpoints/step_00000001\n")
    (root / "config.yaml").write_text("model:\n" + "".join(f"  {k}: {str(v).lower()}\n" for k, v in arch.items()))
    return m


@pytest.mark.parametrize("root_relative", [True, False])
def test_encode_decode_match_reference(vimo_bin, tmp_path, root_relative):
    run = tmp_path / "run"
    m = make_run(run, root_relative=root_relative)
    clip = torch.randn(24, 2, 262)
    np.save(tmp_path / "clip.npy", clip.numpy())
    run_vimo(vimo_bin, "tokenizer", "encode", "--run", run, "--input", tmp_path / "clip.npy", "--out", tmp_path / "codes.npy")
    codes = np.load(tmp_path / "codes.npy")
    assert codes.shape == (6, 2, 3) and codes.dtype.kind == "i"
    with torch.no_grad():
        recon, _, idx, _ = m(clip.permute(1, 0, 2))
    assert np.array_equal(codes, idx.permute(1, 0, 2).numpy())
    run_vimo(vimo_bin, "tokenizer", "decode", "--run", run, "--codes", tmp_path / "codes.npy", "--out", tmp_path / "back.npy")
    back = np.load(tmp_path / "back.npy")
    assert back.shape == (24, 2, 262)
    np.testing.assert_allclose(back, recon.permute(1, 0, 2).numpy(), rtol=1e-4, atol=1e-4)


def test_bad_inputs_give_clear_errors_and_write_nothing(vimo_bin, tmp_path):
    run = tmp_path / "run"
    make_run(run)
    out = tmp_path / "out.npy"
    # Codes out of range at decode.
    np.save(tmp_path / "bad_codes.npy", np.full((4, 2, 3), 16, dtype=np.int64))
    p = run_vimo(vimo_bin, "tokenizer", "decode", "--run", run, "--codes", tmp_path / "bad_codes.npy", "--out", out, check=False)
    assert p.returncode != 0 and "0..15" in p.stderr + p.stdout and not out.exists()
    # Too many layers.
    np.save(tmp_path / "deep.npy", np.zeros((4, 2, 5), dtype=np.int64))
    p = run_vimo(vimo_bin, "tokenizer", "decode", "--run", run, "--codes", tmp_path / "deep.npy", "--out", out, check=False)
    assert p.returncode != 0 and "1 <= L <= 3" in p.stderr + p.stdout and not out.exists()
    # Feature dimension mismatch.
    np.save(tmp_path / "clip263.npy", np.zeros((8, 2, 263), dtype=np.float32))
    p = run_vimo(vimo_bin, "tokenizer", "encode", "--run", run, "--input", tmp_path / "clip263.npy", "--out", out, check=False)
    assert p.returncode != 0 and "262" in p.stderr + p.stdout and not out.exists()
    # Missing run.
    np.save(tmp_path / "clip.npy", np.zeros((8, 2, 262), dtype=np.float32))
    p = run_vimo(vimo_bin, "tokenizer", "encode", "--run", tmp_path / "nope", "--input", tmp_path / "clip.npy", "--out", out, check=False)
    assert p.returncode != 0 and "does not exist" in p.stderr + p.stdout and not out.exists()
    # Corrupt weights.
    (run / "checkpoints" / "step_00000001" / "model.safetensors").write_bytes(b"\x10\x00garbage")
    p = run_vimo(vimo_bin, "tokenizer", "encode", "--run", run, "--input", tmp_path / "clip.npy", "--out", out, check=False)
    assert p.returncode != 0 and "cannot load tokenizer weights" in p.stderr + p.stdout and not out.exists()
    # A run without a complete checkpoint.
    (run / "checkpoints" / "step_00000001" / "DONE").unlink()
    p = run_vimo(vimo_bin, "tokenizer", "encode", "--run", run, "--input", tmp_path / "clip.npy", "--out", out, check=False)
    assert p.returncode != 0 and "no complete checkpoint" in p.stderr + p.stdout and not out.exists()
