"""Parity: `vimo eval captions` (BLEU-1..4, ROUGE-L, CIDEr-D, METEOR) and vimo's PTB tokenizer against
pycocoevalcap (its PTBTokenizer runs the Stanford CoreNLP jar) on 2,500 generated caption sets with
punctuation, case, numbers, contractions and unicode; plus the bad-input contract."""
import json
import os
import pathlib
import random
import shutil
import sys

import pytest

sys.path[:0] = [str(pathlib.Path(__file__).parent), str(pathlib.Path(__file__).parents[1])]
from conftest import run_vimo  # noqa: E402
from test_eval_features import require  # noqa: E402

N_SETS = 2500

WORDS = ("the a one two person people man woman he she they someone another other each partner both "
         "walks walk steps turns raises lowers waves hugs pushes pulls kicks punches dances jumps runs sits stands "
         "bows claps grabs holds shakes hands hand arm arms leg left right head shoulder back forward towards "
         "away around together slowly quickly then while and but with to of in on at from after before again "
         "up down behind front side circle twice high low").split()
CONTRACTIONS = ["person's", "partner's", "doesn't", "don't", "can't", "won't", "isn't", "they're", "it's", "I'm",
                "we'll", "you've", "she'd", "let's", "people's", "o'clock", "y'all", "gonna", "cannot", "boys'"]
NUMBERS = ["2", "3.5", "10", "1,000", "90-degree", "3rd", "5m", "$5", "50%", "10:30", "-2", "1/2", "3 1/2",
           "180°", "2x", "#1", "1990-2000", "0.5"]
UNICODE = ["café", "naïve", "Über", "résumé", "São", "ñandú", "Ελλάδα", "ΟΔΟΣ", "привет", "ПРИВЕТ", "跳舞",
           "한국어", "İstanbul", "straße", "×", "±", "→", "•", "½", "€5", "£3", "😀", "👋🏽", "Ångström", "ﬁne"]
# Rarer forms that exercise PTBLexer's special rules (abbreviations, URLs, SGML, smileys, fractions ...).
SPECIAL = ["e.g.", "i.e.", "U.S.", "Mr.", "Dr. Smith", "etc.", "a.m.", "No. 5", "vs.", "Jan.", "approx.", ":)", ":-(",
           "3:30pm", "5'10", "rock'n'roll", "'90s", "'em", "'cause", "ma'am", "#tag", "@user", "&amp;", "&quot;",
           "<b>", "</i>", "www.example.com", "http://x.org/a?b=1", "a@b.com", "1.5.6", "-3-4", "10 100 1000",
           "3/4ths", "and/or", "12/25/2020", "2-3x", "AT&T", "Q&A", "x²", "½", "¼", "e\u0301", "ＡＢＣ", "１２３",
           "\u00a0", "\t", "  ", "ς", "ΣΑΣ", "हिन्दी", "العربية", "ภาษาไทย", "👨‍👩‍👧", "\u200b", "---", "----",
           "......", ". . .", "?!?", "!!!", "**", "__init__", "snake_case", "C'mon", "o'clock", "Y'know", "can't-stop"]
OPEN_CLOSE = [('"', '"'), ("“", "”"), ("‘", "’"), ("'", "'"), ("(", ")"), ("[", "]"), ("{", "}"), ("«", "»")]
ENDINGS = [".", ".", ".", "!", "?", "...", "…", "!!", "?!", "", "", " .", ";"]
INNER = [",", ",", ";", ":", " -", " --", " —", " –", "/", " &", "...", " (quickly)", "-"]


def word(rng):
    r = rng.random()
    if r < 0.08:
        return rng.choice(CONTRACTIONS)
    if r < 0.15:
        return rng.choice(NUMBERS)
    if r < 0.21:
        return rng.choice(UNICODE)
    if r < 0.24:
        return rng.choice(SPECIAL)
    w = rng.choice(WORDS)
    r = rng.random()
    return w.upper() if r < 0.05 else w.capitalize() if r < 0.12 else w


