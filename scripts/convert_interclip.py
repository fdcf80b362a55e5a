"""Converts InterGen's InterCLIP text-motion evaluator checkpoint into the safetensors file vimo loads.

InterGen (github.com/tr3e/InterGen) scores generated interactions with InterCLIP, a transformer motion
encoder and a transformer text encoder on CLIP's token embeddings, trained contrastively; its weights ship
as a PyTorch Lightning checkpoint (eval_model/interclip.ckpt, {"state_dict": {"model.<name>": tensor}}).
This script reads that checkpoint (or a plain state_dict) on the CPU, strips the "model." prefix, drops the
sinusoidal position table `motion_encoder.sequence_pos_encoder.pe` (vimo computes it; the script checks the
stored one matches the formula), checks that every tensor InterCLIP needs is there with consistent shapes,
and writes them as float32 under their InterCLIP names, with the architecture as JSON in the metadata key
"vimo_evaluator" (dimensions are read from the shapes; head counts, which shapes do not reveal, from flags).

Usage:
  python scripts/convert_interclip.py --ckpt eval_model/interclip.ckpt --out evaluator.safetensors
  build/vimo eval embed --evaluator evaluator.safetensors --motion M.npy --lengths L.npy --out-motion E.npy

Lightning checkpoints often pickle objects besides tensors (the training config); torch.load's safe mode
refuses those, and --unsafe-pickle allows them (it runs the pickle's code: only for files you trust).
"""
import argparse
import json
import math
import os
import pathlib
import re
import sys

PREFIX = "model."
PE_NAME = "motion_encoder.sequence_pos_encoder.pe"

LAYER_PARTS = {
    # part: shape as a function of (width, ff)
    "self_attn.in_proj_weight": lambda d, f: (3 * d, d),
    "self_attn.in_proj_bias": lambda d, f: (3 * d,),
    "self_attn.out_proj.weight": lambda d, f: (d, d),
    "self_attn.out_proj.bias": lambda d, f: (d,),
    "linear1.weight": lambda d, f: (f, d),
    "linear1.bias": lambda d, f: (f,),
    "linear2.weight": lambda d, f: (d, f),
    "linear2.bias": lambda d, f: (d,),
    "norm1.weight": lambda d, f: (d,),
    "norm1.bias": lambda d, f: (d,),
    "norm2.weight": lambda d, f: (d,),
    "norm2.bias": lambda d, f: (d,),
}

MOTION_STACK = "motion_encoder.transformer.layers"
TEXT_STACK = "textTransEncoder.layers"


class ConversionError(Exception):
    pass


class _LenientPickle:
    """A pickle module for torch.load whose Unpickler stands in a placeholder class for any class it cannot
    import (a Lightning checkpoint may pickle objects of the training code, e.g. its config); the tensors
    are all that is read from such a checkpoint."""
    import pickle as _pickle

    class Unpickler(_pickle.Unpickler):
        def find_class(self, module, name):
            try:
                return super().find_class(module, name)
            except (ImportError, AttributeError):
                def setstate(obj, state):
                    obj.__dict__["_state"] = state

                return type(name, (), {"__module__": module, "__init__": lambda obj, *a, **k: None,
                                       "__setstate__": setstate})

    load = None  # torch.load only uses Unpickler


def load_state_dict(path, unsafe_pickle):
    """The checkpoint's tensors by name: a Lightning checkpoint's "state_dict" or a plain state_dict."""
    import pickle

    import torch

    try:
        if unsafe_pickle:
            obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_LenientPickle)
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines()[0]
        raise ConversionError(
            f"{path}: torch.load in safe mode refused it ({first}); if you trust the file, rerun with "
            "--unsafe-pickle") from e
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        sd = obj["state_dict"]
    elif isinstance(obj, dict):
        sd = obj
    else:
        raise ConversionError(f"{path}: expected a Lightning checkpoint or a state_dict, found {type(obj).__name__}")
    out = {}
    for key, value in sd.items():
        if not isinstance(key, str):
            raise ConversionError(f"{path}: state_dict key {key!r} is not a string")
        name = key[len(PREFIX):] if key.startswith(PREFIX) else key
        if name in out:
            raise ConversionError(f"{path}: tensor {name} appears both with and without the '{PREFIX}' prefix")
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f"{path}: entry {key} is a {type(value).__name__}, not a tensor")
        out[name] = value
    if not out:
        raise ConversionError(f"{path}: the state_dict is empty")
    return out


