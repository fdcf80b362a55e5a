"""Parity: vimo's CLIP BPE tokenizer against open_clip's SimpleTokenizer and tokenize() (context 77),
on CLIP's own merges file as the open_clip package ships it, over 2,000+ varied strings and captions."""
import gzip
import importlib.util
import json
import pathlib
import sys

import pytest

sys.path[:0] = [str(pathlib.Path(__file__).parent), str(pathlib.Path(__file__).parents[1])]
from conftest import run_vimo  # noqa: E402
from text_strings import captions, strings  # noqa: E402

pytest.importorskip("ftfy")
pytest.importorskip("regex")
pytest.importorskip("torch")
_spec = importlib.util.find_spec("open_clip")
if _spec is None:
    pytest.skip("open_clip (pip install open_clip_torch) is not installed", allow_module_level=True)
# Only its tokenizer module: `import open_clip` would load the whole model zoo (torchvision, timm).
OPEN_CLIP = pathlib.Path(_spec.submodule_search_locations[0])
_m = importlib.util.spec_from_file_location("open_clip_tokenizer", OPEN_CLIP / "tokenizer.py")
oc = importlib.util.module_from_spec(_m)
_m.loader.exec_module(oc)
MERGES = OPEN_CLIP / "bpe_simple_vocab_16e6.txt.gz"


@pytest.fixture(scope="module")
def reference():
    return oc.SimpleTokenizer(str(MERGES))


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    # Mostly caption-like strings: ftfy's fix_encoding (mojibake repair) is not reproduced, and the
    # random mixtures of strings() alone can look like mojibake to it.
    xs = strings(1200, seed=7) + captions(2000, seed=3)
    xs += ["", " ", "\n", "a" * 300, " ".join(["walks"] * 90), "x <start_of_text> y <END_OF_TEXT> z"]
    path = tmp_path_factory.mktemp("clip") / "texts.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in xs), encoding="utf-8")
    return xs, path


def encode(vimo_bin, merges, lines, *extra):
    out = run_vimo(vimo_bin, "text", "encode", "--tokenizer", merges, "--input", lines, "--json-lines",
                   *extra).stdout.split("\n")[:-1]
    return [[int(t) for t in line.split()] for line in out]


def first_mismatch(xs, got, want):
    bad = [i for i in range(len(xs)) if got[i] != want[i]]
    msg = f"first mismatch: {xs[bad[0]]!r}\nvimo {got[bad[0]]}\nopen_clip {want[bad[0]]}" if bad else ""
    return bad, msg


def test_ids_match_open_clip(vimo_bin, texts, reference, tmp_path):
    xs, lines = texts
    assert len(xs) >= 2000
    want = [reference.encode(x) for x in xs]
    got = encode(vimo_bin, MERGES, lines)
    assert len(got) == len(xs)
    bad, msg = first_mismatch(xs, got, want)
    print(f"encode: {len(xs) - len(bad)}/{len(xs)} strings with identical ids")
    assert not bad, msg
    # --add-special: sot + ids + eot, unpadded.
    got = encode(vimo_bin, MERGES, lines, "--add-special")
    bad, msg = first_mismatch(xs, got, [[reference.sot_token_id] + w + [reference.eot_token_id] for w in want])
    assert not bad, msg
    # The uncompressed file gives the same ids.
    plain = tmp_path / "bpe_simple_vocab_16e6.txt"
    plain.write_bytes(gzip.decompress(MERGES.read_bytes()))
    assert encode(vimo_bin, plain, lines)[:200] == want[:200]


def test_padded_77_matches_tokenize(vimo_bin, texts, reference):
    xs, lines = texts
    want = reference(xs, context_length=77).tolist()
    assert any(w[-1] == reference.eot_token_id for w in want), "no string long enough to be truncated"
    got = encode(vimo_bin, MERGES, lines, "--context", "77")
    bad, msg = first_mismatch(xs, got, want)
    print(f"tokenize(context=77): {len(xs) - len(bad)}/{len(xs)} strings identical")
    assert not bad, msg
    short = encode(vimo_bin, MERGES, lines, "--context", "8")
    bad, msg = first_mismatch(xs, short, reference(xs, context_length=8).tolist())
    assert not bad, msg


def test_decode_matches_open_clip(vimo_bin, texts, reference, tmp_path):
    xs, _ = texts
    ids = [reference.encode(x) for x in xs]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("".join(" ".join(map(str, w)) + "\n" for w in ids))
    dec = run_vimo(vimo_bin, "text", "decode", "--tokenizer", MERGES, "--input", ids_file,
                   "--json-lines").stdout.split("\n")[:-1]
    back = [json.loads(d) for d in dec]
    assert back == [reference.decode(w) for w in ids]
    # Round trip: decoding gives the cleaned text, with a space after each word.
    same = [i for i, x in enumerate(xs) if back[i].replace(" ", "") == oc._clean_lower(x).replace(" ", "")]
    print(f"decode(encode(s)) == clean(s) up to spaces for {len(same)}/{len(xs)} strings")
    assert len(same) == len(xs)
    # Special ids and padding decode as open_clip decodes them; --skip-special drops sot/eot.
    row = reference(["two people dance"])[0].tolist()
    one = run_vimo(vimo_bin, "text", "decode", "--tokenizer", MERGES, *map(str, row[:8])).stdout
    assert one == reference.decode(row[:8]) + "\n"
    one = run_vimo(vimo_bin, "text", "decode", "--tokenizer", MERGES, "--skip-special", *map(str, row[:5])).stdout
    assert one == reference.decode(row[1:4]) + "\n"


def test_bad_merges_files_are_named(vimo_bin, tmp_path):
    raw = gzip.decompress(MERGES.read_bytes())
    cases = {
        "missing.txt.gz": (None, "cannot open"),
        "corrupt.txt.gz": (MERGES.read_bytes()[:20] + bytes(range(256)) * 20, "not a valid gzip file"),
        "truncated.txt.gz": (MERGES.read_bytes()[:100000], "not a valid gzip file"),
        "short.txt.gz": (gzip.compress(b"\n".join(raw.split(b"\n")[:1000]) + b"\n"), "has 1000 lines"),
        "badline.txt": (raw.replace(b"\ni n\n", b"\ni n x\n", 1), "line 2 has 3 symbols"),
    }
    for name, (data, expect) in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        p = run_vimo(vimo_bin, "text", "encode", "--tokenizer", path, "hello", check=False)
        assert p.returncode != 0 and expect in p.stderr and name in p.stderr, (name, p.stderr)