def caption(rng):
    words = [word(rng) for _ in range(rng.randint(3, 16))]
    for _ in range(rng.randint(0, 3)):
        i = rng.randrange(len(words))
        words[i] += rng.choice(INNER)
    if rng.random() < 0.2:
        o, c = rng.choice(OPEN_CLOSE)
        i = rng.randrange(len(words))
        j = rng.randrange(i, len(words))
        words[i], words[j] = o + words[i], words[j] + c
    s = " ".join(words)
    if rng.random() < 0.6:
        s = s[0].upper() + s[1:]
    return s + rng.choice(ENDINGS)


def hypothesis(rng, refs):
    """A generated caption: a reference with words dropped, swapped or replaced, or a fresh one."""
    if rng.random() < 0.15:
        return caption(rng)
    w = rng.choice(refs).split()
    for _ in range(rng.randint(0, 4)):
        op, i = rng.random(), rng.randrange(len(w))
        if op < 0.3 and len(w) > 2:
            del w[i]
        elif op < 0.6:
            w[i] = word(rng)
        else:
            w.insert(i, word(rng))
    return " ".join(w)


def caption_sets(n, seed):
    rng = random.Random(seed)
    refs, hyps = {}, {}
    for k in range(n):
        rs = [caption(rng) for _ in range(rng.randint(1, 5))]
        refs[f"clip_{k:05d}"] = rs
        hyps[f"clip_{k:05d}"] = hypothesis(rng, rs)
    return refs, hyps


@pytest.fixture(scope="module")
def coco():
    """pycocoevalcap's scorers; its tokenizer (and METEOR) need java."""
    require("pycocoevalcap")
    if shutil.which("java") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("java is missing (CI=true): pycocoevalcap's PTBTokenizer needs it (scripts/setup.sh)")
        pytest.skip("java is not installed: pycocoevalcap's PTBTokenizer cannot run")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    return PTBTokenizer, Bleu, Rouge, Cider


def coco_tokenize(PTBTokenizer, refs, hyps):
    gts = PTBTokenizer().tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
    res = PTBTokenizer().tokenize({k: [{"caption": v}] for k, v in hyps.items()})
    return gts, res


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, coco):
    d = tmp_path_factory.mktemp("captions")
    refs, hyps = caption_sets(N_SETS, seed=2024)
    (d / "refs.json").write_text(json.dumps(refs, ensure_ascii=False), encoding="utf-8")
    (d / "hyps.json").write_text(json.dumps(hyps, ensure_ascii=False), encoding="utf-8")
    gts, res = coco_tokenize(coco[0], refs, hyps)
    return d, refs, hyps, gts, res


def test_builtin_tokenizer_equals_stanford_ptbtokenizer(vimo_bin, corpus):
    d, refs, hyps, gts, res = corpus
    # pycocoevalcap tokenizes the references and the hypotheses as two texts: so does this test.
    for what, flat, want in [("reference", [c for v in refs.values() for c in v], [c for v in gts.values() for c in v]),
                             ("hypothesis", list(hyps.values()), [v[0] for v in res.values()])]:
        (d / "flat.json").write_text(json.dumps(flat, ensure_ascii=False), encoding="utf-8")
        got = json.loads(run_vimo(vimo_bin, "eval", "ptb-tokenize", "--input", d / "flat.json").stdout)
        bad = [i for i in range(len(flat)) if got[i] != want[i]]
        print(f"PTB tokenization: {len(flat) - len(bad)}/{len(flat)} {what} captions identical to the jar's")
        assert not bad, "\n".join(f"{flat[i]!r}\n vimo {got[i]!r}\n jar  {want[i]!r}" for i in bad[:5])


@pytest.mark.parametrize("tokenizer", ["builtin", "stanford"])
def test_scores_equal_pycocoevalcap(vimo_bin, corpus, coco, tokenizer):
    d, refs, hyps, gts, res = corpus
    _, Bleu, Rouge, Cider = coco
    out = d / f"scores_{tokenizer}.json"
    run_vimo(vimo_bin, "eval", "captions", "--refs", d / "refs.json", "--hyps", d / "hyps.json", "--meteor", "off",
             "--tokenizer", tokenizer, "--out", out)
    got = json.loads(out.read_text())
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    want = {f"bleu_{k + 1}": bleu[k] for k in range(4)}
    want["rouge_l"] = Rouge().compute_score(gts, res)[0]
    want["cider_d"] = Cider().compute_score(gts, res)[0]
    diffs = {k: abs(got[k] - v) for k, v in want.items()}
    print(f"{tokenizer} tokenizer, {N_SETS} sets: " +
          ", ".join(f"{k} {got[k]:.6f} (abs {diffs[k]:.2g}, rel {diffs[k] / abs(want[k]):.2g})" for k in want))
    assert got["sets"] == N_SETS and got["meteor"] is None
    assert max(diffs.values()) <= 1e-6, diffs


