"""`vimo pretrain` on a tiny HF base with LoRA and new vocabulary rows, then its exports: merged/ loads
in transformers, adapter/ applies in PEFT, both giving the trained run's logits; the merged
tokenizer.json holds the unified vocabulary; `vimo lm merge` writes the same merged weights again."""
import json
import pathlib
import sys

import pytest

sys.path[:0] = [str(pathlib.Path(__file__).parent), str(pathlib.Path(__file__).parents[1])]
from conftest import run_vimo  # noqa: E402
from pretrain_fixtures import (captions, load_hf, load_weights, motion_tokens, need, peft,  # noqa: E402,F401
                               pretrain_run, safetensors_torch, torch, transformers, vimo_run_logits)

np = need("numpy")
tokenizers = need("tokenizers")

TOL = 1e-4
PREFIX = "base_model.model."


def probe_sequences(info):
    """Text ids, a motion block with its specials, and random ids over the whole unified vocabulary."""
    v = info["vocab"]
    sp, mb = v["specials"], v["motion"]["base"]
    K, Q = v["motion"]["codebook_size"], v["motion"]["num_quantizers"]
    base_tok = tokenizers.Tokenizer.from_file(str(info["hf"] / "tokenizer.json"))
    text = base_tok.encode("two people shake hands slowly.", add_special_tokens=False).ids
    motion = [mb + q * K + (3 * t + 5 * q) % K for t in range(4) for _ in range(2) for q in range(Q)]
    s2 = [sp["<motion>"], *motion, sp["</motion>"], *text, sp["<|end|>"]]
    g = torch.Generator().manual_seed(3)
    s3 = torch.randint(0, info["V"], (37,), generator=g).tolist()
    seqs = [text, s2, s3]
    assert any(i >= info["base_vocab"] for s in seqs for i in s) and max(max(s) for s in seqs) < info["V"]
    return seqs


def compare_logits(got, ref_fn, seqs, label):
    assert got.shape[0] == len(seqs) and got.shape[1] == max(map(len, seqs)), got.shape
    worst = 0.0
    for b, s in enumerate(seqs):
        with torch.no_grad():
            ref = ref_fn(torch.tensor([s])).logits[0].numpy()
        assert got.shape[2] == ref.shape[1], f"vimo logits have {got.shape[2]} columns, reference {ref.shape[1]}"
        worst = max(worst, float(np.abs(got[b, :len(s)] - ref).max()))
    print(f"{label}: max abs logit err {worst:.3g}")
    return worst


def test_merged_loads_in_transformers_with_the_runs_logits(vimo_bin, pretrain_run, tmp_path):
    info = pretrain_run
    merged = info["run"] / "merged"
    cfg = json.loads((merged / "config.json").read_text())
    assert cfg["vocab_size"] == info["V"], (cfg["vocab_size"], info["V"])
    model, loading = transformers.LlamaForCausalLM.from_pretrained(merged, dtype=torch.float32,
                                                                   output_loading_info=True)
    assert not loading["missing_keys"], f"merged/ lacks {loading['missing_keys']}"
    model.eval()
    seqs = probe_sequences(info)
    got = vimo_run_logits(vimo_bin, tmp_path, info["run"], seqs)
    err = compare_logits(got, model, seqs, f"merged tied={info['tied']}")
    assert err <= TOL, f"transformers on merged/ differs from the run by {err:.3g} (max abs logit)"
    # Base rows stay frozen, and training did change the model (LoRA B moved off zero and was merged).
    base, mw = load_weights(info["hf"]), load_weights(merged)
    n = info["base_vocab"]
    for k in ("model.embed_tokens.weight",) + (() if info["tied"] else ("lm_head.weight",)):
        assert k in mw, f"merged/ has no {k}"
        assert mw[k].shape == (info["V"], base[k].shape[1]), (k, mw[k].shape)
        assert torch.equal(mw[k][:n], base[k]), f"{k}: rows below {n} changed"
    changed = [k for k in base if "layers." in k and "_proj" in k and not torch.equal(base[k], mw[k])]
    assert changed, "no merged projection differs from the base: the LoRA update is missing"


