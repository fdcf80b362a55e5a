"""Plain-PyTorch reference of one training step of an LM with the depth head (docs/depth_head.md):
one LM position per motion slot whose input embedding is the sum of the slot's Q code embeddings, a
small causal transformer over the Q residual levels on the LM's final hidden state, and the combined
loss (summed text and depth cross-entropies over the total number of targets), with the gradients of
every trainable LM tensor and of every depth-head tensor. Also the random depth-head file and the
synthetic batches (plain, right-padded, packed) that tests/parity/test_lm_depth_step.py feeds to
`vimo lm step`.

Depth-head tensors are passed as a dict whose names may carry the `depth_head.` prefix or not (both
are accepted); gradients come back as `depth_head.<name>`, the names of the doc's table.

Batch tensors (int64): input_ids [B, T]; labels [B, T] (transformers' unshifted convention: labels[t+1]
is the text target of position t, -100 none); depth_codes [B, T, Q] (a slot's codes k_0..k_{Q-1}, -1 at
every other position); depth_targets [B, T, Q] (the codes of slot t+1, or (K, -100, ...) when position
t+1 is the close tag, -100 elsewhere); optional segment_ids [B, T] (-1 padding) and position_ids [B, T].

Run it as a script (`python tests/parity/depth_reference.py`) to self-check the reference side without
a vimo binary."""
import contextlib
import math
import pathlib
import sys

sys.path[:0] = [str(pathlib.Path(__file__).parent), str(pathlib.Path(__file__).parents[1])]
from pretrain_fixtures import (hf_labels_loss, load_hf, load_peft, make_adapter, make_hf_model,  # noqa: E402
                               relative_errors, report, safetensors_torch, saved_lora_name, torch, transformers)

F = torch.nn.functional
PREFIX = "depth_head."
IGNORE = -100
RMS_EPS = 1e-5
LAYER_TENSORS = ("attn_norm.weight", "qkv.weight", "out.weight", "mlp_norm.weight", "gate.weight", "up.weight",
                 "down.weight")

# The synthetic layout's tags: text ids below OPEN, motion ids from motion_base on.
OPEN, CLOSE = 190, 191  # "<motion>", "</motion>"


# ---- depth-head tensors ----

def head_shapes(H, d, L, F_, Q, K):
    """{name (no prefix): shape} of the doc's table."""
    s = {"in_proj.weight": (d, H), "code_embed.weight": ((Q - 1) * K, d), "pos_embed": (Q, d)}
    for i in range(L):
        s.update({f"layers.{i}.attn_norm.weight": (d,), f"layers.{i}.qkv.weight": (3 * d, d),
                  f"layers.{i}.out.weight": (d, d), f"layers.{i}.mlp_norm.weight": (d,),
                  f"layers.{i}.gate.weight": (F_, d), f"layers.{i}.up.weight": (F_, d),
                  f"layers.{i}.down.weight": (d, F_)})
    s.update({"norm.weight": (d,), "heads.weight": (Q * K, d), "end.weight": (1, d)})
    return s


