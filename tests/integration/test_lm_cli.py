"""`vimo lm` commands end to end: configs validate, a tiny model is built, run and sampled."""
import numpy as np

from conftest import SOURCE_DIR, run_vimo


def test_configs_check(vimo_bin):
    files = sorted((SOURCE_DIR / "configs" / "lm").glob("*.yaml"))
    assert len(files) >= 2
    p = run_vimo(vimo_bin, "config", "check", *files)
    assert p.stdout.count("ok") == len(files)


def test_init_forward_generate(vimo_bin, tmp_path):
    d = tmp_path / "tiny"
    run_vimo(vimo_bin, "lm", "init", "--config", SOURCE_DIR / "configs" / "lm" / "tiny.yaml", "--out", d,
             "model.num_layers=2", "vocab.size=600")
    assert (d / "config.json").exists() and (d / "model.safetensors").exists()
    run_vimo(vimo_bin, "lm", "forward", "--model", d, "--tokens", "1 2 599", "--out", tmp_path / "l.npy",
             "--threads", 1)
    assert np.load(tmp_path / "l.npy").shape == (3, 600)
    out = run_vimo(vimo_bin, "lm", "generate", "--model", d, "--tokens", "1 2 3", "--tokens", "4",
                   "--max-new", 5, "--top-k", 20, "--top-p", 0.9, "--temperature", 0.7,
                   "--repetition-penalty", 1.3, "--seed", 3, "--threads", 1).stdout.split("\n")
    assert [len(line.split()) for line in out[:2]] == [5, 5]
    assert all(0 <= int(t) < 600 for line in out[:2] for t in line.split())
