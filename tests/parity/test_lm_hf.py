"""vimo's Llama against transformers' LlamaForCausalLM (and a PEFT LoRA adapter) on a tiny random model."""
import json
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from conftest import run_vimo  # noqa: E402

VOCAB = 128
TOL = 1e-4


def tiny_config(**kw):
    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 32}
    args = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                rms_norm_eps=1e-5, tie_word_embeddings=False, initializer_range=0.2,
                bos_token_id=1, eos_token_id=None, pad_token_id=0)
    if int(transformers.__version__.split(".")[0]) >= 5:
        args["rope_parameters"] = dict(rope, rope_theta=500000.0)
    else:
        args.update(rope_scaling=rope, rope_theta=500000.0)
    args.update(kw)
    return transformers.LlamaConfig(**args)


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(tiny_config()).eval()
    d = tmp_path_factory.mktemp("hf") / "tiny"
    model.save_pretrained(d)
    return model, d


def vimo_logits(vimo_bin, tmp_path, model_dir, seqs, *extra):
    out = tmp_path / "logits.npy"
    args = ["lm", "forward", "--model", model_dir, "--out", out, "--threads", "1", *extra]
    for s in seqs:
        args += ["--tokens", " ".join(map(str, s))]
    run_vimo(vimo_bin, *args)
    return np.load(out)


