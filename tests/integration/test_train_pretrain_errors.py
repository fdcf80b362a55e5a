"""Bad input to stage 2: each a named error, exit code non-zero, and no run directory left behind."""
import json

import pytest

from conftest import SOURCE_DIR, run_vimo


def make_tokens(vimo_bin, root, K, Q, clips_dir=None):
    """Synthetic clips -> packed data -> a 2-step RQ-VAE (K codes, Q levels) -> a token cache."""
    S, P = root / "synth", root / "packed"
    if not P.exists():
        run_vimo(vimo_bin, "data", "synth", "--out", S, "--clips", 16, "--seed", 1)
        run_vimo(vimo_bin, "data", "prepare", "--config", SOURCE_DIR / "configs/data/synthetic.yaml",
                 f"data.root={S}", f"data.out={P}")
    T, TOK = root / f"tok_{K}_{Q}", root / f"tokens_{K}_{Q}"
    run_vimo(vimo_bin, "tokenizer", "train", "--config", SOURCE_DIR / "configs/tokenizer/demo.yaml",
             f"run.dir={T}", f"data.packed={P}", "train.steps=2", "train.val_every=0", "train.log_every=1",
             f"model.codebook_size={K}", f"model.num_quantizers={Q}", "model.width=16", "model.code_dim=16",
             "data.batch_size=2", "run.threads=1")
    run_vimo(vimo_bin, "tokenizer", "encode", "--run", T, "--data", P, "--out", TOK)
    return T, TOK


@pytest.fixture(scope="module")
def world(vimo_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain_errors")
    tok, tokens = make_tokens(vimo_bin, root, 16, 2)
    other_tok, _ = make_tokens(vimo_bin, root, 32, 2)
    return {"root": root, "tok": tok, "tokens": tokens, "other_tok": other_tok}


def pretrain_fails(vimo_bin, run_dir, *overrides):
    p = run_vimo(vimo_bin, "pretrain", "--config", SOURCE_DIR / "configs/pretrain/demo.yaml", f"run.dir={run_dir}",
                 "train.steps=1", "run.threads=1", *overrides, check=False)
    assert p.returncode != 0, p.stdout + p.stderr
    assert not run_dir.exists(), f"a failed start left {sorted(run_dir.rglob('*'))}"
    return p.stdout + p.stderr


def test_missing_tokenizer_run(vimo_bin, world, tmp_path):
    err = pretrain_fails(vimo_bin, tmp_path / "run", f"model.tokenizer={tmp_path / 'nope'}", f"data.tokens={world['tokens']}")
    assert "nope" in err and "model.tokenizer" in err, err


def test_incomplete_tokenizer_run(vimo_bin, world, tmp_path):
    import shutil
    broken = tmp_path / "tok"
    shutil.copytree(world["tok"], broken)
    shutil.rmtree(broken / "checkpoints")
    for name in ("latest", "best"):
        p = broken / name
        if p.is_symlink() or p.is_file():
            p.unlink()
        elif p.is_dir():
            shutil.rmtree(p)
    err = pretrain_fails(vimo_bin, tmp_path / "run", f"model.tokenizer={broken}", f"data.tokens={world['tokens']}")
    assert str(broken) in err and "checkpoint" in err, err


def test_token_cache_of_another_tokenizer(vimo_bin, world, tmp_path):
    err = pretrain_fails(vimo_bin, tmp_path / "run", f"model.tokenizer={world['other_tok']}", f"data.tokens={world['tokens']}")
    assert "16" in err and "32" in err and "tokenizer encode" in err, err


def test_base_without_tokenizer_or_shard(vimo_bin, world, tmp_path):
    base = tmp_path / "base"
    run_vimo(vimo_bin, "lm", "init", "--config", SOURCE_DIR / "configs/lm/tiny.yaml", "--out", base)
    common = [f"model.base={base}", f"model.tokenizer={world['tok']}", f"data.tokens={world['tokens']}", "lora.enabled=true"]
    if not any((base / n).exists() for n in ("tokenizer.json", "tokenizer.model")):
        err = pretrain_fails(vimo_bin, tmp_path / "run", *common)
        assert str(base) in err and "tokenizer" in err, err
        (base / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}))
    for f in base.glob("*.safetensors"):
        f.unlink()
    err = pretrain_fails(vimo_bin, tmp_path / "run", *common)
    assert str(base) in err and "safetensors" in err, err


@pytest.mark.parametrize("bad_id", [-3, 1 << 40])
def test_tokenizer_json_with_an_impossible_id(vimo_bin, tmp_path, bad_id):
    tj = tmp_path / "tokenizer.json"
    tj.write_text(json.dumps({"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": None,
                              "post_processor": None, "decoder": None,
                              "model": {"type": "BPE", "vocab": {"a": 0, "b": bad_id}, "merges": []}}))
    p = run_vimo(vimo_bin, "text", "encode", "--tokenizer", tj, "ab", check=False)
    assert p.returncode not in (0, -11, 139), p  # an error, not a segfault
    assert "tokenizer.json" in p.stderr and str(bad_id) in p.stderr, p.stderr


def test_misspelt_command_is_an_error_with_a_suggestion(vimo_bin):
    p = run_vimo(vimo_bin, "pretrian", check=False)
    assert p.returncode == 2, p
    assert "pretrian" in p.stderr and "pretrain" in p.stderr.replace("pretrian", ""), p.stderr
