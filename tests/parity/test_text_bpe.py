"""Parity: vimo's tokenizer.json byte-level BPE against HF `tokenizers`, on tokenizers trained here
(Llama-3 split pattern and GPT-2 ByteLevel regex), over 2,000+ varied strings."""
import json
import pathlib
import sys

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

sys.path[:0] = [str(pathlib.Path(__file__).parent), str(pathlib.Path(__file__).parents[1])]
from conftest import run_vimo  # noqa: E402
from text_strings import strings, training_corpus  # noqa: E402

# Llama 3's pre-tokenizer split pattern (meta-llama/Meta-Llama-3-8B tokenizer.json).
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>"]
N_STRINGS = 2500


def train(style, path, vocab_size=4000):
    tok = Tokenizer(models.BPE(ignore_merges=(style == "llama3")))
    if style == "llama3":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=SPECIALS, show_progress=False)
    tok.train_from_iterator(training_corpus(6000), trainer=trainer)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 0)])])
    tok.save(str(path))
    return tok


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    # Varied strings, some with an added token inside, one per line as JSON strings.
    xs = strings(N_STRINGS, seed=7)
    xs += [x + " <|end_of_text|>" + x[:5] for x in xs[:100]] + ["", " ", "\n", "a<|reserved_special_token_0|>b"]
    path = tmp_path_factory.mktemp("bpe") / "texts.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in xs), encoding="utf-8")
    return xs, path


@pytest.mark.parametrize("style", ["llama3", "gpt2"])
def test_ids_and_round_trip_match_hf(vimo_bin, texts, tmp_path, style):
    xs, lines = texts
    hf = train(style, tmp_path / "tokenizer.json")
    assert 2000 <= hf.get_vocab_size() <= 8000
    for add_special in (False, True):
        args = ["text", "encode", "--tokenizer", tmp_path / "tokenizer.json", "--input", lines, "--json-lines"]
        out = run_vimo(vimo_bin, *args, *(["--add-special"] if add_special else [])).stdout.split("\n")[:-1]
        assert len(out) == len(xs)
        got = [[int(t) for t in line.split()] for line in out]
        want = [e.ids for e in hf.encode_batch(xs, add_special_tokens=add_special)]
        bad = [i for i in range(len(xs)) if got[i] != want[i]]
        print(f"{style} add_special={add_special}: {len(xs) - len(bad)}/{len(xs)} strings with identical ids")
        assert not bad, f"first mismatch: {xs[bad[0]]!r}\nvimo {got[bad[0]]}\nhf   {want[bad[0]]}"
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("".join(" ".join(map(str, w)) + "\n" for w in want))
    dec = run_vimo(vimo_bin, "text", "decode", "--tokenizer", tmp_path / "tokenizer.json", "--input", ids_file,
                   "--json-lines", "--skip-special").stdout.split("\n")[:-1]
    back = [json.loads(d) for d in dec]
    hf_back = hf.decode_batch(want, skip_special_tokens=True)
    assert back == hf_back
    plain = [i for i, x in enumerate(xs) if "<|" not in x]
    assert all(back[i] == xs[i] for i in plain), "decode(encode(s)) != s"
    print(f"{style}: decode(encode(s)) == s for {len(plain)}/{len(plain)} strings")


def test_bad_input_is_named(vimo_bin, tmp_path):
    train("llama3", tmp_path / "tokenizer.json", vocab_size=2000)
    j = json.loads((tmp_path / "tokenizer.json").read_text())
    # Invalid UTF-8 on line 2: refused, naming the line and byte.
    (tmp_path / "bad.txt").write_bytes(b"fine\nab\xffcd\n")
    p = run_vimo(vimo_bin, "text", "encode", "--tokenizer", tmp_path / "tokenizer.json", "--input",
                 tmp_path / "bad.txt", check=False)
    assert p.returncode != 0 and "line 2" in p.stderr and "not valid UTF-8: byte 2 (0xFF)" in p.stderr, p.stderr
    for field, change in [("model.type \"Unigram\"", lambda j: j["model"].update(type="Unigram")),
                          ("pre_tokenizer.pretokenizers[0].type \"Whitespace\"",
                           lambda j: j["pre_tokenizer"]["pretokenizers"].__setitem__(0, {"type": "Whitespace"})),
                          ("pre_tokenizer.pretokenizers[0].behavior \"Removed\"",
                           lambda j: j["pre_tokenizer"]["pretokenizers"][0].update(behavior="Removed")),
                          ("normalizer.type \"NFKC\"", lambda j: j.update(normalizer={"type": "NFKC"}))]:
        k = json.loads(json.dumps(j))
        change(k)
        (tmp_path / "t.json").write_text(json.dumps(k))
        p = run_vimo(vimo_bin, "text", "encode", "--tokenizer", tmp_path / "t.json", "hi", check=False)
        assert p.returncode != 0 and field in p.stderr, (field, p.stderr)
