"""Shared helpers for the pre-training parity tests: tiny random Llamas and PEFT adapters, the Python
reference of one training step (loss and gradients), a byte-level BPE tokenizer over caption-like
text, and the synthetic data -> tokenizer -> `vimo pretrain` pipeline as a module-scope fixture.

Run it as a script (`python tests/parity/pretrain_fixtures.py`) to self-check the reference side
(float32 against float64, per-sample packing against transformers' own packed attention, PEFT names
against the saved adapter file) without a vimo binary."""
import importlib
import json
import os
import pathlib
import random
import re
import sys

import pytest

sys.path[:0] = [str(pathlib.Path(__file__).parent), str(pathlib.Path(__file__).parents[1])]
from conftest import SOURCE_DIR, reference, run_vimo  # noqa: E402


# A missing reference package skips (fails under CI=true: tests/conftest.py).
need = reference


torch = need("torch")
transformers = need("transformers")
peft = need("peft")
safetensors_torch = need("safetensors.torch")

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
_LORA_DEFAULT = re.compile(r"\.(lora_[AB])\.default\.")


# ---- tiny models and adapters ----

def tiny_config(vocab_size, tied, **kw):
    """A tiny Llama with Llama-3 rope scaling (hidden 64, 2 layers, 4 heads, 2 KV heads)."""
    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 32}
    args = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-5,
                tie_word_embeddings=tied, initializer_range=0.1, bos_token_id=1, eos_token_id=None, pad_token_id=0)
    if int(transformers.__version__.split(".")[0]) >= 5:
        args["rope_parameters"] = dict(rope, rope_theta=500000.0)
    else:
        args.update(rope_scaling=rope, rope_theta=500000.0)
    args.update(kw)
    return transformers.LlamaConfig(**args)


def make_hf_model(path, vocab_size, tied, seed=0, **kw):
    """Saves a random float32 LlamaForCausalLM to `path`; returns it (eval mode)."""
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(tiny_config(vocab_size, tied, **kw)).eval()
    model.save_pretrained(path)
    return model


def load_hf(path):
    return transformers.LlamaForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def make_adapter(base_dir, out_dir, rank=4, alpha=8, targets=TARGETS, seed=0):
    """A PEFT LoRA adapter on `targets` with non-zero random lora_B (so lora_A's gradients are
    non-trivial), dropout 0, written by save_pretrained. Returns the PeftModel."""
    base = load_hf(base_dir)
    cfg = peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=list(targets))
    model = peft.get_peft_model(base, cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    model.save_pretrained(out_dir)
    return model.eval()


def load_peft(base_dir, adapter_dir):
    return peft.PeftModel.from_pretrained(load_hf(base_dir), adapter_dir, is_trainable=True).eval()


def saved_lora_name(param_name):
    """PeftModel parameter name -> the name in adapter_model.safetensors (PEFT drops the adapter name)."""
    return _LORA_DEFAULT.sub(r".\1.", param_name)


# ---- the reference training step ----

def _input_embedding(model):
    return model.get_input_embeddings()


def _output_head(model):
    return model.get_output_embeddings()


def _prepare(model, new_rows_from):
    """Zeroes grads and makes the embedding (and an untied head) require grad when new rows train."""
    model.zero_grad(set_to_none=True)
    emb, head = _input_embedding(model).weight, _output_head(model).weight
    for w in {id(emb): emb, id(head): head}.values():
        w.grad = None
        w.requires_grad_(new_rows_from is not None)


def _collect(model, new_rows_from, loss):
    out = {"loss": loss.detach().reshape(())}
    for n, p in model.named_parameters():
        if "lora_" in n and p.requires_grad:
            assert p.grad is not None, f"no gradient for {n}"
            out[saved_lora_name(n)] = p.grad.detach().clone()
    if new_rows_from is not None:
        emb, head = _input_embedding(model).weight, _output_head(model).weight
        out["new_rows.embed_tokens"] = emb.grad[new_rows_from:].detach().clone()
        if head is not emb:
            out["new_rows.lm_head"] = head.grad[new_rows_from:].detach().clone()
    return out


def hf_step(model, batch, new_rows_from=None):
    """transformers' forward over the batch as given (padding as attention_mask = segment_ids >= 0),
    the loss as transformers' labels path takes it (unshifted labels, mean over non-ignored targets;
    computed here in the model's dtype, so a float64 model gives a float64 reference), gradients."""
    _prepare(model, new_rows_from)
    kw = {"use_cache": False}
    if "segment_ids" in batch:
        kw["attention_mask"] = (batch["segment_ids"] >= 0).long()
    if "position_ids" in batch:
        kw["position_ids"] = batch["position_ids"]
    logits = model(batch["input_ids"], **kw).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                             batch["labels"][:, 1:].reshape(-1), ignore_index=-100)
    loss.backward()
    return _collect(model, new_rows_from, loss)