def require(sd, name, ndim):
    if name not in sd:
        raise ConversionError(f"missing tensor {name} (needed to infer the architecture)")
    t = sd[name]
    if t.dim() != ndim:
        raise ConversionError(f"tensor {name} has shape {tuple(t.shape)}, expected {ndim} dimensions")
    return tuple(t.shape)


def layer_count(sd, stack):
    pat = re.compile(re.escape(stack) + r"\.(\d+)\.")
    idx = {int(m.group(1)) for m in map(pat.match, sd) if m}
    if not idx:
        raise ConversionError(f"missing tensors {stack}.0.* (no transformer layers found)")
    return max(idx) + 1


def sinusoid_table(rows, width):
    """The table InterGen's PositionalEncoding registers: sin on even columns, cos on odd ones."""
    import torch

    pe = torch.zeros(rows, width)
    pos = torch.arange(0, rows, dtype=torch.float).unsqueeze(1)
    div = torch.exp(torch.arange(0, width, 2).float() * (-math.log(10000.0) / width))
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


def infer_config(sd, heads, text_heads, drop):
    """Architecture from the tensor shapes, plus the expected shape of every tensor vimo reads."""
    latent, motion_in = require(sd, "motion_encoder.embed_motion.weight", 2)
    ff = require(sd, f"{MOTION_STACK}.0.linear1.weight", 2)[0]
    embed_dim = require(sd, "motion_encoder.out.weight", 2)[0]
    vocab, width = require(sd, "token_embedding.weight", 2)
    context = require(sd, "positional_embedding", 2)[0]
    text_ff = require(sd, f"{TEXT_STACK}.0.linear1.weight", 2)[0]
    layers = layer_count(sd, MOTION_STACK)
    text_layers = layer_count(sd, TEXT_STACK)

    if motion_in % 2:
        raise ConversionError(f"tensor motion_encoder.embed_motion.weight has {motion_in} input columns, "
                              "expected an even number (two persons)")
    if drop < 0:
        raise ConversionError(f"--drop-features must be >= 0, got {drop}")
    if heads < 1 or latent % heads:
        raise ConversionError(f"--heads {heads} does not divide the motion width {latent}")
    if text_heads < 1 or width % text_heads:
        raise ConversionError(f"--text-heads {text_heads} does not divide the text width {width}")

    cfg = {
        "motion_features": motion_in // 2 + drop,
        "drop_features": drop,
        "latent_dim": latent,
        "ff_size": ff,
        "num_layers": layers,
        "num_heads": heads,
        "text_vocab": vocab,
        "text_context": context,
        "text_width": width,
        "text_ff": text_ff,
        "text_layers": text_layers,
        "text_heads": text_heads,
        "embed_dim": embed_dim,
        "activation": "gelu",
        "text_tokenizer": "clip_bpe",
    }

    shapes = {
        "motion_encoder.query_token": (1, latent),
        "motion_encoder.embed_motion.weight": (latent, motion_in),
        "motion_encoder.embed_motion.bias": (latent,),
        "motion_encoder.out_ln.weight": (latent,),
        "motion_encoder.out_ln.bias": (latent,),
        "motion_encoder.out.weight": (embed_dim, latent),
        "motion_encoder.out.bias": (embed_dim,),
        "token_embedding.weight": (vocab, width),
        "positional_embedding": (context, width),
        "text_ln.weight": (width,),
        "text_ln.bias": (width,),
        "out.weight": (embed_dim, width),
        "out.bias": (embed_dim,),
        "latent_scale": (1,),
    }
    for stack, n, d, f in ((MOTION_STACK, layers, latent, ff), (TEXT_STACK, text_layers, width, text_ff)):
        for i in range(n):
            for part, shape in LAYER_PARTS.items():
                shapes[f"{stack}.{i}.{part}"] = shape(d, f)
    return cfg, shapes


