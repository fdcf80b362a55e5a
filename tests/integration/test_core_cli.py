"""The vimo binary's shared surface: help for every subcommand, config checks, and bad input
that must fail with a clear message, a non-zero exit and nothing half-written."""
import os
import re

import pytest

import numpy as np
from conftest import SOURCE_DIR, run_vimo


def subcommands(vimo_bin, path):
    out = run_vimo(vimo_bin, *path, "--help").stdout
    if "Subcommands:" not in out:
        return []
    block = out.split("Subcommands:", 1)[1]
    return [m.group(1) for m in re.finditer(r"^  (\S+)\s{2,}\S", block, re.M)]


def test_help_lists_every_subcommand_with_one_line(vimo_bin):
    top = subcommands(vimo_bin, [])
    for expected in ("config", "tensors", "runs"):
        assert expected in top
    seen = 0
    stack = [[c] for c in top]
    while stack:
        path = stack.pop()
        out = run_vimo(vimo_bin, *path, "--help").stdout
        assert "Usage:" in out, path
        seen += 1
        stack.extend(path + [c] for c in subcommands(vimo_bin, path))
    assert seen >= 6


def test_version_reports_runtime(vimo_bin):
    out = run_vimo(vimo_bin, "--version").stdout
    for key in ("vimo ", "libtorch ", "cuda:", "cudnn:", "blas:", "threads:"):
        assert key in out
    assert "blas: unknown" not in out


def test_every_shipped_config_validates(vimo_bin):
    if os.environ.get("VIMO_PARTIAL_BUILD") == "1":
        pytest.skip("built with a subset of VIMO_MODULES: not every config schema is compiled in")
    files = sorted(str(p) for p in (SOURCE_DIR / "configs").rglob("*.yaml"))
    if not files:
        return
    out = run_vimo(vimo_bin, "config", "check", *files).stdout
    assert out.count("ok    ") == len(files), out


def fails(vimo_bin, *args, expect):
    p = run_vimo(vimo_bin, *args, check=False)
    assert p.returncode != 0, (args, p.stdout, p.stderr)
    text = p.stdout + p.stderr
    assert re.search(expect, text), f"{expect!r} not in:\n{text}"
    return text


def test_bad_config_inputs(vimo_bin, tmp_path):
    fails(vimo_bin, "config", "check", "--schema", "x", tmp_path / "missing.yaml", expect=r"missing\.yaml")
    (tmp_path / "malformed.yaml").write_text("run:\n  dir: [oops\n")
    fails(vimo_bin, "config", "check", "--schema", "x", tmp_path / "malformed.yaml", expect=r"not valid YAML.*line")
    (tmp_path / "where.yaml").write_text("run:\n  dir: x\n")
    fails(vimo_bin, "config", "check", tmp_path / "where.yaml", expect=r"configs/<schema>/|--schema")


def test_bad_tensor_files(vimo_bin, tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.randn(32, 32)}, tmp_path / "ok.safetensors")
    data = (tmp_path / "ok.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-64])
    fails(vimo_bin, "tensors", "show", tmp_path / "cut.safetensors", expect=r"cut\.safetensors.*tensor 'w'.*truncated")
    np.save(tmp_path / "c.npy", np.zeros(4, dtype=np.complex64))
    fails(vimo_bin, "tensors", "show", tmp_path / "c.npy", expect=r"c\.npy.*dtype '<c8'")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    fails(vimo_bin, "tensors", "show", tmp_path / "o.npy", expect=r"Python objects")
    np.save(tmp_path / "f.npy", np.asfortranarray(np.zeros((3, 4), np.float32)))
    fails(vimo_bin, "tensors", "show", tmp_path / "f.npy", expect=r"Fortran order")
    # A failed conversion leaves no output and no temporary behind.
    fails(vimo_bin, "tensors", "convert", tmp_path / "cut.safetensors", tmp_path / "out.safetensors", expect="truncated")
    assert not any(p.name.startswith("out.safetensors") for p in tmp_path.iterdir())


def test_unwritable_run_directory(vimo_bin, tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "split": "train", "loss": 1.0}\n')
    (tmp_path / "tb").write_text("a file where the directory should be")
    fails(vimo_bin, "runs", "tb", tmp_path, expect=r"cannot create directory '.*tb'")
    assert (tmp_path / "tb").read_text().startswith("a file")
