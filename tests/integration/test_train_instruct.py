"""Stage 3 end to end on a tiny pipeline: synthetic conversations (deterministic by seed, every clip
named by a conversation packed and tokenized), `vimo instruct` (loss on assistant turns, exact resume,
export), `vimo eval instruct`, `vimo chat --script --html` with its bad-input answers, and
`vimo generate --task editing`."""
import json
import shutil
import subprocess

import numpy as np
import pytest

from conftest import SOURCE_DIR, run_vimo, tiny_pipeline


def read_jsonl(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def world(vimo_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("instruct")
    w = tiny_pipeline(vimo_bin, root, 48, 7)
    LM = root / "pretrain"
    run_vimo(vimo_bin, "pretrain", "--config", SOURCE_DIR / "configs/pretrain/demo.yaml", f"run.dir={LM}",
             *w["lm_args"], "model.motion_layers=1")
    C, D = root / "conv", root / "conv" / "dialogues"
    out = run_vimo(vimo_bin, "data", "conversations", "--synthetic", C, "--out", D, "--count", 60, "--seed", 3).stdout
    assert "wrote 60 conversations" in out
    run_vimo(vimo_bin, "data", "prepare", "--config", SOURCE_DIR / "configs/data/conversations.yaml", f"data.root={C}",
             f"data.out={root / 'cpacked'}")
    run_vimo(vimo_bin, "tokenizer", "encode", "--run", w["tok"], "--data", root / "cpacked", "--out", root / "ctokens")
    args = [f"model.init={LM}", f"data.conversations={D}", f"data.tokens={root / 'ctokens'}",
            f"data.pretrain_tokens={w['tokens']}", "train.steps=4", "train.val_every=2", "train.ckpt_every=2",
            "data.batch_size=2", "run.threads=1", "data.val_conversations=4"]
    return {**w, "root": root, "lm": LM, "conv": C, "dialogues": D, "ctokens": root / "ctokens",
            "cpacked": root / "cpacked", "args": args}


def test_synthetic_conversations_cover_the_tasks_and_every_clip_is_packed(world, vimo_bin, tmp_path):
    D = world["dialogues"]
    recs = [r for s in ("train", "val", "test") for r in read_jsonl(D / f"{s}.jsonl")]
    assert len(recs) == 60
    tasks = {r["task"] for r in recs}
    assert tasks == {"editing", "reasoning", "story"}
    meta = {m["id"]: m for m in json.loads((D / "meta.json").read_text())["conversations"]}
    for r in recs:
        assert r["turns"][0]["role"] == "user" and r["turns"][-1]["role"] == "assistant"
        assert 2 <= len(r["turns"]) <= 5 and len(r["turns"]) % 2 == 0
        if r["task"] == "editing":
            assert r["turns"][-1]["motion"] == meta[r["id"]]["target"]
        if r["task"] == "story":  # the scored scene after the first is one assistant turn
            assert [t["motion"] for t in r["turns"] if t["role"] == "assistant"].count(meta[r["id"]]["target"]) == 1
    # Motion on the user side too: edits of a given scene, reasoning, and stories that start from a scene.
    for task in ("editing", "reasoning", "story"):
        assert any(t["role"] == "user" and t["motion"] for r in recs if r["task"] == task for t in r["turns"]), task
    # Every clip a conversation names is in the token cache of its split (the reader checks ids).
    for s in ("train", "val", "test"):
        out = run_vimo(vimo_bin, "data", "conversations", "--check", D / f"{s}.jsonl", "--tokens", world["ctokens"]).stdout
        assert "conversations" in out
    # Deterministic by seed: the same seed writes the same conversations.
    again = tmp_path / "again"
    run_vimo(vimo_bin, "data", "conversations", "--synthetic", again, "--out", again / "d", "--count", 60, "--seed", 3)
    assert (again / "d" / "train.jsonl").read_text() == (D / "train.jsonl").read_text()
    # An edited clip differs from its source (a real edit, not a copy).
    ed = next(m for m in meta.values() if m["task"] == "editing")
    a = np.load(world["conv"] / "motions_processed" / "person1" / f"{ed['source']}.npy")
    b = np.load(world["conv"] / "motions_processed" / "person1" / f"{ed['target']}.npy")
    assert a.shape != b.shape or not np.allclose(a, b)


def test_instruct_trains_resumes_exactly_and_exports(world, vimo_bin, tmp_path):
    cfg = SOURCE_DIR / "configs/instruct/demo.yaml"
    full = tmp_path / "full"
    run_vimo(vimo_bin, "instruct", "--config", cfg, f"run.dir={full}", *world["args"])
    assert (full / "merged" / "config.json").exists()
    spec = json.loads((full / "lm" / "vim.json").read_text())
    assert spec["stage"] == "instruct"
    metrics = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    val = [m for m in metrics if any(k.startswith("val/loss_") or k.startswith("loss_") for k in m)]
    assert val, "validation wrote no per-task loss"
    # Resumed from the step-2 checkpoint (the step-4 one removed): the same weights at step 4.
    from safetensors.numpy import load_file
    final = full / "checkpoints" / "step_00000004"
    wa = load_file(str(final / "model.safetensors"))
    shutil.rmtree(final)
    (full / "latest").unlink()
    p = run_vimo(vimo_bin, "instruct", "--config", cfg, f"run.dir={full}", *world["args"])
    assert "resumed from" in p.stdout + p.stderr
    wb = load_file(str(final / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)


def test_instruct_bad_input_is_named(world, vimo_bin, tmp_path):
    cfg = SOURCE_DIR / "configs/instruct/demo.yaml"
    p = run_vimo(vimo_bin, "instruct", "--config", cfg, f"run.dir={tmp_path / 'a'}", *world["args"],
                 f"model.init={tmp_path / 'nothing'}", check=False)
    assert p.returncode != 0 and "not a stage-2 run" in p.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(world["dialogues"] / "val.jsonl", bad / "val.jsonl")
    lines = (world["dialogues"] / "train.jsonl").read_text().splitlines()
    lines[2] = lines[2].replace('"motion":"conv', '"motion":"nosuch')
    (bad / "train.jsonl").write_text("\n".join(lines) + "\n")
    p = run_vimo(vimo_bin, "instruct", "--config", cfg, f"run.dir={tmp_path / 'b'}", *world["args"],
                 f"data.conversations={bad}", check=False)
    assert p.returncode != 0 and "train.jsonl:3" in p.stderr and "nosuch" in p.stderr
    assert not (tmp_path / "b").exists()


def test_eval_instruct_chat_and_generate(world, vimo_bin, tmp_path):
    run = tmp_path / "run"
    run_vimo(vimo_bin, "instruct", "--config", SOURCE_DIR / "configs/instruct/demo.yaml", f"run.dir={run}", *world["args"])
    ev = tmp_path / "ev"
    run_vimo(vimo_bin, "eval", "train-evaluator", "--config", SOURCE_DIR / "configs/eval/evaluator_demo.yaml",
             f"run.dir={ev}", f"data.packed={world['packed']}", "train.steps=2", "train.val_every=0", "run.threads=1")
    eval_args = ["eval", "instruct", "--run", run, "--evaluator", ev, "--conversations", world["dialogues"],
                 "--tokens", world["ctokens"], "--packed", world["cpacked"], "--split", "test", "--limit", 3,
                 "--meteor", "off", "--threads", 1, "--rows", 2]
    run_vimo(vimo_bin, *eval_args)
    j = json.loads((run / "eval" / "instruct_test.json").read_text())
    assert set(j["rows"]) == {"editing", "source_unedited", "source_tokenized", "edited_tokenized", "edited_true",
                              "reasoning", "story"}
    for row in j["rows"].values():
        for m in row.values():
            assert set(m) == {"mean", "ci95"} and np.isfinite(m["mean"])
    # The tokenized truth is the bound of a tokenized answer: its error is the tokenizer's own, far below
    # the distance between two different scenes, and below the copied source's.
    rows = j["rows"]
    assert rows["edited_tokenized"]["mpjpe_mm"]["mean"] < rows["source_tokenized"]["mpjpe_mm"]["mean"]
    assert 0.0 <= rows["edited_true"]["caption_preferred_rate"]["mean"] <= 1.0
    forms = j["per_reasoning_form"]
    n = sum(forms[f]["cases"] for f in ("before", "after") if f in forms)
    ok = sum(round(forms[f]["accuracy"] * forms[f]["cases"]) for f in ("before", "after") if f in forms)
    assert rows["reasoning"]["accuracy_before_after"]["mean"] == pytest.approx(ok / n if n else 0.0)
    # The answers are cached batch by batch: a rerun reuses them all and scores the same; a run killed
    # after some batches (here: the last batch file removed) makes only the missing ones.
    samples = run / "eval" / "samples" / "instruct_test"
    batches = sorted(samples.glob("batch_*.json"))
    assert len(batches) >= 2
    answers = (run / "eval" / "instruct_test.answers.jsonl").read_text()
    p = run_vimo(vimo_bin, *eval_args)
    n = sum(len(json.loads(b.read_text())) for b in batches)
    assert f"{n} of {n} samples reused" in p.stdout + p.stderr
    assert json.loads((run / "eval" / "instruct_test.json").read_text())["rows"] == j["rows"]
    assert (run / "eval" / "instruct_test.answers.jsonl").read_text() == answers
    last = len(json.loads(batches[-1].read_text()))
    batches[-1].unlink()
    p = run_vimo(vimo_bin, *eval_args)
    assert f"{n - last} of {n} samples reused" in p.stdout + p.stderr and batches[-1].exists()

    # A scripted chat: text turns, a motion attached by clip id, a bad file and a bad command.
    clip = read_jsonl(world["dialogues"] / "train.jsonl")[0]["turns"]
    clip_id = next(t["motion"] for t in clip if t["motion"])
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((20, 2, 100), np.float32))
    script = tmp_path / "script.txt"
    script.write_text("Two people shake hands.\n/motion " + str(wrong) + "\n/nosuch\n/motion " + clip_id +
                      " Make it slower.\n/history\n/save\n")
    out = run_vimo(vimo_bin, "chat", "--run", run, "--script", script, "--out", tmp_path / "chat", "--html",
                   tmp_path / "chat.html", "--tokens", world["ctokens"] / "train.h5", "--threads", 1).stdout
    assert "error: motion file" in out and "[T, 2, 262]" in out  # the wrong feature size is named
    assert "error: unknown command '/nosuch'" in out
    lines = out.splitlines()
    assert sum(x.startswith("assistant: ") for x in lines) == 2  # both sent turns answered: the session kept going
    assert sum(x.startswith("[") and "] user: " in x for x in lines) == 2  # /history lists both user turns
    assert (tmp_path / "chat" / "session.json").exists()
    html = (tmp_path / "chat.html").read_text()
    assert html.count('class="turn ') == 4 and "iframe" in html

    src = tmp_path / "src.npy"
    run_vimo(vimo_bin, "data", "show", world["cpacked"] / "train.h5", "--clip", clip_id, "--out", src)
    p = run_vimo(vimo_bin, "generate", "--run", run, "--task", "editing", "--motion", src, "--text", "make it slower",
                 "--out", tmp_path / "edited.npy", check=False)
    assert p.returncode == 0, p.stderr
    p = run_vimo(vimo_bin, "generate", "--run", run, "--task", "editing", "--text", "make it slower", check=False)
    assert p.returncode != 0 and "--motion" in p.stderr


def person_pixels(png, rgb, tol=40):
    from PIL import Image
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return int((np.abs(img - np.array(rgb)).max(axis=2) <= tol).sum())


def body_pixels(png):
    """Pixels of the viewer's body colours: A's right limbs and head (blues), B's (oranges)."""
    return sum(person_pixels(png, c) for c in ((0x2D, 0x73, 0xCD), (0x16, 0x48, 0xA5), (0xE1, 0x6E, 0x1E), (0xB9, 0x3C, 0x0A)))


def test_chat_page_draws_in_headless_chromium(world, vimo_bin, tmp_path):
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not chrome:
        pytest.skip("Chromium is not installed")
    import html as htmllib
    import re
    run = tmp_path / "run"
    run_vimo(vimo_bin, "instruct", "--config", SOURCE_DIR / "configs/instruct/demo.yaml", f"run.dir={run}", *world["args"])
    clip = read_jsonl(world["dialogues"] / "train.jsonl")[0]["turns"]
    clip_id = next(t["motion"] for t in clip if t["motion"])
    script = tmp_path / "s.txt"
    script.write_text("/motion " + clip_id + " Make it slower.\nWhat happens next?\n")
    run_vimo(vimo_bin, "chat", "--run", run, "--script", script, "--out", tmp_path / "c", "--html", tmp_path / "c.html",
             "--max-steps", 8, "--threads", 1, "--tokens", world["ctokens"] / "train.h5")
    page = (tmp_path / "c.html").read_text()
    viewers = [htmllib.unescape(v) for v in re.findall(r'srcdoc="([^"]*)"', page)]
    assert viewers, "the chat page has no motion viewer (the user's attached motion has one)"

    def shot(url, out, height):
        subprocess.run([chrome, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--virtual-time-budget=3000", f"--screenshot={out}", f"--window-size=900,{height}", url],
                       capture_output=True, timeout=120)
        assert out.exists(), "Chromium wrote no screenshot"
        return out

    # The whole page draws, and so does every viewer on it: each draws the bodies (A blue, B orange; a tiny
    # model's decoded pair may stand on one spot, A drawn over B, and the pose differs by frame, so any
    # body colour counts, on the page as in each viewer).
    whole = shot(f"file://{tmp_path / 'c.html'}", tmp_path / "page.png", 760 * len(viewers) + 400)
    assert body_pixels(whole) > 50, "the page's viewers drew no body"
    for k, v in enumerate(viewers):
        f = tmp_path / f"viewer{k}.html"
        f.write_text(v)
        png = shot(f"file://{f}", tmp_path / f"viewer{k}.png", 760)
        assert body_pixels(png) > 50, f"viewer {k} drew no body"
        assert person_pixels(png, (0xD4, 0xD4, 0xCD), tol=8) > 200, f"viewer {k} drew no floor grid"
