"""`vimo lm step` (one training step's loss and gradients) against PEFT + transformers on a tiny random
Llama: LoRA on every projection with non-zero B, new vocabulary rows, plain, right-padded and packed
batches, tied and untied heads. Every tensor within 1e-5 of the reference, relative to its max abs."""
import pathlib
import sys

import pytest

sys.path[:0] = [str(pathlib.Path(__file__).parent), str(pathlib.Path(__file__).parents[1])]
from pretrain_fixtures import (hf_step, load_hf, load_peft, make_adapter, make_hf_model, packed_batch,  # noqa: E402
                               padded_batch, per_sample_step, plain_batch, relative_errors, report,
                               safetensors_torch, split_segments, torch, vimo_step)

V, N = 300, 256  # vocabulary; rows N..V-1 are the "new" trainable rows
TOL = 1e-5
# The reference runs in float64 (the same PEFT model, .double()): float32 PEFT differs from it by up to
# ~2e-6 relative on these shapes, so the comparison measures vimo's error rather than both sides'.
CASES = {"plain": (plain_batch, hf_step), "padded": (padded_batch, hf_step), "packed": (packed_batch, per_sample_step)}


@pytest.fixture(scope="module", params=["untied", "tied"])
def tiny(request, tmp_path_factory):
    tied = request.param == "tied"
    d = tmp_path_factory.mktemp(f"step_{request.param}")
    make_hf_model(d / "hf", V, tied)
    make_adapter(d / "hf", d / "adapter")
    lora_names = set(safetensors_torch.load_file(str(d / "adapter" / "adapter_model.safetensors")))
    assert len(lora_names) == 2 * 7 * 2, sorted(lora_names)[:4]  # A and B x 7 projections x 2 layers
    return {"tied": tied, "hf": d / "hf", "adapter": d / "adapter", "lora_names": lora_names,
            "peft32": load_peft(d / "hf", d / "adapter"), "peft64": load_peft(d / "hf", d / "adapter").double()}


def check(got, ref, ref32, expected, label):
    assert set(ref) == expected, sorted(set(ref) ^ expected)  # the reference itself covers the contract
    unexpected = sorted(n for n in set(got) - expected if "lora_" in n or n.startswith("new_rows."))
    assert not unexpected, f"vimo wrote gradients that are not trainable here: {unexpected}"
    errs = relative_errors(got, ref)
    report(errs, f"{label}: vimo vs reference (float64)")
    report(relative_errors(ref32, ref), f"{label}: PEFT float32 vs reference (float64), for scale")
    bad = {n: e for n, e in errs.items() if not e <= TOL}
    assert not bad, f"{len(bad)} tensors over {TOL}: {dict(sorted(bad.items(), key=lambda kv: -kv[1])[:5])}"


def new_row_names(tied):
    return {"new_rows.embed_tokens"} | (set() if tied else {"new_rows.lm_head"})


@pytest.mark.parametrize("case", list(CASES))
def test_lora_and_new_rows(vimo_bin, tiny, tmp_path, case):
    make, step = CASES[case]
    batch = make(V)
    assert (batch["input_ids"] >= N).any() and ((batch["labels"] >= N)).any()  # new rows in and out
    ref = step(tiny["peft64"], batch, N)
    ref32 = step(tiny["peft32"], batch, N)
    got = vimo_step(vimo_bin, tmp_path, tiny["hf"], batch, tiny["adapter"], N)
    for n in new_row_names(tiny["tied"]):
        assert tuple(got[n].shape) == (V - N, 64), f"{n}: shape {tuple(got[n].shape)}, want {(V - N, 64)}"
    check(got, ref, ref32, {"loss"} | tiny["lora_names"] | new_row_names(tiny["tied"]), f"{case} tied={tiny['tied']}")


def test_lora_only(vimo_bin, tiny, tmp_path):
    batch = padded_batch(V, lengths=(20, 24, 9), prompt=(3, 8, 2), seed=5)
    ref, ref32 = hf_step(tiny["peft64"], batch), hf_step(tiny["peft32"], batch)
    got = vimo_step(vimo_bin, tmp_path, tiny["hf"], batch, tiny["adapter"])
    check(got, ref, ref32, {"loss"} | tiny["lora_names"], f"LoRA only tied={tiny['tied']}")


def test_new_rows_without_adapter(vimo_bin, tiny, tmp_path):
    batch = plain_batch(V, B=3, T=20, prompt=(4, 1, 9), seed=7)
    base64, base32 = load_hf(tiny["hf"]).double(), load_hf(tiny["hf"])
    ref, ref32 = hf_step(base64, batch, N), hf_step(base32, batch, N)
    got = vimo_step(vimo_bin, tmp_path, tiny["hf"], batch, new_rows_from=N)
    check(got, ref, ref32, {"loss"} | new_row_names(tiny["tied"]), f"new rows only tied={tiny['tied']}")


@pytest.mark.parametrize("case", ["plain", "packed"])
def test_full_training_gradients(vimo_bin, tiny, tmp_path, case):
    """A model trained from scratch: every weight's gradient (norm gains through the fused RMSNorm,
    the head through the chunked loss, tied or not) against transformers in float64."""
    make, step = CASES[case]
    batch = make(V)
    ref_model = load_hf(tiny["hf"]).double().train()
    ref_model.zero_grad(set_to_none=True)
    for p in ref_model.parameters():
        p.requires_grad_(True)
    if step is hf_step:
        logits = ref_model(batch["input_ids"], use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), batch["labels"][:, 1:].reshape(-1),
                                                 ignore_index=-100)
    else:
        total, count = 0.0, 0
        for ids, labels in split_segments(batch):
            lg = ref_model(ids[None], use_cache=False).logits[0]
            total = total + torch.nn.functional.cross_entropy(lg[:-1], labels[1:], ignore_index=-100, reduction="sum")
            count += int((labels[1:] != -100).sum())
        loss = total / count
    loss.backward()
    ref = {"loss": loss.detach().reshape(())}
    ref.update({n: p.grad.detach().clone() for n, p in ref_model.named_parameters()
                if not (tiny["tied"] and n == "lm_head.weight")})
    got = vimo_step(vimo_bin, tmp_path, tiny["hf"], batch, full=True)
    errs = relative_errors(got, ref)
    report(errs, f"full {case} tied={tiny['tied']}: vimo vs transformers (float64)")
    bad = {n: e for n, e in errs.items() if not e <= TOL}
    assert not bad, f"{len(bad)} tensors over {TOL}: {dict(sorted(bad.items(), key=lambda kv: -kv[1])[:5])}"
