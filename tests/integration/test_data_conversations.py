"""Stage-3 conversation files: `vimo data conversations --check` accepts the documented format and
names file, line and fault for every malformed line; `--from-triples` converts instruction triples
(JSONL and tab-separated) and writes nothing when an input line is bad."""
import json

import pytest

from conftest import SOURCE_DIR, run_vimo, tiny_pipeline


def conv(cid, task="editing", turns=None):
    if turns is None:
        turns = [{"role": "user", "text": "Two people shake hands.", "motion": None},
                 {"role": "assistant", "text": "", "motion": "1"},
                 {"role": "user", "text": "Make it a hug instead.", "motion": None},
                 {"role": "assistant", "text": "Here they hug.", "motion": "2"}]
    return {"id": cid, "task": task, "turns": turns}


def write_lines(path, items):
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in items))
    return path


@pytest.fixture(scope="module")
def world(vimo_bin, tmp_path_factory):
    """48 synthetic clips -> packed -> a 2-step RQ-VAE -> token cache -> a 2-step stage-2 run."""
    root = tmp_path_factory.mktemp("conversations")
    w = tiny_pipeline(vimo_bin, root, 48, 5)
    S, TOK, LM = w["synth"], w["tokens"], root / "lm"
    run_vimo(vimo_bin, "pretrain", "--config", SOURCE_DIR / "configs/pretrain/demo.yaml", f"run.dir={LM}",
             *w["lm_args"], "model.motion_layers=1")
    ids = []
    for split in ("train", "val", "test"):
        ids += [x.strip() for x in (S / "split" / f"{split}.txt").read_text().split() if x.strip()]
    return {"tokens": TOK, "lm": LM, "ids": ids}


@pytest.fixture(scope="module")
def tokens(world):
    return world["tokens"], world["ids"]
def test_a_valid_file_is_summarized(vimo_bin, tmp_path, tokens):
    tok, ids = tokens
    items = [conv("a"), conv("b", "m2t", [{"role": "user", "text": "What happens?", "motion": ids[0]},
                                          {"role": "assistant", "text": "They wave.", "motion": None}]),
             conv("c", "story", [{"role": "user", "text": "Once upon a time", "motion": ids[1]},
                                 {"role": "assistant", "text": "Next they bow.", "motion": ids[2]}])]
    items[0]["turns"][1]["motion"], items[0]["turns"][3]["motion"] = ids[3], ids[4]
    f = write_lines(tmp_path / "c.jsonl", [items[0], "", items[1], "   ", items[2]])  # blank lines are skipped
    out = run_vimo(vimo_bin, "data", "conversations", "--check", f, "--tokens", tok).stdout
    turns = sum(len(x["turns"]) for x in items)
    motions = sum(t["motion"] is not None for x in items for t in x["turns"])
    assert f"3 conversations, {turns} turns, {motions} motion turns; editing 1 m2t 1 story 1" in out, out


BAD = [
    ("not json", "{\"id\": \"x\", ", "not a JSON object"),
    ("not an object", "[1, 2]", "a conversation is a JSON object"),
    ("unknown task", conv("x", "dance"), "unknown task \"dance\""),
    ("no turns", conv("x", turns=[]), "has no turns"),
    ("missing id", {"task": "t2m", "turns": conv("x")["turns"]}, "missing key \"id\""),
    ("assistant first", conv("x", turns=[{"role": "assistant", "text": "hi", "motion": None},
                                         {"role": "user", "text": "hi", "motion": None}]), "expected a user turn"),
    ("two users", conv("x", turns=[{"role": "user", "text": "a", "motion": None},
                                   {"role": "user", "text": "b", "motion": None},
                                   {"role": "assistant", "text": "c", "motion": None}]), "turn 2 of 'x': expected an assistant turn"),
    ("ends with user", conv("x", turns=[{"role": "user", "text": "a", "motion": None},
                                        {"role": "assistant", "text": "b", "motion": None},
                                        {"role": "user", "text": "c", "motion": None}]), "ends with a user turn"),
    ("bad role", conv("x", turns=[{"role": "system", "text": "a", "motion": None}]), "neither \"user\" nor"),
    ("misspelt key", conv("x", turns=[{"role": "user", "text": "a", "motoin": "1"},
                                      {"role": "assistant", "text": "b", "motion": None}]), "unknown key \"motoin\""),
    ("empty turn", conv("x", turns=[{"role": "user", "text": "  ", "motion": None},
                                    {"role": "assistant", "text": "b", "motion": None}]), "neither text nor a motion"),
    ("motion not a string", conv("x", turns=[{"role": "user", "text": "a", "motion": 3},
                                             {"role": "assistant", "text": "b", "motion": None}]), "must be a clip id"),
]