def hf_labels_loss(model, batch):
    """transformers' own loss for the batch (model(..., labels=...)), for checking hf_step's formula."""
    kw = {"use_cache": False, "labels": batch["labels"]}
    if "segment_ids" in batch:
        kw["attention_mask"] = (batch["segment_ids"] >= 0).long()
    if "position_ids" in batch:
        kw["position_ids"] = batch["position_ids"]
    with torch.no_grad():
        return float(model(batch["input_ids"], **kw).loss)


def split_segments(batch):
    """[(input_ids [n], labels [n])] for each segment of each row, in order; padding (-1) dropped."""
    ids, labels = batch["input_ids"], batch["labels"]
    seg = batch.get("segment_ids", torch.zeros_like(ids))
    out = []
    for b in range(ids.shape[0]):
        for s in sorted(set(seg[b].tolist()) - {-1}):
            where = (seg[b] == s).nonzero().flatten()
            assert (where == torch.arange(where[0], where[-1] + 1)).all(), "a segment must be contiguous"
            out.append((ids[b, where], labels[b, where]))
    return out


def per_sample_step(model, batch, new_rows_from=None):
    """Independent reference for packed rows: every segment runs alone as its own sequence (positions
    from 0, plain causal attention); the loss is the summed per-token CE over all segments divided
    by the total number of targets."""
    _prepare(model, new_rows_from)
    total, count = 0.0, 0
    for ids, labels in split_segments(batch):
        logits = model(ids[None], use_cache=False).logits[0]
        tgt = labels[1:]
        total = total + torch.nn.functional.cross_entropy(logits[:-1], tgt, ignore_index=-100, reduction="sum")
        count += int((tgt != -100).sum())
    assert count > 0
    loss = total / count
    loss.backward()
    return _collect(model, new_rows_from, loss)


def relative_errors(got, ref):
    """{name: max|got - ref| / max|ref|} over the reference's tensors; asserts names and shapes."""
    missing = sorted(set(ref) - set(got))
    assert not missing, f"vimo's output lacks {missing[:5]}{' ...' if len(missing) > 5 else ''}"
    errs = {}
    for n, r in ref.items():
        g = got[n].to(torch.float64)
        r = r.to(torch.float64)
        assert g.numel() == r.numel() and (g.shape == r.shape or g.dim() + r.dim() <= 1), \
            f"{n}: shape {tuple(g.shape)}, reference {tuple(r.shape)}"
        scale = float(r.abs().max())
        assert scale > 0, f"reference {n} is all zero: the case does not exercise it"
        errs[n] = float((g.reshape(r.shape) - r).abs().max()) / scale
    return errs


def report(errs, label=""):
    worst = max(errs, key=errs.get)
    print(f"{label} loss rel err {errs.get('loss', float('nan')):.3g}; worst {worst} {errs[worst]:.3g}; "
          f"{len(errs)} tensors")
    for n, e in sorted(errs.items(), key=lambda kv: -kv[1])[:8]:
        print(f"   {e:.3g}  {n}")