def test_small_corpora_equal_pycocoevalcap(vimo_bin, coco, tmp_path):
    """CIDEr's idf and BLEU's corpus sums on corpora of 1 to 40 sets (one set: every idf weight is 0)."""
    PTBTokenizer, Bleu, Rouge, Cider = coco
    worst = 0.0
    for n, seed in [(1, 1), (2, 2), (3, 3), (7, 4), (40, 5)]:
        refs, hyps = caption_sets(n, seed)
        (tmp_path / "r.json").write_text(json.dumps(refs, ensure_ascii=False), encoding="utf-8")
        (tmp_path / "h.json").write_text(json.dumps(hyps, ensure_ascii=False), encoding="utf-8")
        run_vimo(vimo_bin, "eval", "captions", "--refs", tmp_path / "r.json", "--hyps", tmp_path / "h.json",
                 "--meteor", "off", "--out", tmp_path / "s.json")
        got = json.loads((tmp_path / "s.json").read_text())
        gts, res = coco_tokenize(PTBTokenizer, refs, hyps)
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        want = [*bleu, Rouge().compute_score(gts, res)[0], Cider().compute_score(gts, res)[0]]
        have = [got[f"bleu_{k}"] for k in (1, 2, 3, 4)] + [got["rouge_l"], got["cider_d"]]
        worst = max(worst, *(abs(a - b) for a, b in zip(have, want)))
    print(f"small corpora: max abs diff {worst:.2g}")
    assert worst <= 1e-6


def test_meteor_equals_pycocoevalcap(vimo_bin, coco, tmp_path):
    from pycocoevalcap.meteor.meteor import Meteor
    refs, hyps = caption_sets(300, seed=9)
    (tmp_path / "r.json").write_text(json.dumps(refs, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "h.json").write_text(json.dumps(hyps, ensure_ascii=False), encoding="utf-8")
    run_vimo(vimo_bin, "eval", "captions", "--refs", tmp_path / "r.json", "--hyps", tmp_path / "h.json",
             "--meteor", "on", "--out", tmp_path / "s.json")
    got = json.loads((tmp_path / "s.json").read_text())["meteor"]
    gts, res = coco_tokenize(coco[0], refs, hyps)
    want = Meteor().compute_score(gts, res)[0]
    print(f"METEOR over 300 sets: vimo {got!r} pycocoevalcap {want!r} abs {abs(got - want):.2g}")
    assert abs(got - want) <= 1e-6


@pytest.mark.parametrize("refs,hyps,message", [
    ({"a": ["x y"], "b": ["z"]}, {"a": "x", "c": "z"}, "only in refs: 'b'"),
    ({"a": ["x y", ""]}, {"a": "x"}, "id 'a' has an empty caption"),
    ({"a": ["x y"]}, {"a": "   "}, "id 'a' has an empty caption"),
    ({"a": []}, {"a": "x"}, "non-empty list"),
])
def test_bad_caption_files_are_named_errors_and_write_nothing(vimo_bin, tmp_path, refs, hyps, message):
    (tmp_path / "r.json").write_text(json.dumps(refs))
    (tmp_path / "h.json").write_text(json.dumps(hyps))
    p = run_vimo(vimo_bin, "eval", "captions", "--refs", tmp_path / "r.json", "--hyps", tmp_path / "h.json",
                 "--out", tmp_path / "s.json", check=False)
    assert p.returncode != 0 and message in p.stderr, p.stderr
    assert not (tmp_path / "s.json").exists() and not list(tmp_path.glob("*.tmp*"))
