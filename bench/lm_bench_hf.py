"""Reference side of bench/lm_bench.cpp: transformers' LlamaForCausalLM on the same checkpoint and threads.
Prints one JSON object with tokens_per_s."""
import argparse
import json
import statistics
import time

import torch
import transformers

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["train", "decode"])
ap.add_argument("--model", required=True)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--seq", type=int, default=256)
ap.add_argument("--iters", type=int, default=5)
ap.add_argument("--new", type=int, default=128)
ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
a = ap.parse_args()
torch.set_num_threads(a.threads)
model = transformers.LlamaForCausalLM.from_pretrained(a.model, dtype=getattr(torch, a.dtype))
if a.mode == "train":
    model.train()
    ids = torch.randint(0, model.config.vocab_size, (a.batch, a.seq + 1))
    x, y = ids[:, :-1], ids[:, 1:]
    times = []
    for i in range(a.iters + 1):
        t0 = time.perf_counter()
        logits = model(x).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        model.zero_grad()
        loss.backward()
        if i:
            times.append(time.perf_counter() - t0)
    print(json.dumps({"tokens_per_s": a.batch * a.seq / statistics.median(times)}))
else:
    model.eval()
    prompt = torch.tensor([[1 + i * 37 % 7999 for i in range(16)]])
    kw = dict(max_new_tokens=a.new, min_new_tokens=a.new, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        model.generate(prompt, **kw)
        best = 1e30
        for _ in range(3):
            t0 = time.perf_counter()
            model.generate(prompt, **kw)
            best = min(best, time.perf_counter() - t0)
    print(json.dumps({"tokens_per_s": a.new / best}))
