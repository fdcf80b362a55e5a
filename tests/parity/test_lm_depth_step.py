"""`vimo lm step` with the depth head (docs/depth_head.md) against the plain-PyTorch reference of
tests/parity/depth_reference.py on a tiny random Llama: one LM position per motion slot with the summed
code embeddings, the depth head on the final hidden state, the combined text + depth loss. Plain,
right-padded and packed batches; tied and untied heads; full training (every LM weight) and LoRA (the
adapter's tensors). Every tensor, the depth head's included, within 1e-5 of the float64 reference,
relative to its max abs; bad depth inputs are refused with an error naming the tensor.

    vimo lm step --model HF_DIR --batch BATCH.safetensors --out OUT.safetensors --threads 1
                 (--full | --adapter ADAPTER_DIR) --depth-head HEAD.safetensors --depth-heads N
                 --motion-base M --codebook K

The batch file holds int64 input_ids [B, T], labels [B, T] (unshifted), depth_codes [B, T, Q],
depth_targets [B, T, Q] and optionally segment_ids, position_ids [B, T]; the output holds loss [1], the
LM's gradients (--full: every parameter under its transformers name, a tied lm_head.weight omitted;
--adapter: base_model.model.<...>.lora_A/B.weight) and depth_head.<name> for every depth-head tensor."""
import pathlib
import sys

import pytest

sys.path[:0] = [str(pathlib.Path(__file__).parent), str(pathlib.Path(__file__).parents[1])]
from conftest import run_vimo  # noqa: E402
from depth_reference import (BATCHES, PREFIX, depth_step, describe, head_shapes, make_depth_head,  # noqa: E402
                             plain_depth_batch, save_depth_head)
from pretrain_fixtures import (load_hf, load_peft, make_adapter, make_hf_model, relative_errors, report,  # noqa: E402
                               safetensors_torch)

V, MB, K, Q = 300, 200, 20, 5  # motion ids MB + q·K + k: 200..299, the end of the vocabulary
H, D, L, NH, FF = 64, 32, 2, 4, 48  # LM hidden (tiny_config); depth width, layers, heads, feed-forward
TOL = 1e-5
HEAD_NAMES = {PREFIX + n for n in head_shapes(H, D, L, FF, Q, K)}


@pytest.fixture(scope="module", params=["untied", "tied"])
def tiny(request, tmp_path_factory):
    tied = request.param == "tied"
    d = tmp_path_factory.mktemp(f"depth_{request.param}")
    make_hf_model(d / "hf", V, tied)
    make_adapter(d / "hf", d / "adapter")
    save_depth_head(d / "head.safetensors", make_depth_head(H, D, L, FF, Q, K, seed=3))
    lora_names = set(safetensors_torch.load_file(str(d / "adapter" / "adapter_model.safetensors")))
    assert len(lora_names) == 2 * 7 * 2, sorted(lora_names)[:4]
    return {"tied": tied, "hf": d / "hf", "adapter": d / "adapter", "head_file": d / "head.safetensors",
            "head": safetensors_torch.load_file(str(d / "head.safetensors")), "lora_names": lora_names}


def reference_model(t, mode):
    """(float64, float32) models: transformers for --full (every weight trains), PEFT for --adapter."""
    if mode == "full":
        return load_hf(t["hf"]).double(), load_hf(t["hf"])
    return load_peft(t["hf"], t["adapter"]).double(), load_peft(t["hf"], t["adapter"])


def vimo_depth_step(vimo_bin, tmp_path, t, batch, mode, tag="step", check=True):
    """Runs `vimo lm step` with the depth head; returns (output tensors or None, CompletedProcess)."""
    bpath, opath = tmp_path / f"{tag}_batch.safetensors", tmp_path / f"{tag}_out.safetensors"
    safetensors_torch.save_file({k: v.contiguous() for k, v in batch.items()}, str(bpath))
    args = ["lm", "step", "--model", t["hf"], "--batch", bpath, "--out", opath, "--threads", "1"]
    args += ["--full"] if mode == "full" else ["--adapter", t["adapter"]]
    args += ["--depth-head", t["head_file"], "--depth-heads", NH, "--motion-base", MB, "--codebook", K]
    p = run_vimo(vimo_bin, *args, check=check)
    return (safetensors_torch.load_file(str(opath)) if p.returncode == 0 else None), p


@pytest.mark.parametrize("mode", ["full", "lora"])
@pytest.mark.parametrize("case", list(BATCHES))
def test_depth_step(vimo_bin, tiny, tmp_path, case, mode):
    batch = BATCHES[case](Q, K, MB)
    t0 = batch["depth_targets"][..., 0]
    assert (t0 == K).any() and ((t0 >= 0) & (t0 < K)).any() and (batch["labels"] != -100).any()
    m64, m32 = reference_model(tiny, mode)
    ref, ref32 = depth_step(m64, tiny["head"], batch, MB, K, NH), depth_step(m32, tiny["head"], batch, MB, K, NH)
    base_names = {n for n, _ in load_hf(tiny["hf"]).named_parameters()}  # a tied head appears once
    lm_names = base_names if mode == "full" else tiny["lora_names"]
    expected = {"loss"} | lm_names | HEAD_NAMES
    assert set(ref) == expected, sorted(set(ref) ^ expected)[:6]  # the reference itself covers the contract
    got, _ = vimo_depth_step(vimo_bin, tmp_path, tiny, batch, mode)
    label = f"{case} {mode} tied={tiny['tied']} ({describe(batch, K)})"
    unexpected = sorted(n for n in set(got) - expected
                        if "lora_" in n or n.startswith(PREFIX) or n.startswith("new_rows.") or n in base_names)
    assert not unexpected, f"vimo wrote gradients that are not trainable here: {unexpected[:6]}"
    errs = relative_errors(got, ref)
    report(errs, f"{label}: vimo vs reference (float64)")
    report(relative_errors(ref32, ref), f"{label}: reference float32 vs float64, for scale")
    bad = {n: e for n, e in errs.items() if not e <= TOL}
    assert not bad, f"{len(bad)} tensors over {TOL}: {dict(sorted(bad.items(), key=lambda kv: -kv[1])[:5])}"


def test_bad_depth_inputs_are_refused(vimo_bin, tiny, tmp_path):
    good = plain_depth_batch(Q, K, MB)
    slots = (good["depth_codes"][..., 0] >= 0).nonzero()
    assert len(slots) > 0
    # depth_codes with Q - 1 levels for a head of Q levels.
    wrong_q = dict(good, depth_codes=good["depth_codes"][..., :Q - 1].contiguous())
    # A level-2 code equal to K at a slot.
    b, t = slots[0].tolist()
    big = {k: v.clone() for k, v in good.items()}
    big["depth_codes"][b, t, 2] = K
    for tag, batch in (("wrong_q", wrong_q), ("code_ge_k", big)):
        _, p = vimo_depth_step(vimo_bin, tmp_path, tiny, batch, "full", tag=tag, check=False)
        text = p.stdout + p.stderr
        assert p.returncode != 0, f"{tag}: vimo accepted the batch (exit 0)\n{text[-2000:]}"
        assert "depth_codes" in text, f"{tag}: the error does not name depth_codes:\n{text[-2000:]}"