def vimo_step(vimo_bin, tmp_path, model_dir, batch, adapter_dir=None, new_rows_from=None, tag="step", full=False):
    """Runs `vimo lm step` on `batch` (dict of int64 tensors); returns its output tensors."""
    bpath, opath = tmp_path / f"{tag}_batch.safetensors", tmp_path / f"{tag}_out.safetensors"
    safetensors_torch.save_file({k: v.contiguous() for k, v in batch.items()}, str(bpath))
    args = ["lm", "step", "--model", model_dir, "--batch", bpath, "--out", opath, "--threads", "1"]
    if adapter_dir is not None:
        args += ["--adapter", adapter_dir]
    if new_rows_from is not None:
        args += ["--new-rows-from", new_rows_from]
    if full:
        args += ["--full"]
    run_vimo(vimo_bin, *args)
    return safetensors_torch.load_file(str(opath))


# ---- batches ----

def plain_batch(vocab, B=2, T=24, prompt=(7, 11), seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (B, T), generator=g)
    labels = ids.clone()
    for b, p in enumerate(prompt):
        labels[b, :p] = -100
    return {"input_ids": ids, "labels": labels}


def padded_batch(vocab, lengths=(24, 15), prompt=(5, 4), seed=1):
    """Right padding: padded positions hold random ids (they must not matter), label -100, segment -1."""
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    ids = torch.randint(0, vocab, (len(lengths), T), generator=g)
    labels = ids.clone()
    seg = torch.zeros_like(ids)
    for b, (n, p) in enumerate(zip(lengths, prompt)):
        labels[b, :p] = -100
        labels[b, n:] = -100
        seg[b, n:] = -1
    return {"input_ids": ids, "labels": labels, "segment_ids": seg}


def packed_batch(vocab, rows=((12, 9, 11), (14, 10)), T=32, seed=2):
    """Several samples per row: positions restart, labels -100 on each sample's first token and a short
    prompt, trailing padding segment -1."""
    g = torch.Generator().manual_seed(seed)
    B = len(rows)
    ids = torch.randint(0, vocab, (B, T), generator=g)
    labels = torch.full((B, T), -100, dtype=torch.long)
    pos = torch.zeros((B, T), dtype=torch.long)
    seg = torch.full((B, T), -1, dtype=torch.long)
    for b, lens in enumerate(rows):
        start = 0
        for s, n in enumerate(lens):
            sl = slice(start, start + n)
            prompt = 1 + (s + b) % 3
            labels[b, start + prompt:start + n] = ids[b, start + prompt:start + n]
            pos[b, sl] = torch.arange(n)
            seg[b, sl] = s
            start += n
        pos[b, start:] = torch.arange(T - start)  # padding: any positions; its own restart
    return {"input_ids": ids, "labels": labels, "position_ids": pos, "segment_ids": seg}


# ---- text tokenizer over caption-like sentences ----

SUBJECTS = ["two people", "one person", "the first person", "the second person", "a man", "a woman",
            "the other person", "person a", "person b", "they", "both people", "the taller one", "the dancer"]
ACTIONS = ["shake hands", "pushes the other", "hug each other", "waves at the other", "dance together",
           "walks toward the other", "bows to the partner", "give a high five", "pulls the other by the arm",
           "chases the other", "kicks a ball to the other", "blocks a punch", "sits down", "turns around",
           "steps back", "jumps over", "spins in place", "claps twice", "throws a ball", "catches the ball",
           "lifts the other", "follows the leader", "bumps shoulders", "points forward", "fights back"]
ENDINGS = ["", " slowly", " quickly", " twice", " gently", " and then walks away", " and laughs",
           " while stepping forward", " with the left hand", " with both hands", " at the same time",
           " before leaving", " in a circle"]
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"


def captions(n, seed=0):
    r = random.Random(seed)
    return [f"{r.choice(SUBJECTS)} {r.choice(ACTIONS)}{r.choice(ENDINGS)}." for _ in range(n)]


def make_bpe_tokenizer(hf_dir, vocab_size=400):
    """Byte-level BPE (ByteLevel pre-tokenizer without prefix space, ByteLevel decoder, no normalizer)
    with <|begin_of_text|> and <|end_of_text|>, written as tokenizer.json + tokenizer_config.json."""
    tk = need("tokenizers")
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
                                     special_tokens=[BOS, EOS], show_progress=False)
    tok.train_from_iterator(captions(600), trainer=trainer)
    hf_dir = pathlib.Path(hf_dir)
    hf_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(hf_dir / "tokenizer.json"))
    (hf_dir / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": BOS, "eos_token": EOS,
        "model_max_length": 512, "add_prefix_space": False, "clean_up_tokenization_spaces": False}, indent=2))
    return tok


