"""The evaluator and the protocols end to end on a tiny world (synthetic clips, a few-step tokenizer,
LM and evaluator): train-evaluator, the GT row, t2m / m2t / reaction with cached samples, tables,
and the bad inputs of the evaluation issue (each a named error, no JSON written)."""
import json
import pathlib

import numpy as np
import pytest

from conftest import SOURCE_DIR, run_vimo, tiny_pipeline

REPS = "3"


@pytest.fixture(scope="module")
def world(vimo_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_protocols")
    w = tiny_pipeline(vimo_bin, root, 48, 3)
    P, TOK, lm_args = w["packed"], w["tokens"], w["lm_args"]
    LM = root / "lm"
    run_vimo(vimo_bin, "pretrain", "--config", SOURCE_DIR / "configs/pretrain/demo.yaml", f"run.dir={LM}", *lm_args)
    LM_M2T = root / "lm_m2t_only"
    run_vimo(vimo_bin, "pretrain", "--config", SOURCE_DIR / "configs/pretrain/demo.yaml", f"run.dir={LM_M2T}",
             *lm_args, "data.tasks=[m2t]", "data.task_weights=[1.0]")
    EV = root / "ev"
    run_vimo(vimo_bin, "eval", "train-evaluator", "--config", SOURCE_DIR / "configs/eval/evaluator_demo.yaml",
             f"run.dir={EV}", f"data.packed={P}", "train.steps=3", "train.val_every=3", "data.batch_size=8",
             "data.val_batch=4", "model.latent_dim=16", "model.ff_size=32", "model.num_layers=1", "model.num_heads=2",
             "model.text_width=16", "model.text_ff=32", "model.text_layers=1", "model.text_heads=2",
             "model.text_vocab_size=400", "run.threads=1")
    return {"root": root, "packed": P, "tokens": TOK, "lm": LM, "lm_m2t": LM_M2T, "ev": EV, "lm_args": lm_args}


def protocol(vimo_bin, world, task, *extra, check=True):
    return run_vimo(vimo_bin, "eval", task, "--run", world["lm"], "--evaluator", world["ev"], "--replications", REPS,
                    "--limit", 8, "--rows", 4, "--batch-size", 4, *extra, check=check)


def summary_ok(row, metrics):
    for m in metrics:
        assert m in row, f"{m} missing from {sorted(row)}"
        assert np.isfinite(row[m]["mean"]) and row[m]["ci95"] >= 0, (m, row[m])


def test_evaluator_run_and_ground_truth_row(vimo_bin, world):
    ev = world["ev"]
    for f in ("text.model", "stats.safetensors", "best/model.safetensors", "metrics.jsonl"):
        assert (ev / f).exists(), f"evaluator run lacks {f}"
    vals = [json.loads(l) for l in (ev / "metrics.jsonl").read_text().splitlines() if '"val/' in l or "val" in l]
    assert any("r_precision_top3" in json.dumps(v) for v in vals), "validation R-precision was not logged"
    run_vimo(vimo_bin, "eval", "evaluator", "--evaluator", ev, "--split", "test", "--replications", REPS,
             "--batch-size", 4)
    j = json.loads((ev / "eval" / "evaluator_test.json").read_text())
    assert j["replications"] == int(REPS) and set(j["rows"]) == {"gt", "shuffled"}
    summary_ok(j["rows"]["gt"], ["r_precision_top1", "r_precision_top3", "mm_dist", "fid", "diversity"])
    assert (ev / "eval" / "evaluator_test.md").read_text().startswith("| ground_truth (test) |")


def test_t2m_protocol_and_resume(vimo_bin, world):
    p = protocol(vimo_bin, world, "t2m")
    j = json.loads((world["lm"] / "eval" / "t2m_test.json").read_text())
    assert j["task"] == "t2m" and j["protocol"] == "intergen" and j["replications"] == int(REPS)
    assert set(j["rows"]) == {"gt", "model", "random_tokens", "gt_tokens"}
    for row in j["rows"].values():
        summary_ok(row, ["r_precision_top1", "r_precision_top2", "r_precision_top3", "fid", "mm_dist", "diversity"])
    n = j["clips"]
    assert 4 < n <= 8 and j["valid_motions"]["total"] == n
    batches = sorted((world["lm"] / "eval" / "samples" / "t2m_test_pass0").glob("batch_*.json"))
    assert len(batches) == 2, batches
    # A rerun reuses every cached sample and gives the same numbers.
    p2 = protocol(vimo_bin, world, "t2m")
    assert f"{n} of {n} samples reused" in p2.stdout + p2.stderr
    j2 = json.loads((world["lm"] / "eval" / "t2m_test.json").read_text())
    assert j2["rows"] == j["rows"]
    # A killed evaluation: one batch missing is regenerated, the other reused.
    batches[1].unlink()
    p3 = protocol(vimo_bin, world, "t2m")
    assert f"4 of {n} samples reused" in p3.stdout + p3.stderr


def test_m2t_protocol(vimo_bin, world):
    protocol(vimo_bin, world, "m2t")
    j = json.loads((world["lm"] / "eval" / "m2t_test.json").read_text())
    assert set(j["rows"]) == {"gt", "model"}
    summary_ok(j["rows"]["model"], ["r_precision_top1", "r_precision_top3", "mm_dist", "bleu_1", "bleu_4", "rouge_l",
                                    "cider"])
    hyps = json.loads((world["lm"] / "eval" / "m2t_test_hyps.json").read_text())
    refs = json.loads((world["lm"] / "eval" / "m2t_test_refs.json").read_text())
    assert set(hyps) == set(refs) and len(hyps) == j["clips"]


def test_reaction_protocol(vimo_bin, world):
    protocol(vimo_bin, world, "reaction")
    j = json.loads((world["lm"] / "eval" / "reaction_test.json").read_text())
    assert set(j["rows"]) == {"gt", "model", "mirrored_actor"}
    summary_ok(j["rows"]["model"], ["mpjpe_mm", "fid", "r_precision_top3"])
    assert j["rows"]["mirrored_actor"]["mpjpe_mm"]["mean"] > 0


def test_tables(vimo_bin, world):
    for task in ("t2m", "m2t"):
        if not (world["lm"] / "eval" / f"{task}_test.json").exists():
            protocol(vimo_bin, world, task)
    out = world["root"] / "tables"
    p = run_vimo(vimo_bin, "eval", "tables", "--runs", world["lm"], "--out", out)
    md = (out / "t2m_test.md").read_text()
    assert "| Ground truth |" in md and "| lm |" in md and "±" in md
    tex = (out / "t2m_test.tex").read_text()
    assert "\\begin{tabular}" in tex and "Ground truth" in tex
    js = json.loads((out / "m2t_test.json").read_text())
    assert [r["name"] for r in js["rows"]] == ["Ground truth", "lm"]
    assert "bleu_4" in js["columns"] and "bleu_4" in js["rows"][1]
    assert "Ground truth" in p.stdout


def test_run_without_the_task(vimo_bin, world):
    out = world["root"] / "no_task.json"
    p = run_vimo(vimo_bin, "eval", "t2m", "--run", world["lm_m2t"], "--evaluator", world["ev"], "--out", out,
                 check=False)
    assert p.returncode != 0 and "not trained on task t2m" in p.stderr, p.stderr
    assert not out.exists()


def test_evaluator_of_another_feature_layout(vimo_bin, world, tmp_path):
    from safetensors.numpy import load_file, save_file
    from safetensors import safe_open
    src = world["ev"] / "best" / "model.safetensors"
    with safe_open(str(src), "np") as f:
        meta = dict(f.metadata())
    arch = json.loads(meta["vimo_evaluator"])
    arch["motion_features"] = 100
    meta["vimo_evaluator"] = json.dumps(arch)
    t = load_file(str(src))
    w = t["motion_encoder.embed_motion.weight"]
    t["motion_encoder.embed_motion.weight"] = np.zeros((w.shape[0], 2 * (100 - arch["drop_features"])), np.float32)
    other = tmp_path / "other"
    other.mkdir()
    save_file(t, str(other / "model.safetensors"), metadata=meta)
    (other / "stats.safetensors").write_bytes((world["ev"] / "stats.safetensors").read_bytes())
    (other / "text.model").write_bytes((world["ev"] / "text.model").read_bytes())
    out = tmp_path / "t2m.json"
    p = run_vimo(vimo_bin, "eval", "t2m", "--run", world["lm"], "--evaluator", other, "--packed", world["packed"],
                 "--out", out, check=False)
    assert p.returncode != 0 and "features" in p.stderr, p.stderr
    assert not out.exists()


def test_nan_features_and_missing_tensor(vimo_bin, world, tmp_path):
    x = np.zeros((2, 10, 2 * 262), np.float32)
    x[1, 3, 5] = np.nan
    np.save(tmp_path / "m.npy", x)
    p = run_vimo(vimo_bin, "eval", "embed", "--evaluator", world["ev"], "--motion", tmp_path / "m.npy",
                 "--out-motion", tmp_path / "o.npy", check=False)
    assert p.returncode != 0 and "NaN" in p.stderr, p.stderr
    assert not (tmp_path / "o.npy").exists()
    caps = tmp_path / "caps.json"
    caps.write_text(json.dumps(["two people shake hands", ""]))
    p = run_vimo(vimo_bin, "eval", "embed", "--evaluator", world["ev"], "--captions", caps,
                 "--out-text", tmp_path / "t.npy", check=False)
    assert p.returncode != 0 and "caption 1 is empty" in p.stderr, p.stderr
    assert not (tmp_path / "t.npy").exists()


def test_evaluator_config_errors(vimo_bin, world, tmp_path):
    run = tmp_path / "ev_bad"
    p = run_vimo(vimo_bin, "eval", "train-evaluator", "--config", SOURCE_DIR / "configs/eval/evaluator_demo.yaml",
                 f"run.dir={run}", f"data.packed={world['packed']}", "model.motion_features=100", check=False)
    assert p.returncode != 0 and "model.motion_features=100" in p.stderr, p.stderr
    assert not run.exists()
    p = run_vimo(vimo_bin, "eval", "train-evaluator", "--config", SOURCE_DIR / "configs/eval/evaluator_demo.yaml",
                 f"run.dir={run}", f"data.packed={tmp_path / 'nothing'}", check=False)
    assert p.returncode != 0 and "nothing" in p.stderr, p.stderr
    assert not run.exists()


def test_reproduce_tables_script_runs_the_trained_tasks_of_each_run(vimo_bin, world, tmp_path):
    import os
    import subprocess
    out = tmp_path / "tables"
    p = subprocess.run(["bash", str(SOURCE_DIR / "scripts/reproduce_tables.sh"), "--evaluator", str(world["ev"]),
                        "--replications", str(REPS), "--out", str(out), str(world["lm"]), str(world["lm_m2t"]), "--",
                        "--limit", "8", "--rows", "4", "--batch-size", "4"],
                       capture_output=True, text=True, env=dict(os.environ, VIMO_BIN=str(vimo_bin)), timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "lm_m2t_only] t2m: not trained, skipped" in p.stdout and "lm_m2t_only] reaction: not trained" in p.stdout
    names = {t: [r["name"] for r in json.loads((out / f"{t}_test.json").read_text())["rows"]] for t in ("t2m", "m2t")}
    assert names["t2m"] == ["Ground truth", "lm"] and names["m2t"] == ["Ground truth", "lm", "lm_m2t_only"], names
    assert (out / "reaction_test.md").exists() and (world["lm_m2t"] / "eval" / "m2t_test.json").exists()
    bad = subprocess.run(["bash", str(SOURCE_DIR / "scripts/reproduce_tables.sh"), str(world["lm"])],
                         capture_output=True, text=True, env=dict(os.environ, VIMO_BIN=str(vimo_bin)))
    assert bad.returncode == 2 and "--evaluator EV is required" in bad.stderr


def safetensors_names(path):
    """Tensor names from a safetensors header (8-byte length, then JSON)."""
    raw = pathlib.Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return set(json.loads(raw[8:8 + n])) - {"__metadata__"}


def test_depth_head_run_trains_exports_and_runs_the_protocols_unchanged(vimo_bin, world):
    """model.motion_head=depth (docs/depth_head.md): the run says so in lm/vim.json, exports its head
    beside (not inside) the merged HF model, and the t2m and m2t protocols run on it as on a flat run;
    plain token generation on its merged LM is a named error."""
    D = world["root"] / "lm_depth"
    run_vimo(vimo_bin, "pretrain", "--config", SOURCE_DIR / "configs/pretrain/demo.yaml", f"run.dir={D}",
             *world["lm_args"], "model.motion_head=depth", "model.depth_width=16", "model.depth_layers=1",
             "model.depth_heads=2", "model.depth_ffn=24")
    spec = json.loads((D / "lm" / "vim.json").read_text())
    assert spec["motion_head"] == "depth" and spec["depth_head"] == {"width": 16, "layers": 1, "heads": 2, "ffn": 24}
    head = safetensors_names(D / "merged" / "depth_head.safetensors")
    assert "depth_head.in_proj.weight" in head and "depth_head.layers.0.qkv.weight" in head and len(head) == 13, head
    assert not any(n.startswith("depth_head.") for n in safetensors_names(D / "merged" / "model.safetensors"))
    for task in ("t2m", "m2t"):
        run_vimo(vimo_bin, "eval", task, "--run", D, "--evaluator", world["ev"], "--replications", REPS, "--limit", 8,
                 "--rows", 4, "--batch-size", 4)
        j = json.loads((D / "eval" / f"{task}_test.json").read_text())
        assert j["task"] == task and "model" in j["rows"], sorted(j["rows"])
    p = run_vimo(vimo_bin, "lm", "generate", "--model", D / "merged", "--tokens", "1 2 3", "--max-new", 2, check=False)
    assert p.returncode != 0 and "depth-head run" in p.stdout + p.stderr, p.stdout + p.stderr


def test_group_composition_errors_and_protocol(vimo_bin, world, tmp_path):
    out = tmp_path / "group.npy"
    p = run_vimo(vimo_bin, "generate", "--run", world["lm"], "--task", "group", "--persons", 3, "--text",
                 "the first person shakes hands with the second person.", "--out", out, "--render", tmp_path / "g.html",
                 "--max-steps", 6, "--tries", 2, "--threads", 1)
    x = np.load(out)
    assert x.ndim == 3 and x.shape[1] == 3 and x.shape[2] == 262 and np.isfinite(x).all(), x.shape
    assert "person 3: reacts to person 1" in p.stdout, p.stdout
    assert '"persons":3' in (tmp_path / "g.html").read_text()
    # chain layout with its own pair text; four persons
    p = run_vimo(vimo_bin, "generate", "--run", world["lm"], "--task", "group", "--persons", 4, "--layout", "chain",
                 "--text", "two people dance.", "--pair-text", "they hold hands.", "--out", tmp_path / "g4.npy",
                 "--max-steps", 6, "--tries", 1, "--threads", 1)
    assert np.load(tmp_path / "g4.npy").shape[1] == 4
    assert "person 4: reacts to person 3" in p.stdout, p.stdout
    # bad input: named errors, nothing written
    bad = tmp_path / "bad.npy"
    for args, msg in ((["--persons", 1], "at least 2"), (["--persons", 9], "configured maximum"),
                      (["--persons", 4, "--max-persons", 3], "configured maximum"),
                      (["--persons", 3, "--anchor", 5], "anchor must be an earlier person")):
        p = run_vimo(vimo_bin, "generate", "--run", world["lm"], "--task", "group", "--text", "hi.", "--out", bad,
                     "--max-steps", 4, "--threads", 1, *args, check=False)
        assert p.returncode != 0 and msg in p.stderr, (args, p.stderr)
        assert not bad.exists()
    p = run_vimo(vimo_bin, "generate", "--run", world["lm_m2t"], "--task", "group", "--persons", 3, "--text", "hi.",
                 "--out", bad, check=False)
    assert p.returncode != 0 and "not trained on task t2m" in p.stderr, p.stderr

    # The protocol over synthetic group scenes, and its cache.
    args = ["eval", "group", "--run", world["lm"], "--evaluator", world["ev"], "--scenes", 4, "--replications", REPS,
            "--batch-size", 4, "--tries", 2, "--threads", 1]
    run_vimo(vimo_bin, *args)
    j = json.loads((world["lm"] / "eval" / "group3_synthetic.json").read_text())
    assert j["task"] == "group" and j["persons"] == 3 and j["pairs"] == 8 and set(j["rows"]) == {"gt", "model"}
    summary_ok(j["rows"]["gt"], ["r_precision_top3", "fid", "penetration", "foot_skating", "contact_found"])
    summary_ok(j["rows"]["model"], ["r_precision_top3", "fid", "penetration", "foot_skating", "contact_found"])
    assert j["rows"]["gt"]["contact_found"]["mean"] == 1.0, "every scripted contact happens in the ground truth"
    assert j["rows"]["gt"]["foot_skating"]["mean"] < 0.1
    assert {"penetration", "foot_skating"} <= set(j["model_over_gt"])
    assert (world["lm"] / "eval" / "group3_synthetic.md").read_text().startswith("|")
    p = run_vimo(vimo_bin, *args)
    assert "4 of 4 samples reused" in p.stdout + p.stderr
    assert json.loads((world["lm"] / "eval" / "group3_synthetic.json").read_text())["rows"] == j["rows"]
    p = run_vimo(vimo_bin, "eval", "group", "--run", world["lm"], "--evaluator", world["ev"], "--persons", 9,
                 "--out", tmp_path / "g9.json", check=False)
    assert p.returncode != 0 and "--persons must be 3..8" in p.stderr and not (tmp_path / "g9.json").exists()