def test_adapter_applies_in_peft_with_the_runs_logits(vimo_bin, pretrain_run, tmp_path):
    info = pretrain_run
    adapter = info["run"] / "adapter"
    acfg = json.loads((adapter / "adapter_config.json").read_text())
    assert acfg["peft_type"] == "LORA" and acfg["r"] == 4 and float(acfg.get("lora_dropout", 0)) == 0.0
    assert "embed_tokens" in acfg["modules_to_save"] and (info["tied"] or "lm_head" in acfg["modules_to_save"])
    saved = safetensors_torch.load_file(str(adapter / "adapter_model.safetensors"))
    emb = saved[PREFIX + "model.embed_tokens.weight"]
    assert emb.shape[0] == info["V"]
    assert any(k.endswith("lora_B.weight") and saved[k].abs().max() > 0 for k in saved), "every lora_B is zero"
    base = load_hf(info["hf"])
    # New rows of the resized base are placeholders; PEFT's modules_to_save puts the saved full matrices
    # in their place (checked below), so their initialization does not matter.
    base.resize_token_embeddings(info["V"], mean_resizing=False)
    model = peft.PeftModel.from_pretrained(base, adapter).eval()
    assert torch.equal(model.get_input_embeddings().weight, emb)
    seqs = probe_sequences(info)
    got = vimo_run_logits(vimo_bin, tmp_path, info["run"], seqs)
    err = compare_logits(got, model, seqs, f"PEFT tied={info['tied']}")
    assert err <= TOL, (f"PEFT on adapter/ differs from the run by {err:.3g} (max abs logit)" + (
        "; with a tied head, PEFT leaves lm_head on the resized base's rows unless the adapter also holds "
        "base_model.model.lm_head.weight and adapter_config.json sets ensure_weight_tying: true "
        "(or lists lm_head in modules_to_save)" if info["tied"] else ""))
    # PEFT's own merge of this adapter gives merged/'s tensors.
    ref = model.merge_and_unload().state_dict()
    mw = load_weights(info["run"] / "merged")
    worst = max(float((mw[k] - ref[k]).abs().max()) for k in mw)
    print(f"merged/ vs PEFT merge_and_unload: max abs {worst:.3g}")
    assert worst <= 1e-6


def test_merged_tokenizer_holds_the_unified_vocabulary(pretrain_run):
    info = pretrain_run
    v, V = info["vocab"], info["V"]
    tok = tokenizers.Tokenizer.from_file(str(info["run"] / "merged" / "tokenizer.json"))
    base = tokenizers.Tokenizer.from_file(str(info["hf"] / "tokenizer.json"))
    assert tok.get_vocab_size(with_added_tokens=True) == V
    assert v["text_tokenizer"]["size"] == info["base_vocab"]
    names = ["<motion>", "</motion>", "<motion_a>", "</motion_a>", "<motion_b>", "</motion_b>", "<|system|>",
             "<|user|>", "<|assistant|>", "<|end|>", "<pad>"]
    assert set(names) <= set(v["specials"]), sorted(set(names) - set(v["specials"]))
    for name, i in v["specials"].items():
        assert tok.token_to_id(name) == i, f"{name}: tokenizer id {tok.token_to_id(name)}, vocab.json {i}"
    base_vocab = base.get_vocab(with_added_tokens=True)
    merged_vocab = tok.get_vocab(with_added_tokens=True)
    assert all(merged_vocab.get(t) == i for t, i in base_vocab.items()), "a text token changed its id"
    added = tok.get_added_tokens_decoder()
    mb = v["motion"]["base"]
    assert mb + v["motion"]["codebook_size"] * v["motion"]["num_quantizers"] == V
    extra = range(info["base_vocab"], V)
    missing = [i for i in extra if i not in added]
    assert not missing, f"ids {missing[:5]}... are not added tokens of merged/tokenizer.json"
    assert len({added[i].content for i in extra}) == len(extra), "two new ids share a token string"
    for i in (mb, mb + 7, V - 1, v["specials"]["<motion>"]):
        assert tok.encode(added[i].content, add_special_tokens=False).ids == [i], added[i].content
    for c in captions(20, seed=3):
        assert tok.encode(c, add_special_tokens=False).ids == base.encode(c, add_special_tokens=False).ids
    ids = tok.encode("two people<motion> shake", add_special_tokens=False).ids
    assert v["specials"]["<motion>"] in ids


def test_lm_merge_writes_the_same_weights(vimo_bin, pretrain_run):
    info = pretrain_run
    out = info["run"].parent / "merged_again"
    run_vimo(vimo_bin, "lm", "merge", "--run", info["run"], "--out", out)
    a, b = load_weights(info["run"] / "merged"), load_weights(out)
    assert set(a) == set(b), sorted(set(a) ^ set(b))
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    print(f"lm merge vs merged/: max abs {worst:.3g} over {len(a)} tensors")
    assert worst <= 1e-6
    ca, cb = (json.loads((d / "config.json").read_text()) for d in (info["run"] / "merged", out))
    assert cb["vocab_size"] == info["V"] and cb.get("tie_word_embeddings") == ca.get("tie_word_embeddings")
    tok = tokenizers.Tokenizer.from_file(str(out / "tokenizer.json"))
    ref = tokenizers.Tokenizer.from_file(str(info["run"] / "merged" / "tokenizer.json"))
    assert tok.get_vocab(with_added_tokens=True) == ref.get_vocab(with_added_tokens=True)
