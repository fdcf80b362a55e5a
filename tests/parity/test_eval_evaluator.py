"""Parity: `vimo eval embed` (the InterCLIP evaluator) against the PyTorch transcription in
interclip_reference.py, on a small randomly initialised InterCLIP converted by scripts/convert_interclip.py
from a Lightning-style checkpoint; plus the converter's checks and the errors for an incomplete file."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parent), str(pathlib.Path(__file__).resolve().parents[1])]
from conftest import SOURCE_DIR, run_vimo  # noqa: E402
from interclip_reference import InterClipReference  # noqa: E402

CONVERT = SOURCE_DIR / "scripts" / "convert_interclip.py"
PE_NAME = "motion_encoder.sequence_pos_encoder.pe"
DIMS = dict(motion_features=262, drop_features=4, latent_dim=64, ff_size=128, num_layers=2, num_heads=4,
            text_vocab=1000, text_context=77, text_width=96, text_ff=192, text_layers=2, text_heads=8,
            embed_dim=512)
B, T = 16, 40
SCALE = 2.5
TOL = 1e-5


def build_reference(seed=0):
    """InterCLIP with random weights; biases and LayerNorm affines are randomised too, so a dropped bias or
    a swapped norm shows up in the comparison."""
    torch.manual_seed(seed)
    m = InterClipReference(**DIMS).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.LayerNorm):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0.0, 0.1)
        for name, p in m.named_parameters():
            if name.endswith("bias") and "norm" not in name and "_ln" not in name:
                p.normal_(0.0, 0.1)
        m.latent_scale.fill_(SCALE)
    return m


def save_lightning_ckpt(model, path, drop=()):
    sd = {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items() if k not in drop}
    torch.save({"epoch": 7, "global_step": 1234, "pytorch-lightning_version": "1.9.0", "state_dict": sd}, path)


def run_convert(ckpt, out, *extra):
    return subprocess.run([sys.executable, str(CONVERT), "--ckpt", str(ckpt), "--out", str(out),
                           "--heads", str(DIMS["num_heads"]), "--text-heads", str(DIMS["text_heads"]), *extra],
                          capture_output=True, text=True, timeout=300)


def read_safetensors(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def make_inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    f = DIMS["motion_features"]
    motions = torch.randn(B, T, 2 * f, generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0], lengths[1], lengths[2] = T, 1, T - 1
    v, ctx = DIMS["text_vocab"], DIMS["text_context"]
    sot, eot = v - 2, v - 1
    ids = torch.zeros(B, ctx, dtype=torch.long)
    counts = torch.randint(0, ctx - 1, (B,), generator=g)
    counts[0], counts[1] = ctx - 2, 0  # a full-length row (no padding) and an empty caption
    for i, n in enumerate(counts.tolist()):
        ids[i, 0] = sot
        ids[i, 1:1 + n] = torch.randint(1, sot, (n,), generator=g)
        ids[i, 1 + n] = eot
    return motions, lengths, ids


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    d = tmp_path_factory.mktemp("interclip")
    model = build_reference()
    ckpt = d / "interclip.ckpt"
    save_lightning_ckpt(model, ckpt)
    ev = d / "evaluator.safetensors"
    p = run_convert(ckpt, ev)
    assert p.returncode == 0, f"convert_interclip.py failed:\n{p.stdout}\n{p.stderr}"
    motions, lengths, ids = make_inputs()
    with torch.no_grad():
        ref_motion = model.encode_motion(motions, lengths).numpy()
        ref_text = model.encode_text(ids).numpy()
    np.save(d / "motion.npy", motions.numpy().astype(np.float32))
    np.save(d / "lengths.npy", lengths.numpy().astype(np.int64))
    np.save(d / "ids.npy", ids.numpy().astype(np.int64))
    return dict(dir=d, model=model, ckpt=ckpt, evaluator=ev, ref_motion=ref_motion, ref_text=ref_text)


# ---- the reference and the converter (no vimo needed) ----

def test_reference_semantics():
    """The transcription behaves as InterCLIP does: embeddings have norm latent_scale, frames past the length
    are ignored, and text padding after the end-of-text token is attended (it changes the embedding)."""
    model = build_reference()
    motions, lengths, ids = make_inputs()
    with torch.no_grad():
        em = model.encode_motion(motions, lengths)
        et = model.encode_text(ids)
        np.testing.assert_allclose(em.norm(dim=-1).numpy(), SCALE, rtol=1e-5)
        np.testing.assert_allclose(et.norm(dim=-1).numpy(), SCALE, rtol=1e-5)
        scrambled = motions.clone()
        for i, n in enumerate(lengths.tolist()):
            scrambled[i, n:] = torch.randn_like(scrambled[i, n:]) * 10
        assert (model.encode_motion(scrambled, lengths) - em).abs().max().item() < 1e-5
        assert (model.encode_motion(motions, torch.full_like(lengths, T))[1] - em[1]).abs().max().item() > 1e-3
        padded = ids.clone()
        padded[1, 5:] = 7  # row 1 is [sot, eot, 0...]: different padding, same argmax
        assert padded[1].argmax().item() == ids[1].argmax().item()
        assert (model.encode_text(padded)[1] - et[1]).abs().max().item() > 1e-3


def test_convert_help():
    p = subprocess.run([sys.executable, str(CONVERT), "--help"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    for flag in ("--ckpt", "--out", "--heads", "--text-heads", "--drop-features"):
        assert flag in p.stdout


def test_convert_writes_interclip_names_and_metadata(converted):
    tensors, meta = read_safetensors(converted["evaluator"])
    sd = converted["model"].state_dict()
    assert set(tensors) == set(sd) - {PE_NAME}
    for name, t in tensors.items():
        assert t.dtype == torch.float32, name
        assert torch.equal(t, sd[name].float()), name
    assert meta["format"] == "pt"
    cfg = json.loads(meta["vimo_evaluator"])
    expected = dict(DIMS, activation="gelu", text_tokenizer="clip_bpe")
    assert cfg == expected
    assert not list(converted["dir"].glob(".*tmp*")), "temporary file left behind"


def test_convert_accepts_plain_state_dict(converted, tmp_path):
    sd = {k: v for k, v in converted["model"].state_dict().items() if k != PE_NAME}
    torch.save(sd, tmp_path / "plain.pt")
    p = run_convert(tmp_path / "plain.pt", tmp_path / "plain.safetensors")
    assert p.returncode == 0, p.stderr
    a, meta_a = read_safetensors(tmp_path / "plain.safetensors")
    b, meta_b = read_safetensors(converted["evaluator"])
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads(meta_a["vimo_evaluator"]) == json.loads(meta_b["vimo_evaluator"])


@pytest.mark.parametrize("missing", ["motion_encoder.transformer.layers.1.linear2.weight",
                                     "textTransEncoder.layers.0.norm2.bias", "latent_scale"])
def test_convert_refuses_missing_tensor(converted, tmp_path, missing):
    ckpt = tmp_path / "broken.ckpt"
    save_lightning_ckpt(converted["model"], ckpt, drop={missing})
    out = tmp_path / "broken.safetensors"
    p = run_convert(ckpt, out)
    assert p.returncode != 0
    assert missing in p.stderr, p.stderr
    assert not out.exists()


def test_convert_refuses_bad_shape_and_bad_heads(converted, tmp_path):
    sd = {k: v.clone() for k, v in converted["model"].state_dict().items()}
    sd["text_ln.weight"] = torch.ones(DIMS["text_width"] + 1)
    torch.save({"state_dict": {f"model.{k}": v for k, v in sd.items()}}, tmp_path / "shape.ckpt")
    p = run_convert(tmp_path / "shape.ckpt", tmp_path / "shape.safetensors")
    assert p.returncode != 0 and "text_ln.weight" in p.stderr, p.stderr
    p = subprocess.run([sys.executable, str(CONVERT), "--ckpt", str(converted["ckpt"]),
                        "--out", str(tmp_path / "heads.safetensors"), "--heads", "5"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode != 0 and "--heads" in p.stderr, p.stderr
    assert not (tmp_path / "heads.safetensors").exists()


# ---- vimo eval embed against the reference ----

def test_motion_embeddings_match_reference(vimo_bin, converted):
    d = converted["dir"]
    out = d / "out_motion.npy"
    run_vimo(vimo_bin, "eval", "embed", "--evaluator", converted["evaluator"], "--motion", d / "motion.npy",
             "--lengths", d / "lengths.npy", "--out-motion", out)
    got = np.load(out)
    assert got.shape == (B, DIMS["embed_dim"]) and got.dtype == np.float32
    diff = np.abs(got - converted["ref_motion"]).max()
    assert diff <= TOL, f"motion embeddings differ from the reference by {diff:.3g}"


def test_text_embeddings_match_reference(vimo_bin, converted):
    d = converted["dir"]
    out = d / "out_text.npy"
    run_vimo(vimo_bin, "eval", "embed", "--evaluator", converted["evaluator"], "--text-ids", d / "ids.npy",
             "--out-text", out)
    got = np.load(out)
    assert got.shape == (B, DIMS["embed_dim"]) and got.dtype == np.float32
    diff = np.abs(got - converted["ref_text"]).max()
    assert diff <= TOL, f"text embeddings differ from the reference by {diff:.3g}"


@pytest.mark.parametrize("missing,side", [("motion_encoder.transformer.layers.0.self_attn.in_proj_weight", "motion"),
                                          ("textTransEncoder.layers.1.linear1.bias", "text")])
def test_vimo_rejects_evaluator_missing_tensor(vimo_bin, converted, tmp_path, missing, side):
    tensors, meta = read_safetensors(converted["evaluator"])
    del tensors[missing]
    broken = tmp_path / "broken.safetensors"
    save_file(tensors, str(broken), metadata=meta)
    d = converted["dir"]
    out = tmp_path / f"out_{side}.npy"
    if side == "motion":
        args = ["--motion", d / "motion.npy", "--lengths", d / "lengths.npy", "--out-motion", out]
    else:
        args = ["--text-ids", d / "ids.npy", "--out-text", out]
    p = run_vimo(vimo_bin, "eval", "embed", "--evaluator", broken, *args, check=False)
    assert p.returncode != 0, f"vimo accepted an evaluator without {missing}\n{p.stdout}\n{p.stderr}"
    assert missing in p.stdout + p.stderr, p.stdout + p.stderr
    assert not out.exists()
