"""Chat template: vimo's rendering of a 3-turn conversation with motion blocks against a golden
rendered independently here (HF `tokenizers` for text, the documented id layout for the rest);
loss mask over assistant tokens only; parse(render(x)) == x."""
import json
import pathlib
import sys

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

sys.path[:0] = [str(pathlib.Path(__file__).parent), str(pathlib.Path(__file__).parents[1])]
from conftest import run_vimo  # noqa: E402
from text_strings import training_corpus  # noqa: E402

K, Q = 16, 3
VIMO_SPECIALS = ["<motion>", "</motion>", "<motion_a>", "</motion_a>", "<motion_b>", "</motion_b>",
                 "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<pad>"]
LLAMA3 = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
CONV = [
    {"role": "system", "content": [{"type": "text", "text": "You are a motion assistant."}]},
    {"role": "user", "content": [
        {"type": "text", "text": "Describe this interaction: "},
        {"type": "motion", "codes": [[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]]},
        {"type": "text", "text": " What happens next?"}]},
    {"role": "assistant", "content": [
        {"type": "text", "text": "They shake hands. Person B alone:\n"},
        {"type": "motion_b", "codes": [[15, 0, 3], [2, 14, 1]]},
        {"type": "text", "text": " Done."}]},
]


def make_tokenizer(path, specials):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(training_corpus(1500), trainer=trainers.BpeTrainer(
        vocab_size=2000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=specials,
        show_progress=False))
    tok.save(str(path))
    return tok


def golden(tok, fmt, special_id, motion_base):
    """Renders CONV as the template string would be, HF-encoding each run of text between id blocks."""
    chunks = [[special_id("<|begin_of_text|>")]] if fmt == "llama3" else []
    for turn in CONV:
        if fmt == "llama3":
            chunks.append(f"<|start_header_id|>{turn['role']}<|end_header_id|>\n\n")
        else:
            chunks.append([special_id(f"<|{turn['role']}|>")])
        for seg in turn["content"]:
            if seg["type"] == "text":
                chunks.append(seg["text"])
                continue
            frames = [p for f in seg["codes"] for p in (f if seg["type"] == "motion" else [f])]
            motion = [motion_base + q * K + k for person in frames for q, k in enumerate(person)]
            chunks.append([special_id(f"<{seg['type']}>")] + motion + [special_id(f"</{seg['type']}>")])
        chunks.append("<|eot_id|>" if fmt == "llama3" else [special_id("<|end|>")])
    ids, text = [], ""
    for c in chunks + [[]]:
        if isinstance(c, str):
            text += c
            continue
        ids += tok.encode(text, add_special_tokens=False).ids if text else []
        ids += c
        text = ""
    return ids


@pytest.mark.parametrize("fmt", ["llama3", "vimo"])
def test_golden_ids_mask_and_parse(vimo_bin, tmp_path, fmt):
    reserved = [f"<|reserved_special_token_{i}|>" for i in range(16)]
    tok = make_tokenizer(tmp_path / "tokenizer.json", LLAMA3 + reserved if fmt == "llama3" else [])
    vocab = tok.get_vocab()
    if fmt == "llama3":  # vimo specials take the reserved tokens in order; no new ids
        extra = 0
        special_id = lambda n: vocab[n] if n in vocab else vocab[reserved[VIMO_SPECIALS.index(n)]]  # noqa: E731
    else:  # appended after the text ids in the documented order
        extra = len(VIMO_SPECIALS)
        special_id = lambda n: len(vocab) + VIMO_SPECIALS.index(n)  # noqa: E731
    run_vimo(vimo_bin, "text", "vocab", "--tokenizer", tmp_path / "tokenizer.json", "--codebook-size", K,
             "--num-quantizers", Q, "--out", tmp_path / "vocab.json")
    v = json.loads((tmp_path / "vocab.json").read_text())
    assert v["chat_format"] == fmt and v["motion"]["base"] == len(vocab) + extra
    want = golden(tok, fmt, special_id, len(vocab) + extra)
    (tmp_path / "conv.json").write_text(json.dumps(CONV))
    out = run_vimo(vimo_bin, "text", "chat", "render", "--vocab", tmp_path / "vocab.json", "--input",
                   tmp_path / "conv.json").stdout.split("\n")
    ids, mask = [int(x) for x in out[0].split()], [int(x) for x in out[1].split()]
    assert ids == want
    # Assistant tokens: after the assistant's role header, through its end-of-turn token.
    if fmt == "llama3":
        third = [i for i, t in enumerate(want) if t == special_id("<|start_header_id|>")][2]
        start = want.index(special_id("<|end_header_id|>"), third) + 1
    else:
        start = want.index(special_id("<|assistant|>")) + 1
    end = len(want) - 1
    assert want[end] == special_id("<|eot_id|>" if fmt == "llama3" else "<|end|>")
    assert mask == [1 if start <= i <= end else 0 for i in range(len(want))]
    parsed = run_vimo(vimo_bin, "text", "chat", "parse", "--vocab", tmp_path / "vocab.json", *ids).stdout
    assert json.loads(parsed) == CONV


def test_unknown_segment_type_is_named(vimo_bin, tmp_path):
    make_tokenizer(tmp_path / "tokenizer.json", [])
    run_vimo(vimo_bin, "text", "vocab", "--tokenizer", tmp_path / "tokenizer.json", "--codebook-size", K,
             "--num-quantizers", Q, "--out", tmp_path / "vocab.json")
    (tmp_path / "c.json").write_text(json.dumps([{"role": "user", "content": [{"type": "motion_c", "codes": []}]}]))
    p = run_vimo(vimo_bin, "text", "chat", "render", "--vocab", tmp_path / "vocab.json", "--input",
                 tmp_path / "c.json", check=False)
    assert p.returncode != 0 and "motion_c" in p.stderr, p.stderr