def test_single_sequence_logits(vimo_bin, hf, tmp_path):
    model, d = hf
    ids = torch.randint(0, VOCAB, (1, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(ids).logits[0].numpy()
    got = vimo_logits(vimo_bin, tmp_path, d, [ids[0].tolist()])
    assert got.shape == ref.shape and got.dtype == np.float32
    err = np.abs(got - ref).max()
    print(f"single max abs err {err:.3g}")
    assert err < TOL


@pytest.mark.parametrize("side", ["right", "left"])
def test_batched_padded_logits(vimo_bin, hf, tmp_path, side):
    model, d = hf
    g = torch.Generator().manual_seed(2)
    seqs = [torch.randint(2, VOCAB, (n,), generator=g).tolist() for n in (23, 9, 16)]
    T = max(map(len, seqs))
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, s in enumerate(seqs):
        sl = slice(T - len(s), T) if side == "left" else slice(0, len(s))
        ids[b, sl] = torch.tensor(s)
        mask[b, sl] = 1
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        ref = model(ids, attention_mask=mask, position_ids=pos).logits.numpy()
    got = vimo_logits(vimo_bin, tmp_path, d, seqs, "--padding", side)
    assert got.shape == (len(seqs), T, VOCAB)
    worst = 0.0
    for b, s in enumerate(seqs):
        r = ref[b, T - len(s):] if side == "left" else ref[b, :len(s)]
        worst = max(worst, float(np.abs(got[b, :len(s)] - r).max()))
        assert not got[b, len(s):].any()
    print(f"batched ({side} padding) max abs err {worst:.3g}")
    assert worst < TOL


def test_greedy_generation_with_cache_matches_generate(vimo_bin, hf):
    model, d = hf
    prompts = [[1, 17, 99, 3, 45, 8], [1, 5], [1, 60, 61, 62, 63]]
    got = run_vimo(vimo_bin, "lm", "generate", "--model", d, "--max-new", 32, "--greedy", "--threads", "1",
                   *sum((["--tokens", " ".join(map(str, p))] for p in prompts), [])).stdout.strip().splitlines()
    T = max(map(len, prompts))
    for b, p in enumerate(prompts):
        with torch.no_grad():  # one at a time: no padding on the reference side
            out = model.generate(torch.tensor([p]), max_new_tokens=32, do_sample=False, eos_token_id=None,
                                 pad_token_id=0)
        ref = out[0, len(p):].tolist()
        assert len(ref) == 32
        assert list(map(int, got[b].split())) == ref, f"sequence {b}"
    # And HF's own left-padded batch agrees with vimo's batch.
    ids = torch.zeros(len(prompts), T, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, p in enumerate(prompts):
        ids[b, T - len(p):] = torch.tensor(p)
        mask[b, T - len(p):] = 1
    with torch.no_grad():
        out = model.generate(ids, attention_mask=mask, max_new_tokens=32, do_sample=False, eos_token_id=None,
                             pad_token_id=0)
    for b in range(len(prompts)):
        assert list(map(int, got[b].split())) == out[b, T:].tolist()


def test_classifier_free_guidance_matches_transformers(vimo_bin, hf):
    """`--guidance g --negative IDS` against transformers' generate(guidance_scale=g, negative_prompt_ids=...)
    (its UnbatchedClassifierFreeGuidanceLogitsProcessor, which mixes log-softmaxed scores: the same argmax),
    greedy, a batch of prompts of different lengths whose twins are decoded beside them."""
    model, d = hf
    prompts = [[1, 17, 99, 3, 45, 8], [1, 60, 61, 62, 63]]
    neg = [1, 5]
    toks = sum((["--tokens", " ".join(map(str, p))] for p in prompts), [])
    plain = run_vimo(vimo_bin, "lm", "generate", "--model", d, "--max-new", 24, "--greedy", "--threads", "1",
                     *toks).stdout.strip().splitlines()
    changed = 0
    for g in (3.0, 0.5):
        got = run_vimo(vimo_bin, "lm", "generate", "--model", d, "--max-new", 24, "--greedy", "--threads", "1",
                       "--guidance", g, "--negative", " ".join(map(str, neg)), *toks).stdout.strip().splitlines()
        for b, p in enumerate(prompts):
            with torch.no_grad():
                out = model.generate(torch.tensor([p]), max_new_tokens=24, do_sample=False, eos_token_id=None,
                                     pad_token_id=0, guidance_scale=g, negative_prompt_ids=torch.tensor([neg]))
            ref = out[0, len(p):].tolist()
            assert len(ref) == 24
            assert list(map(int, got[b].split())) == ref, f"guidance {g}, sequence {b}"
            changed += got[b] != plain[b]
    assert changed > 0, "guidance changed no sequence: the comparison would not see it"
    p = run_vimo(vimo_bin, "lm", "generate", "--model", d, "--guidance", 2, *toks, check=False)
    assert p.returncode != 0 and "--guidance and --negative go together" in p.stderr + p.stdout


def test_sharded_checkpoint(vimo_bin, hf, tmp_path):
    model, _ = hf
    d = tmp_path / "sharded"
    model.save_pretrained(d, max_shard_size="60KB")
    assert (d / "model.safetensors.index.json").exists()
    ids = list(range(3, 30))
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].numpy()
    assert np.abs(vimo_logits(vimo_bin, tmp_path, d, [ids]) - ref).max() < TOL


def test_peft_lora_adapter(vimo_bin, hf, tmp_path):
    peft = pytest.importorskip("peft")
    _, d = hf
    base = transformers.LlamaForCausalLM.from_pretrained(d).eval()
    cfg = peft.LoraConfig(r=4, lora_alpha=12, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "gate_proj"])
    model = peft.get_peft_model(base, cfg)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2, generator=torch.Generator().manual_seed(len(n)))
    a = tmp_path / "adapter"
    model.save_pretrained(a)
    assert json.loads((a / "adapter_config.json").read_text())["r"] == 4
    ids = torch.randint(0, VOCAB, (1, 30), generator=torch.Generator().manual_seed(3))
    model.eval()
    with torch.no_grad():
        ref = model(ids).logits[0].numpy()
    got = vimo_logits(vimo_bin, tmp_path, d, [ids[0].tolist()], "--adapter", a)
    err = np.abs(got - ref).max()
    print(f"LoRA max abs err {err:.3g}")
    assert err < TOL
    without = vimo_logits(vimo_bin, tmp_path, d, [ids[0].tolist()])
    assert np.abs(without - ref).max() > 1e-2  # the adapter does change the output


def test_bad_inputs_fail_clearly(vimo_bin, hf, tmp_path):
    _, d = hf
    p = run_vimo(vimo_bin, "lm", "forward", "--model", d, "--tokens", f"1 2 {VOCAB}", "--out", tmp_path / "x.npy",
                 check=False)
    assert p.returncode != 0 and f"token id {VOCAB} is out of range" in p.stderr + p.stdout
    bad = tmp_path / "bad"
    bad.mkdir()
    cfg = json.loads((pathlib.Path(d) / "config.json").read_text())
    cfg["model_type"] = "mistral"
    (bad / "config.json").write_text(json.dumps(cfg))
    (bad / "model.safetensors").write_bytes((pathlib.Path(d) / "model.safetensors").read_bytes())
    p = run_vimo(vimo_bin, "lm", "forward", "--model", bad, "--tokens", "1 2", "--out", tmp_path / "x.npy", check=False)
    assert p.returncode != 0 and "model_type 'mistral' is not supported" in p.stderr + p.stdout