def make_hf_base(hf_dir, tied, seed=0):
    """A tiny random Llama whose vocabulary is the BPE tokenizer's (text ids + BOS/EOS)."""
    tok = make_bpe_tokenizer(hf_dir)
    n = tok.get_vocab_size(with_added_tokens=True)
    model = make_hf_model(hf_dir, n, tied, seed=seed, bos_token_id=tok.token_to_id(BOS),
                          eos_token_id=tok.token_to_id(EOS), pad_token_id=None)
    return model, tok


# ---- run directories ----

def load_weights(d):
    """All tensors of an HF directory's safetensors files (single file or shards)."""
    files = sorted(pathlib.Path(d).glob("*.safetensors"))
    assert files, f"no .safetensors in {d}"
    out = {}
    for f in files:
        out.update(safetensors_torch.load_file(str(f)))
    return out


def find_vocab_json(run_dir):
    """The run's unified vocabulary (format vimo-vocab): <run>/vocab.json, else <run>/lm/vocab.json,
    else the only vimo vocab.json under the run outside checkpoints."""
    run_dir = pathlib.Path(run_dir)
    cands = [run_dir / "vocab.json", run_dir / "lm" / "vocab.json"]
    cands += sorted(p for p in run_dir.rglob("vocab.json") if "checkpoints" not in p.parts)
    for p in cands:
        if p.is_file():
            j = json.loads(p.read_text())
            if j.get("format") == "vimo-vocab":
                return p, j
    raise AssertionError(f"no vimo vocab.json (format vimo-vocab) in {run_dir}: "
                         f"{sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob('*'))[:40]}")


def vimo_run_logits(vimo_bin, tmp_path, run_dir, seqs, tag="logits"):
    out = tmp_path / f"{tag}.npy"
    args = ["lm", "forward", "--run", run_dir, "--out", out, "--threads", "1"]
    for s in seqs:
        args += ["--tokens", " ".join(map(str, s))]
    run_vimo(vimo_bin, *args)
    import numpy as np
    return np.load(out)


def make_motion_tokens(vimo_bin, root):
    """Synthetic clips -> packed data -> a 4-step RQ-VAE (K=16, Q=2) -> a token cache. Returns
    (tokenizer run dir, token cache dir)."""
    root = pathlib.Path(root)
    S, P, T, TOK = root / "synth", root / "packed", root / "tok", root / "tokens"
    run_vimo(vimo_bin, "data", "synth", "--out", S, "--clips", 24, "--seed", 1)
    run_vimo(vimo_bin, "data", "prepare", "--config", SOURCE_DIR / "configs/data/synthetic.yaml",
             f"data.root={S}", f"data.out={P}")
    run_vimo(vimo_bin, "tokenizer", "train", "--config", SOURCE_DIR / "configs/tokenizer/demo.yaml",
             f"run.dir={T}", f"data.packed={P}", "train.steps=4", "train.val_every=0", "train.log_every=2",
             "model.codebook_size=16", "model.num_quantizers=2", "model.width=32", "model.code_dim=32",
             "data.batch_size=4", "run.threads=1")
    run_vimo(vimo_bin, "tokenizer", "encode", "--run", T, "--data", P, "--out", TOK)
    for split in ("train", "val", "test"):
        assert (TOK / f"{split}.h5").is_file(), f"tokenizer encode wrote no {split}.h5 in {TOK}"
    return T, TOK


def run_pretrain(vimo_bin, run_dir, hf_dir, tok_run, tokens):
    run_vimo(vimo_bin, "pretrain", "--config", SOURCE_DIR / "configs/pretrain/demo.yaml", f"run.dir={run_dir}",
             f"model.base={hf_dir}", f"model.tokenizer={tok_run}", f"data.tokens={tokens}", "train.steps=4",
             "train.val_every=0", "lora.enabled=true", "lora.rank=4", "lora.dropout=0", "run.threads=1",
             "data.max_length=256")
    for sub in ("merged", "adapter"):
        assert (pathlib.Path(run_dir) / sub).is_dir(), f"vimo pretrain wrote no {sub}/ in {run_dir}"