@pytest.mark.parametrize("name,line,message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_line_is_named_with_file_and_line(vimo_bin, tmp_path, name, line, message):
    f = write_lines(tmp_path / "bad.jsonl", [conv("ok"), "", line])
    p = run_vimo(vimo_bin, "data", "conversations", "--check", f, check=False)
    assert p.returncode != 0
    assert f"{f}:3" in p.stderr and message in p.stderr, p.stderr


def test_repeated_ids_and_unknown_clips_are_refused(vimo_bin, tmp_path, tokens):
    tok, _ = tokens
    p = run_vimo(vimo_bin, "data", "conversations", "--check", write_lines(tmp_path / "d.jsonl", [conv("a"), conv("a")]),
                 check=False)
    assert p.returncode != 0 and "d.jsonl:2" in p.stderr and "appears twice" in p.stderr, p.stderr
    c = conv("a")
    c["turns"][1]["motion"] = "no_such_clip"
    p = run_vimo(vimo_bin, "data", "conversations", "--check", write_lines(tmp_path / "e.jsonl", [c]), "--tokens", tok,
                 check=False)
    assert p.returncode != 0 and "e.jsonl:1" in p.stderr and "'no_such_clip'" in p.stderr, p.stderr


def test_triples_convert_to_editing_conversations(vimo_bin, tmp_path, tokens):
    tok, ids = tokens
    tsv = tmp_path / "t.tsv"
    tsv.write_text("instruction\tsource\ttarget\n"
                   "Make the push gentler.\tOne person pushes the other hard.\tOne person pushes the other gently.\n"
                   f"Swap the hands.\tThey shake right hands.\tThey shake left hands.\t{ids[0]}\t{ids[1]}\n")
    out = tmp_path / "t.jsonl"
    run_vimo(vimo_bin, "data", "conversations", "--from-triples", tsv, "--out", out, "--tokens", tok)
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert got[0] == {"id": "triple_2", "task": "editing", "turns": [
        {"role": "user", "text": "One person pushes the other hard.\nMake the push gentler.", "motion": None},
        {"role": "assistant", "text": "One person pushes the other gently.", "motion": None}]}
    assert got[1] == {"id": "triple_3", "task": "editing", "turns": [
        {"role": "user", "text": "They shake right hands.", "motion": None},
        {"role": "assistant", "text": "", "motion": ids[0]},
        {"role": "user", "text": "Swap the hands.", "motion": None},
        {"role": "assistant", "text": "They shake left hands.", "motion": ids[1]}]}
    run_vimo(vimo_bin, "data", "conversations", "--check", out, "--tokens", tok)  # the output passes the check

    js = write_lines(tmp_path / "t2.jsonl", [{"id": "e1", "instruction": "Faster.", "source": "They walk.",
                                              "target": "They run."}])
    run_vimo(vimo_bin, "data", "conversations", "--from-triples", js, "--out", tmp_path / "o2.jsonl")
    assert json.loads((tmp_path / "o2.jsonl").read_text())["id"] == "e1"


@pytest.mark.parametrize("line,message", [
    ("only\ttwo", "expected 3 tab-separated fields"),
    ("a\t\tc", "must all be non-empty"),
    ('{"instruction": "a", "source": "b"}', "missing key \"target\""),
    ('{"instruction": "a", "source": "b", "target": "c", "source_motion": "1"}', "give both clip ids"),
])
def test_a_bad_triple_writes_nothing(vimo_bin, tmp_path, line, message):
    f = tmp_path / "bad.tsv"
    f.write_text("Make it slower.\tThey wave.\tThey wave slowly.\n" + line + "\n")
    out = tmp_path / "out.jsonl"
    p = run_vimo(vimo_bin, "data", "conversations", "--from-triples", f, "--out", out, check=False)
    assert p.returncode != 0 and f"{f}:2" in p.stderr and message in p.stderr, p.stderr
    assert not out.exists()


def cached_codes(tokens_dir, clip):
    """[T', 2, Q] codes of a clip as h5py reads the token cache (docs/tokenizer.md)."""
    h5py = pytest.importorskip("h5py")
    for split in ("train", "val", "test"):
        with h5py.File(tokens_dir / f"{split}.h5", "r") as f:
            ids = [x.decode() for x in f["ids"][:]]
            if clip in ids:
                i = ids.index(clip)
                o, n = int(f["offsets"][i]), int(f["lengths"][i])
                return f["codes"][o:o + n].astype(int).tolist()
    raise KeyError(clip)


def inline(tokens_dir, turns, layers):
    """The conversation JSON of `vimo text chat render`, with the motions' codes written out."""
    out = []
    for t in turns:
        content = []
        if t["text"].strip():
            content.append({"type": "text", "text": t["text"]})
        if t["motion"]:
            codes = [[p[:layers] for p in step] for step in cached_codes(tokens_dir, t["motion"])]
            content.append({"type": "motion", "codes": codes})
        out.append({"role": t["role"], "content": content})
    return out


def chat_render(vimo_bin, tmp_path, lm, conversation):
    f = tmp_path / "inline.json"
    f.write_text(json.dumps(conversation))
    out = run_vimo(vimo_bin, "text", "chat", "render", "--vocab", lm / "lm" / "vocab.json", "--tokenizer",
                   lm / "lm" / "text.model", "--input", f).stdout.splitlines()
    return [int(x) for x in out[0].split()], [int(x) for x in out[1].split()]


def test_rendering_with_a_run_matches_the_chat_template_and_drops_the_oldest_exchange(vimo_bin, tmp_path, world):
    tok, lm, ids = world["tokens"], world["lm"], world["ids"]
    layers = json.loads((lm / "lm" / "vim.json").read_text())["motion"]["layers"]
    assert layers == 1  # the LM sees fewer levels than the cache holds (Q = 2): codes are cut to them
    c = conv("a")
    c["turns"][1]["motion"], c["turns"][3]["motion"] = ids[0], ids[1]
    f = write_lines(tmp_path / "c.jsonl", [c])
    full_ids, full_mask = chat_render(vimo_bin, tmp_path, lm, inline(tok, c["turns"], layers))
    last_ids, last_mask = chat_render(vimo_bin, tmp_path, lm, inline(tok, c["turns"][2:], layers))

    def render(max_length):
        out = tmp_path / "r.jsonl"
        run_vimo(vimo_bin, "data", "conversations", "--check", f, "--tokens", tok, "--run", lm,
                 "--max-length", max_length, "--render-out", out)
        return json.loads(out.read_text())

    r = render(len(full_ids))
    assert r["ids"] == full_ids and r["dropped_turns"] == 0 and r["tokens"] == len(full_ids)
    assert r["loss_tokens"] == sum(full_mask[1:])  # the loss is on assistant tokens only
    r = render(len(full_ids) - 1)  # one id too long: the first exchange goes
    assert r["ids"] == last_ids and r["dropped_turns"] == 2 and r["tokens"] == len(full_ids)
    assert r["loss_tokens"] == sum(last_mask[1:])
    r = render(len(last_ids) - 1)  # the last exchange alone is too long
    assert r["fits"] is False and "ids" not in r


def test_rendering_needs_the_token_cache(vimo_bin, tmp_path, world):
    p = run_vimo(vimo_bin, "data", "conversations", "--check", write_lines(tmp_path / "c.jsonl", [conv("a")]),
                 "--run", world["lm"], check=False)
    assert p.returncode != 0 and "needs --tokens" in p.stderr, p.stderr
