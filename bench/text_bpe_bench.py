"""BPE encode throughput, single thread: vimo's tokenizer.json backend against HF `tokenizers` on the
same Llama-3-style tokenizer and texts, in one run. Usage:
  python bench/text_bpe_bench.py BUILD_DIR [--strings N]   (BUILD_DIR holds bench/text_bpe_bench)"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # single thread, as the vimo side
os.environ["RAYON_NUM_THREADS"] = "1"
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "parity"))
from text_strings import strings, training_corpus  # noqa: E402

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--strings", type=int, default=40000)
    ap.add_argument("--vocab-size", type=int, default=8000)
    a = ap.parse_args()
    d = pathlib.Path(tempfile.mkdtemp(prefix="vimo_bpe_bench_"))
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(training_corpus(8000), trainer=trainers.BpeTrainer(
        vocab_size=a.vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok.save(str(d / "tokenizer.json"))
    xs = strings(a.strings, seed=3)
    (d / "texts.jsonl").write_text("".join(json.dumps(x) + "\n" for x in xs), encoding="utf-8")
    chars = sum(len(x) for x in xs)

    hf = Tokenizer.from_file(str(d / "tokenizer.json"))  # fresh: empty word cache
    # encode_batch_fast (tokenizers >= 0.20) skips offset tracking, which vimo does not do either.
    encode = getattr(hf, "encode_batch_fast", hf.encode_batch)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        enc = encode(xs, add_special_tokens=False)
        times.append(time.perf_counter() - t0)
    hf_tokens = sum(len(e.ids) for e in enc)

    out = subprocess.run([str(pathlib.Path(a.build_dir) / "bench" / "text_bpe_bench"), str(d / "tokenizer.json"),
                          str(d / "texts.jsonl"), "3"], capture_output=True, text=True, check=True).stdout
    v = json.loads(out)
    assert v["chars"] == chars and v["tokens"] == hf_tokens, (v, chars, hf_tokens)
    print(f"texts: {len(xs)} strings, {chars / 1e6:.2f} M characters, {hf_tokens} tokens, vocab {tok.get_vocab_size()}")
    print(f"{'':14}{'cold M char/s':>15}{'warm M char/s':>15}")
    print(f"{'vimo':14}{chars / v['cold_s'] / 1e6:15.2f}{chars / v['warm_s'] / 1e6:15.2f}")
    print(f"{'HF tokenizers':14}{chars / times[0] / 1e6:15.2f}{chars / min(times) / 1e6:15.2f}")
    print(f"ratio vimo/HF: cold {times[0] / v['cold_s']:.2f}x, warm {min(times) / v['warm_s']:.2f}x")


if __name__ == "__main__":
    main()