@pytest.fixture(scope="module")
def motion_tokens(vimo_bin, tmp_path_factory):
    return make_motion_tokens(vimo_bin, tmp_path_factory.mktemp("motion"))


@pytest.fixture(scope="module", params=["untied", "tied"])
def pretrain_run(request, vimo_bin, motion_tokens, tmp_path_factory):
    """A pre-training run on a tiny HF base (tied or untied head) with LoRA and new vocabulary rows.
    Returns dict(hf, run, tied, base_vocab, vocab (the parsed vocab.json), V)."""
    tied = request.param == "tied"
    root = tmp_path_factory.mktemp(f"pretrain_{request.param}")
    hf_dir, run_dir = root / "hf", root / "run"
    _, tok = make_hf_base(hf_dir, tied)
    run_pretrain(vimo_bin, run_dir, hf_dir, *motion_tokens)
    _, vocab = find_vocab_json(run_dir)
    return {"hf": hf_dir, "run": run_dir, "tied": tied, "base_vocab": tok.get_vocab_size(with_added_tokens=True),
            "vocab": vocab, "V": int(vocab["size"])}


# ---- self-check of the reference side (no vimo binary needed) ----

def _self_check(tmp):
    tmp = pathlib.Path(tmp)
    V, N = 300, 256
    for tied in (False, True):
        base_dir, ad_dir = tmp / f"base_{tied}", tmp / f"adapter_{tied}"
        make_hf_model(base_dir, V, tied)
        make_adapter(base_dir, ad_dir)
        saved = set(safetensors_torch.load_file(str(ad_dir / "adapter_model.safetensors")))
        model = load_peft(base_dir, ad_dir)
        model64 = load_peft(base_dir, ad_dir).double()
        for case, batch in (("plain", plain_batch(V)), ("padded", padded_batch(V)), ("packed", packed_batch(V))):
            step = per_sample_step if case == "packed" else hf_step
            ref = step(model, batch, N)
            names = {n for n in ref if n.endswith(".lora_A.weight") or n.endswith(".lora_B.weight")}
            assert names == saved, (sorted(names - saved)[:3], sorted(saved - names)[:3])
            ref64 = step(model64, batch, N)
            e64 = relative_errors(ref, ref64)
            report(e64, f"tied={tied} {case}: float32 vs float64")
            if case != "packed":
                hl = hf_labels_loss(model, batch)
                print(f"   transformers' labels loss {hl:.7f}, hf_step {float(ref['loss']):.7f}")
                assert abs(hl - float(ref["loss"])) <= 1e-6 * abs(hl)
            # Independent paths agree: per-sample vs transformers' batched/padded/packed attention.
            if case == "packed":  # transformers finds packed samples from restarting position_ids alone
                alt = hf_step(model64, {k: v for k, v in batch.items() if k != "segment_ids"}, N)
            else:
                alt = per_sample_step(model64, batch, N)
            ealt = relative_errors(alt, ref64)
            report(ealt, f"tied={tied} {case}: other path vs reference (float64)")
            assert max(ealt.values()) < 1e-12 and max(e64.values()) < 1e-5
            print(f"   loss {float(ref['loss']):.6f}; |grad new rows| max "
                  f"{float(ref['new_rows.embed_tokens'].abs().max()):.3g}; keys {len(ref)}")
        plain = load_hf(base_dir)
        ref = hf_step(plain, plain_batch(V), N)
        assert set(ref) == {"loss", "new_rows.embed_tokens"} | (set() if tied else {"new_rows.lm_head"})
    tok = make_bpe_tokenizer(tmp / "tok")
    print("BPE size", tok.get_vocab_size(with_added_tokens=True), "ids", tok.encode("two people shake hands.").ids)
    at = transformers.AutoTokenizer.from_pretrained(tmp / "tok")
    assert at("two people shake hands.")["input_ids"][-5:] == tok.encode("two people shake hands.").ids[-5:]
    print("AutoTokenizer loads tokenizer_config.json:", type(at).__name__)


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        _self_check(d)