def make_depth_head(H, d, L, F_, Q, K, seed=0):
    """Random float32 depth-head tensors named `depth_head.<name>`: weights normal(0, 0.1), RMSNorm
    gains 1 + 0.1·randn, pos_embed 0.1·randn (so every gradient is non-trivial)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for n, shape in head_shapes(H, d, L, F_, Q, K).items():
        r = torch.randn(shape, generator=g, dtype=torch.float64) * 0.1
        out[PREFIX + n] = (1 + r if n.endswith("norm.weight") else r).to(torch.float32)
    return out


def save_depth_head(path, head):
    """Writes the tensors under their `depth_head.` names (safetensors)."""
    safetensors_torch.save_file({(n if n.startswith(PREFIX) else PREFIX + n): t.contiguous()
                                 for n, t in head.items()}, str(path))


def head_sizes(head, K):
    """Infers (H, d, L, F, Q) from a head dict (names without prefix) and checks every shape."""
    d, H = head["in_proj.weight"].shape
    Q = head["pos_embed"].shape[0]
    L = sum(1 for n in head if n.endswith(".qkv.weight"))
    F_ = head["layers.0.gate.weight"].shape[0] if L else 0
    want = head_shapes(H, d, L, F_, Q, K)
    assert set(head) == set(want), f"depth head names: {sorted(set(head) ^ set(want))[:6]}"
    for n, s in want.items():
        assert tuple(head[n].shape) == s, f"depth_head.{n}: shape {tuple(head[n].shape)}, want {s}"
    return H, d, L, F_, Q


def _strip(head):
    return {(n[len(PREFIX):] if n.startswith(PREFIX) else n): t for n, t in head.items()}


# ---- the depth head ----

def rms(x, gain):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + RMS_EPS) * gain


def _attention(q, k, v, impl):
    """q, k, v [N, n, Q, d/n]; causal over the Q levels, scale 1/sqrt(d/n)."""
    if impl == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    Q = q.shape[-2]
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~torch.ones(Q, Q, dtype=torch.bool).tril(), float("-inf"))
    return s.softmax(-1) @ v


def depth_logits(w, h, targets, K, n_heads, attention="explicit"):
    """w: head tensors (names without prefix); h [N, H] hidden states of depth positions; targets
    [N, Q] (teacher forcing: level q's input is code targets[:, q-1], read as 0 where it is END or
    -100). Returns the Q logits: [N, K + 1] at level 0 (END last), [N, K] above."""
    N, Q = targets.shape
    d = w["pos_embed"].shape[1]
    assert d % n_heads == 0, f"depth width {d} is not divisible by {n_heads} heads"
    hd = d // n_heads
    L = sum(1 for n in w if n.endswith(".qkv.weight"))
    c = torch.where((targets >= 0) & (targets < K), targets, torch.zeros_like(targets))
    u = h @ w["in_proj.weight"].T
    x = (u + w["pos_embed"][0])[:, None]
    if Q > 1:
        rows = torch.arange(Q - 1) * K + c[:, :Q - 1]
        x = torch.cat([x, u[:, None] + w["code_embed.weight"][rows] + w["pos_embed"][1:]], 1)
    for i in range(L):
        p = f"layers.{i}."
        y = rms(x, w[p + "attn_norm.weight"])
        qs, ks, vs = (y @ w[p + "qkv.weight"].T).split(d, -1)
        qs, ks, vs = (t.reshape(N, Q, n_heads, hd).transpose(1, 2) for t in (qs, ks, vs))
        a = _attention(qs, ks, vs, attention).transpose(1, 2).reshape(N, Q, d)
        x = x + a @ w[p + "out.weight"].T
        y = rms(x, w[p + "mlp_norm.weight"])
        x = x + (F.silu(y @ w[p + "gate.weight"].T) * (y @ w[p + "up.weight"].T)) @ w[p + "down.weight"].T
    x = rms(x, w["norm.weight"])
    heads = w["heads.weight"]
    out = [torch.cat([x[:, 0] @ heads[:K].T, x[:, 0] @ w["end.weight"].T], -1)]
    return out + [x[:, q] @ heads[q * K:(q + 1) * K].T for q in range(1, Q)]


# ---- batch checks, input embeddings, the loss ----

def check_batch(batch, motion_base, K, Q=None):
    """The batch contract; raises AssertionError naming the offending tensor."""
    ids, labels, codes, tg = batch["input_ids"], batch["labels"], batch["depth_codes"], batch["depth_targets"]
    B, T = ids.shape
    Q = Q or codes.shape[-1]
    for n in ("labels", "depth_codes", "depth_targets", "segment_ids", "position_ids"):
        if n in batch:
            assert batch[n].dtype == torch.int64, f"{n}: dtype {batch[n].dtype}"
    assert labels.shape == (B, T), f"labels: shape {tuple(labels.shape)}"
    assert codes.shape == (B, T, Q), f"depth_codes: shape {tuple(codes.shape)}, want {(B, T, Q)}"
    assert tg.shape == (B, T, Q), f"depth_targets: shape {tuple(tg.shape)}, want {(B, T, Q)}"
    slot = codes[..., 0] >= 0
    assert ((codes >= 0) == slot[..., None]).all() and ((codes == -1) | (codes >= 0)).all(), \
        "depth_codes: a slot has every level >= 0, other positions -1"
    assert (codes < K).all(), f"depth_codes: codes must be < K = {K}"
    assert (ids[slot] == motion_base + codes[..., 0][slot]).all(), "input_ids: a slot's id is motion_base + k_0"
    t0, up = tg[..., 0], tg[..., 1:]
    assert ((t0 == IGNORE) | ((t0 >= 0) & (t0 <= K))).all(), "depth_targets: level 0 in 0..K (K = END) or -100"
    assert ((up == IGNORE) | ((up >= 0) & (up < K))).all(), "depth_targets: levels >= 1 in 0..K-1 or -100"
    assert (up[t0 == K] == IGNORE).all() and (up[t0 == IGNORE] == IGNORE).all(), \
        "depth_targets: after END or no level-0 target, the higher levels are -100"
    both = (labels[:, 1:] != IGNORE) & (t0[:, :-1] != IGNORE)
    assert not both.any(), "labels: a depth position (depth_targets[t, 0] != -100) has no text target labels[t+1]"


def input_embeddings(model, ids, codes, motion_base, K):
    """E(ids) + Σ_{q>=1} E(motion_base + q·K + codes[..., q]) at the slots (codes >= 0)."""
    emb = model.get_input_embeddings()
    x = emb(ids)
    for q in range(1, codes.shape[-1]):
        cq = codes[..., q]
        has = cq >= 0
        extra = emb(torch.where(has, motion_base + q * K + cq, torch.zeros_like(cq)))
        x = x + torch.where(has[..., None], extra, torch.zeros_like(extra))
    return x


def _terms(model, w, seq, motion_base, K, n_heads, attention, batched_kw):
    """One forward over [B, T] -> (text CE per target, depth CE per (position, level) target), in
    row-major order."""
    x = input_embeddings(model, seq["input_ids"], seq["depth_codes"], motion_base, K)
    out = model(inputs_embeds=x, use_cache=False, output_hidden_states=True, **batched_kw)
    logits, hidden = out.logits, out.hidden_states[-1]
    # The depth head reads the hidden state after the final RMSNorm: transformers' last hidden_states
    # entry must be it, i.e. the LM's head applied to it gives the logits.
    with torch.no_grad():
        head_logits = model.get_output_embeddings()(hidden)
        gap = float((head_logits - logits).abs().max()) / max(float(logits.abs().max()), 1e-30)
    assert gap < 1e-5, (f"transformers {transformers.__version__}: hidden_states[-1] is not the state "
                        f"after the final norm (head(h) vs logits {gap:.3g})")
    labels, tg = seq["labels"][:, 1:], seq["depth_targets"]
    m = labels != IGNORE
    text = F.cross_entropy(logits[:, :-1][m], labels[m], reduction="none")
    dm = tg[..., 0] != IGNORE
    tq = tg[dm]
    lq = depth_logits(w, hidden[dm], tq, K, n_heads, attention)
    ce = torch.stack([F.cross_entropy(lg, tq[:, q], ignore_index=IGNORE, reduction="none")
                      for q, lg in enumerate(lq)], 1)
    return text, ce[tq != IGNORE]


@contextlib.contextmanager
def float64_norms():
    """transformers' LlamaRMSNorm computes in float32 whatever its input's dtype, so a float64 model is
    only float32-accurate at its norms (about 1e-6 relative on the gradients). Inside this context a
    float64 input is normalized in float64 by the same formula; other dtypes are untouched."""
    cls = transformers.models.llama.modeling_llama.LlamaRMSNorm
    orig = cls.forward

    def forward(self, x):
        if x.dtype != torch.float64:
            return orig(self, x)
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))

    cls.forward = forward
    try:
        yield
    finally:
        cls.forward = orig


def segments(batch):
    """Each segment of each row as its own [1, n] sequence, in row order; padding (-1) dropped."""
    B, T = batch["input_ids"].shape
    seg = batch.get("segment_ids", torch.zeros(B, T, dtype=torch.long))
    keys = ("input_ids", "labels", "depth_codes", "depth_targets")
    out = []
    for b in range(B):
        for s in sorted(set(seg[b].tolist()) - {-1}):
            where = (seg[b] == s).nonzero().flatten()
            assert (where == torch.arange(where[0], where[-1] + 1)).all(), "a segment must be contiguous"
            assert (batch["depth_targets"][b, where[-1], 0] == IGNORE), "depth_targets: a segment's last position"
            out.append({k: batch[k][b, where][None] for k in keys})
    return out


def depth_loss(model, head, batch, motion_base, K, n_heads, per_segment=None, attention="explicit"):
    """The loss of docs/depth_head.md (graph attached), the per-target text and depth CE vectors.
    per_segment (default: when the batch packs several segments in a row): every segment runs alone as
    its own sequence (positions from 0, plain causal attention); otherwise one batched forward with
    attention_mask = segment_ids >= 0 and the batch's position_ids. A float64 model runs with
    float64_norms (its rotary tables stay transformers' float32 ones, cast)."""
    dtype = model.get_input_embeddings().weight.dtype
    head = {n: t.to(dtype) for n, t in _strip(head).items()}
    check_batch(batch, motion_base, K, head["pos_embed"].shape[0])
    if per_segment is None:
        per_segment = "segment_ids" in batch and bool((batch["segment_ids"] > 0).any())
    with float64_norms():
        return _loss(model, head, batch, motion_base, K, n_heads, per_segment, attention)


def _loss(model, head, batch, motion_base, K, n_heads, per_segment, attention):
    if per_segment:
        parts = [_terms(model, head, s, motion_base, K, n_heads, attention, {}) for s in segments(batch)]
        text, depth = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    else:
        kw = {}
        if "segment_ids" in batch:
            kw["attention_mask"] = (batch["segment_ids"] >= 0).long()
        if "position_ids" in batch:
            kw["position_ids"] = batch["position_ids"]
        text, depth = _terms(model, head, batch, motion_base, K, n_heads, attention, kw)
    count = text.numel() + depth.numel()
    assert count > 0, "the batch has no targets"
    return (text.sum() + depth.sum()) / count, text, depth


def depth_step(model, head, batch, motion_base, K, n_heads, per_segment=None, attention="explicit",
               return_terms=False):
    """One training step: {"loss": [], LM gradient names: grads, "depth_head.<name>": grads}. The LM's
    gradients are those of its parameters with requires_grad: every parameter of a plain
    LlamaForCausalLM under its transformers name (a tied head once, as model.embed_tokens.weight), the
    LoRA tensors of a PeftModel under their adapter-file names. The head runs in the model's dtype."""
    dtype = model.get_input_embeddings().weight.dtype
    w = {n: t.detach().to(dtype).clone().requires_grad_(True) for n, t in _strip(head).items()}
    head_sizes(w, K)
    model.zero_grad(set_to_none=True)
    loss, text, depth = depth_loss(model, w, batch, motion_base, K, n_heads, per_segment, attention)
    loss.backward()
    out = {"loss": loss.detach().reshape(())}
    tied = model.get_input_embeddings().weight is model.get_output_embeddings().weight
    for n, p in model.named_parameters():
        if not p.requires_grad or (tied and n.endswith("lm_head.weight")):
            continue
        out[saved_lora_name(n)] = (p.grad if p.grad is not None else torch.zeros_like(p)).detach().clone()
    for n, t in w.items():
        out[PREFIX + n] = (t.grad if t.grad is not None else torch.zeros_like(t)).detach().clone()
    return (out, (text.detach(), depth.detach())) if return_terms else out


# ---- synthetic batches ----

def render(parts, Q, K, motion_base, g):
    """One conversation -> its [n] / [n, Q] tensors. parts: ("prompt", n) user text, ("user_motion", s)
    a user-side block of s slots (no targets), ("text", n) assistant text, ("motion", s) an assistant
    block: OPEN, s slots, CLOSE (depth targets for every slot and END before CLOSE)."""
    ids, codes, user, kind = [], [], [], []
    for part, n in parts:
        if part in ("prompt", "text"):
            ids += torch.randint(2, OPEN, (n,), generator=g).tolist()
            codes += [[-1] * Q] * n
            kind += ["text"] * n
            user += [part == "prompt"] * n
        else:
            assert part in ("motion", "user_motion"), part
            ids.append(OPEN)
            codes.append([-1] * Q)
            kind.append("open")
            for _ in range(n):
                c = torch.randint(0, K, (Q,), generator=g).tolist()
                ids.append(motion_base + c[0])
                codes.append(c)
                kind.append("slot")
            ids.append(CLOSE)
            codes.append([-1] * Q)
            kind.append("close")
            user += [part == "user_motion"] * (n + 2)
    T = len(ids)
    labels = torch.full((T,), IGNORE, dtype=torch.long)
    targets = torch.full((T, Q), IGNORE, dtype=torch.long)
    for t in range(T - 1):
        if user[t + 1]:
            continue
        if kind[t + 1] == "slot":
            targets[t] = torch.tensor(codes[t + 1])
        elif kind[t + 1] == "close":
            targets[t, 0] = K
        else:
            labels[t + 1] = ids[t + 1]
    return {"input_ids": torch.tensor(ids), "labels": labels, "depth_codes": torch.tensor(codes),
            "depth_targets": targets}


CONVERSATIONS = {
    "a": [("prompt", 3), ("user_motion", 2), ("prompt", 2), ("text", 2), ("motion", 4), ("text", 3)],  # 20
    "b": [("prompt", 2), ("text", 3), ("motion", 3), ("text", 2), ("motion", 2), ("text", 4)],  # 20
    "c": [("prompt", 4), ("motion", 3)],  # 9, ends on the close tag
    "d": [("prompt", 1), ("user_motion", 1), ("text", 2), ("motion", 1), ("text", 2)],  # 11
    "e": [("prompt", 2), ("text", 3), ("motion", 3), ("text", 2), ("motion", 2), ("text", 1)],  # 17
}


def _rows(rows, Q, K, motion_base, seed, T=None, packed=False):
    g = torch.Generator().manual_seed(seed)
    samples = [[render(CONVERSATIONS[c], Q, K, motion_base, g) for c in row] for row in rows]
    lens = [sum(s["input_ids"].numel() for s in row) for row in samples]
    T = T or max(lens)
    B = len(rows)
    batch = {"input_ids": torch.randint(2, OPEN, (B, T), generator=g),  # padding: random text ids
             "labels": torch.full((B, T), IGNORE, dtype=torch.long),
             "depth_codes": torch.full((B, T, Q), -1, dtype=torch.long),
             "depth_targets": torch.full((B, T, Q), IGNORE, dtype=torch.long),
             "segment_ids": torch.full((B, T), -1, dtype=torch.long),
             "position_ids": torch.zeros((B, T), dtype=torch.long)}
    for b, row in enumerate(samples):
        start = 0
        for s, sample in enumerate(row):
            n = sample["input_ids"].numel()
            for k in ("input_ids", "labels", "depth_codes", "depth_targets"):
                batch[k][b, start:start + n] = sample[k]
            batch["segment_ids"][b, start:start + n] = s
            batch["position_ids"][b, start:start + n] = torch.arange(n)
            start += n
        batch["position_ids"][b, start:] = torch.arange(T - start)  # padding: its own restart
    if not packed:
        del batch["position_ids"]
    if all(n == T for n in lens) and not packed:
        del batch["segment_ids"]
    return batch


def plain_depth_batch(Q, K, motion_base, seed=0):
    """Two full rows of 20 positions, no padding."""
    return _rows(["a", "b"], Q, K, motion_base, seed)


def padded_depth_batch(Q, K, motion_base, seed=1):
    """Right padding (segment_ids -1): rows of 20 and 11 positions."""
    return _rows(["a", "d"], Q, K, motion_base, seed)


def packed_depth_batch(Q, K, motion_base, seed=2):
    """Packed rows: segments 0, 1, 2 with position_ids restarting at 0, trailing padding -1."""
    return _rows([["c", "d", "e"], ["a", "c"]], Q, K, motion_base, seed, T=40, packed=True)


BATCHES = {"plain": plain_depth_batch, "padded": padded_depth_batch, "packed": packed_depth_batch}


def unpack(batch):
    """One row per segment (right-padded, segment_ids 0 / -1): the packed batch's batched equivalent."""
    segs = segments(batch)
    T = max(s["input_ids"].shape[1] for s in segs)
    Q = batch["depth_codes"].shape[-1]
    out = {"input_ids": torch.full((len(segs), T), 2, dtype=torch.long),
           "labels": torch.full((len(segs), T), IGNORE, dtype=torch.long),
           "depth_codes": torch.full((len(segs), T, Q), -1, dtype=torch.long),
           "depth_targets": torch.full((len(segs), T, Q), IGNORE, dtype=torch.long),
           "segment_ids": torch.full((len(segs), T), -1, dtype=torch.long)}
    for i, s in enumerate(segs):
        n = s["input_ids"].shape[1]
        for k in ("input_ids", "labels", "depth_codes", "depth_targets"):
            out[k][i, :n] = s[k][0]
        out["segment_ids"][i, :n] = 0
    return out


def describe(batch, K):
    t0 = batch["depth_targets"][..., 0]
    slots = batch["depth_codes"][..., 0] >= 0
    return (f"text targets {int((batch['labels'][:, 1:] != IGNORE).sum())}, depth positions "
            f"{int((t0 != IGNORE).sum())} (END {int((t0 == K).sum())}), depth targets "
            f"{int((batch['depth_targets'] != IGNORE).sum())}, slots {int(slots.sum())} "
            f"(user-side {int((slots[:, 1:] & (t0[:, :-1] == IGNORE)).sum())})")


# ---- self-check of the reference side (no vimo binary needed) ----

V, MB, K, Q = 300, 200, 20, 5
D, L, NH, FF = 32, 2, 4, 48


def _fd_check(model, head, batch):
    """Central differences of the float64 loss against autograd for a few tensor entries."""
    ref = depth_step(model, head, batch, MB, K, NH)
    tg = batch["depth_targets"]
    c1 = int(tg[tg[..., 0] != IGNORE][0, 1])  # a level-1 input code that is used (input of level 2)
    c0 = int(tg[(tg[..., 0] != IGNORE) & (tg[..., 0] != K)][0, 0])
    entries = [("in_proj.weight", (1, 2)), ("code_embed.weight", (K + c1, 3)), ("code_embed.weight", (c0, 0)),
               ("pos_embed", (3, 0)), ("layers.0.qkv.weight", (D + 1, 4)), ("layers.1.qkv.weight", (2 * D + 5, 1)),
               ("layers.0.attn_norm.weight", (6,)), ("layers.1.down.weight", (0, 5)), ("norm.weight", (7,)),
               ("heads.weight", (2 * K + 3, 1)), ("end.weight", (0, 3))]
    w = {n: t.to(torch.float64).clone() for n, t in _strip(head).items()}
    eps = 1e-6
    worst = 0.0
    with torch.no_grad():
        for n, idx in entries:
            base = w[n][idx].item()
            vals = []
            for s in (1, -1):
                w[n][idx] = base + s * eps
                vals.append(float(depth_loss(model, w, batch, MB, K, NH)[0]))
            w[n][idx] = base
            fd, ag = (vals[0] - vals[1]) / (2 * eps), float(ref[PREFIX + n][idx])
            err = abs(fd - ag) / max(abs(ag), 1e-3)
            worst = max(worst, err)
            print(f"   fd {n}{list(idx)}: autograd {ag:+.6e} central difference {fd:+.6e} rel {err:.2g}")
        # An LM embedding row that enters only as a level-2 code of a slot's summed input.
        codes = batch["depth_codes"]
        row = MB + 2 * K + int(codes[codes[..., 0] >= 0][0, 2])
        E = model.get_input_embeddings().weight
        base, vals = E[row, 5].item(), []
        for s in (1, -1):
            E[row, 5] = base + s * eps
            vals.append(float(depth_loss(model, w, batch, MB, K, NH)[0]))
        E[row, 5] = base
        fd, ag = (vals[0] - vals[1]) / (2 * eps), float(ref["model.embed_tokens.weight"][row, 5])
        err = abs(fd - ag) / max(abs(ag), 1e-3)
        worst = max(worst, err)
        print(f"   fd model.embed_tokens.weight[{row}, 5]: autograd {ag:+.6e} central difference {fd:+.6e} "
              f"rel {err:.2g}")
    assert worst < 1e-6, worst


def _truncated(head, Qp):
    """The head's first Qp levels: a causal head's logits of levels < Qp cannot depend on the rest."""
    w = _strip(head)
    w = dict(w, **{"code_embed.weight": w["code_embed.weight"][:(Qp - 1) * K], "pos_embed": w["pos_embed"][:Qp],
                   "heads.weight": w["heads.weight"][:Qp * K]})
    return w


def _self_check(tmp):
    tmp = pathlib.Path(tmp)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    head = make_depth_head(64, D, L, FF, Q, K, seed=3)
    save_depth_head(tmp / "head.safetensors", head)
    loaded = safetensors_torch.load_file(str(tmp / "head.safetensors"))
    assert set(loaded) == {PREFIX + n for n in head_shapes(64, D, L, FF, Q, K)} and all(
        torch.equal(loaded[n], head[n]) for n in head)
    print(f"head file: {len(loaded)} tensors, e.g. {sorted(loaded)[:3]}")
    for name, make in BATCHES.items():
        b = make(Q, K, MB)
        check_batch(b, MB, K)
        print(f"{name} batch {tuple(b['input_ids'].shape)} keys {sorted(b)}: {describe(b, K)}")
    for tied in (False, True):
        base_dir, ad_dir = tmp / f"base_{tied}", tmp / f"adapter_{tied}"
        make_hf_model(base_dir, V, tied)
        make_adapter(base_dir, ad_dir)
        lora_names = set(safetensors_torch.load_file(str(ad_dir / "adapter_model.safetensors")))
        models = {"full": (load_hf(base_dir), load_hf(base_dir).double()),
                  "lora": (load_peft(base_dir, ad_dir), load_peft(base_dir, ad_dir).double())}
        for mode, (m32, m64) in models.items():
            lm_names = lora_names if mode == "lora" else {n for n, _ in m64.named_parameters()}
            assert mode == "lora" or tied == ("lm_head.weight" not in lm_names)
            for case, make in BATCHES.items():
                batch = make(Q, K, MB)
                ref64, (text, depth) = depth_step(m64, head, batch, MB, K, NH, return_terms=True)
                ref32 = depth_step(m32, head, batch, MB, K, NH)
                expected = {"loss"} | lm_names | {PREFIX + n for n in head_shapes(64, D, L, FF, Q, K)}
                assert set(ref64) == expected, sorted(set(ref64) ^ expected)[:6]
                e32 = relative_errors(ref32, ref64)
                label = f"tied={tied} {mode} {case}"
                report(e32, f"{label}: float32 vs float64")
                assert max(e32.values()) < 1e-5
                # Another path to the same numbers: packed per segment vs the segments as padded rows of
                # one batched forward; padded/plain batched vs per segment.
                if case == "packed":
                    alt, (t2, d2) = depth_step(m64, head, unpack(batch), MB, K, NH, per_segment=False,
                                               return_terms=True)
                else:
                    alt, (t2, d2) = depth_step(m64, head, batch, MB, K, NH, per_segment=True, return_terms=True)
                eterm = max(float((t2 - text).abs().max()), float((d2 - depth).abs().max()))
                ealt = relative_errors(alt, ref64)
                report(ealt, f"{label}: {'unpacked batched' if case == 'packed' else 'per segment'} vs reference")
                print(f"   loss {float(ref64['loss']):.8f}; {text.numel()} text + {depth.numel()} depth targets; "
                      f"per-token CE max diff {eterm:.2g}")
                assert eterm < 1e-12 and max(ealt.values()) < 1e-10
        full64 = models["full"][1]
        # Attention as written vs torch's scaled_dot_product_attention.
        batch = plain_depth_batch(Q, K, MB)
        sd = depth_step(full64, head, batch, MB, K, NH, attention="sdpa")
        esd = relative_errors(sd, depth_step(full64, head, batch, MB, K, NH))
        print(f"tied={tied}: explicit attention vs torch sdpa: worst {max(esd.values()):.2g}")
        assert max(esd.values()) < 1e-12
        # Without slots or depth targets the loss is transformers' own labels loss (which casts the logits
        # to float32, hence the tolerance).
        nod = plain_depth_batch(Q, K, MB)
        nod["depth_codes"].fill_(-1)
        nod["depth_targets"].fill_(IGNORE)
        nod["input_ids"] = torch.where(nod["input_ids"] >= MB, 7, nod["input_ids"])
        r = depth_step(full64, head, nod, MB, K, NH)
        hl = hf_labels_loss(full64, nod)
        print(f"tied={tied}: no depth targets: loss {float(r['loss']):.10f}, transformers' labels loss {hl:.10f}")
        assert abs(hl - float(r["loss"])) < 1e-6 * abs(hl) and all(
            float(r[PREFIX + n].abs().max()) == 0 for n in head_shapes(64, D, L, FF, Q, K))
        print(f"tied={tied}: finite differences (float64, plain batch, full model)")
        _fd_check(full64, head, plain_depth_batch(Q, K, MB))
    # Causality, and Q = 1 and Q = 2 heads: the first Qp levels' logits of the Q-level head are those of
    # its truncation to Qp levels.
    g = torch.Generator().manual_seed(4)
    w = {n: t.double() for n, t in _strip(head).items()}
    h = torch.randn(7, 64, generator=g, dtype=torch.float64)
    tg = torch.randint(0, K, (7, Q), generator=g)
    tg[2, 0], tg[2, 1:] = K, IGNORE
    full = depth_logits(w, h, tg, K, NH)
    for Qp in (1, 2, 3):
        part = depth_logits({n: t.double() for n, t in _truncated(head, Qp).items()}, h, tg[:, :Qp], K, NH)
        diff = max(float((a - b).abs().max()) for a, b in zip(part, full))
        print(f"levels < {Qp} of the {Q}-level head vs its {Qp}-level truncation: max diff {diff:.2g}")
        assert len(part) == Qp and part[0].shape == (7, K + 1) and diff < 1e-12
    # A whole Q = 1 step: no summed codes, level 0 only (K + 1 classes), an empty code_embed.
    head1 = make_depth_head(64, D, L, FF, 1, K, seed=5)
    batch1 = plain_depth_batch(1, K, MB)
    m64 = load_hf(tmp / "base_False").double()
    r1 = depth_step(m64, head1, batch1, MB, K, NH)
    assert r1[PREFIX + "code_embed.weight"].shape == (0, D) and r1[PREFIX + "heads.weight"].shape == (K, D)
    assert all(torch.isfinite(t).all() for t in r1.values())
    assert float(r1[PREFIX + "end.weight"].abs().max()) > 0 and float(r1[PREFIX + "in_proj.weight"].abs().max()) > 0
    print(f"Q=1 step: loss {float(r1['loss']):.6f}; {describe(batch1, K)}")
    # check_batch names the tensor of a bad batch.
    bad = plain_depth_batch(Q, K, MB)
    bad["depth_codes"][0, 4, 2] = K  # a user-side slot
    try:
        check_batch(bad, MB, K)
        raise RuntimeError("a code >= K passed")
    except AssertionError as e:
        assert "depth_codes" in str(e)
    print("self-check passed")


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        _self_check(d)