def check_tensors(sd, shapes, latent):
    """Raises naming every missing, misshapen or unexpected tensor; checks the stored position table."""
    problems = []
    missing = sorted(n for n in shapes if n not in sd)
    if missing:
        problems.append("missing tensor(s): " + ", ".join(missing))
    for name, shape in shapes.items():
        if name in sd and tuple(sd[name].shape) != shape:
            problems.append(f"tensor {name} has shape {tuple(sd[name].shape)}, expected {shape}")
    extra = sorted(n for n in sd if n not in shapes and n != PE_NAME)
    if extra:
        problems.append("unexpected tensor(s) (not part of InterCLIP): " + ", ".join(extra))
    for name in shapes:
        if name in sd and not sd[name].is_floating_point():
            problems.append(f"tensor {name} has dtype {sd[name].dtype}, expected floating point")
    if PE_NAME in sd:
        pe = sd[PE_NAME]
        if pe.dim() != 2 or pe.shape[1] != latent:
            problems.append(f"tensor {PE_NAME} has shape {tuple(pe.shape)}, expected (max_len, {latent})")
        else:
            diff = (pe.float() - sinusoid_table(pe.shape[0], latent)).abs().max().item()
            if diff > 1e-4:
                problems.append(f"tensor {PE_NAME} differs from the sinusoidal table vimo computes "
                                f"(max abs difference {diff:.3g})")
    if problems:
        raise ConversionError("\n  ".join(problems))


def write_safetensors(tensors, cfg, out):
    from safetensors.torch import save_file

    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    metadata = {"format": "pt", "vimo_evaluator": json.dumps(cfg, sort_keys=True)}
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # safetensors creates the file owner-only
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def convert(ckpt, out, heads=8, text_heads=8, drop=4, unsafe_pickle=False):
    """Converts ckpt into out; returns the architecture dict written to the metadata."""
    import torch

    sd = load_state_dict(ckpt, unsafe_pickle)
    cfg, shapes = infer_config(sd, heads, text_heads, drop)
    check_tensors(sd, shapes, cfg["latent_dim"])
    tensors = {name: sd[name].detach().to(torch.float32).contiguous().clone() for name in sorted(shapes)}
    write_safetensors(tensors, cfg, out)
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Convert InterGen's InterCLIP evaluator checkpoint (interclip.ckpt) into vimo's "
                    "evaluator safetensors (float32 tensors under InterCLIP's names, architecture in the "
                    "'vimo_evaluator' metadata).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--ckpt", required=True, help="InterCLIP checkpoint: Lightning .ckpt or a plain state_dict")
    ap.add_argument("--out", required=True, help="safetensors file to write (written to a temporary name, "
                                                  "then renamed)")
    ap.add_argument("--heads", type=int, default=8, help="attention heads of the motion transformer")
    ap.add_argument("--text-heads", type=int, default=8, help="attention heads of the text transformer")
    ap.add_argument("--drop-features", type=int, default=4,
                    help="trailing features per person (foot contacts) the motion encoder removes")
    ap.add_argument("--unsafe-pickle", action="store_true",
                    help="load with torch.load(weights_only=False), for checkpoints that pickle other "
                         "objects; runs the file's pickle code, so only for files you trust")
    args = ap.parse_args(argv)
    try:
        cfg = convert(args.ckpt, args.out, args.heads, args.text_heads, args.drop_features, args.unsafe_pickle)
    except (ConversionError, FileNotFoundError, OSError) as e:
        print(f"convert_interclip: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: " + ", ".join(f"{k}={v}" for k, v in cfg.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
