"""Reference side of the pre-training step benchmark: PEFT LoRA (dropout 0) on a transformers Llama with
vocabulary rows N.. trainable, timed over K AdamW training steps after one warm-up step. Prints one
JSON line: tokens_per_s (median), step_s, trainable_params, method. With --serve it stays alive after
the warm-up (printing {"ready": ...}) and, per line "N" on stdin, runs N timed steps and prints their
JSON line; "quit" ends it (bench/lm_bench.cpp alternates with it every few steps)."""
import argparse
import json
import statistics
import sys
import time

import peft
import torch
import transformers

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True, help="HF Llama directory whose vocabulary already holds the new rows")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--seq", type=int, default=256)
ap.add_argument("--iters", type=int, default=5)
ap.add_argument("--rank", type=int, default=8)
ap.add_argument("--alpha", type=float, default=16)
ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
ap.add_argument("--new-rows-from", type=int, required=True, help="first trainable vocabulary row N")
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--prompt", type=int, default=0, help="the first P positions of each row are prompt (label -100)")
ap.add_argument("--serve", action="store_true", help="stay alive: run N steps per line 'N' on stdin")
ap.add_argument("--trace", default="", help="write a chrome://tracing file of two extra steps (per op)")
ap.add_argument("--method", default="auto", choices=["auto", "trainable_token_indices", "modules_to_save"],
                help="how the new rows train; auto = trainable_token_indices where this PEFT has it")
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

base = transformers.LlamaForCausalLM.from_pretrained(a.model, dtype=torch.float32)
V = base.config.vocab_size
assert 0 <= a.new_rows_from < V, f"--new-rows-from {a.new_rows_from} is outside the vocabulary (0..{V - 1})"
rows = list(range(a.new_rows_from, V))
tied = bool(base.config.tie_word_embeddings)
lora = dict(r=a.rank, lora_alpha=a.alpha, lora_dropout=0.0, target_modules=a.targets.split(","))

# Chosen: trainable_token_indices where LoraConfig has it (this PEFT does). It trains only the chosen
# rows (a delta per row over the frozen matrix), which is what vimo's new rows are; an untied head gets
# its own indices, a tied head follows the embedding. Older PEFT lacks it: then modules_to_save trains
# whole copies of the matrices, and a gradient hook plus zero weight decay keep rows < N fixed (a
# full-matrix optimizer step, so slower than what vimo does).
has_tti = "trainable_token_indices" in peft.LoraConfig.__dataclass_fields__
assert has_tti or a.method != "trainable_token_indices", f"PEFT {peft.__version__} has no trainable_token_indices"
if a.method == "trainable_token_indices" or (a.method == "auto" and has_tti):
    method = "trainable_token_indices"
    idx = rows if tied else {"embed_tokens": rows, "lm_head": rows}
    model = peft.get_peft_model(base, peft.LoraConfig(trainable_token_indices=idx, **lora))
    groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
else:
    method = "modules_to_save"
    mts = ["embed_tokens"] + ([] if tied else ["lm_head"])
    if tied and "ensure_weight_tying" in peft.LoraConfig.__dataclass_fields__:
        lora["ensure_weight_tying"] = True  # else the tied head keeps the frozen original matrix
    model = peft.get_peft_model(base, peft.LoraConfig(modules_to_save=mts, **lora))
    full = [p for n, p in model.named_parameters() if p.requires_grad and "modules_to_save" in n]
    for p in full:
        p.register_hook(lambda g: torch.cat([torch.zeros_like(g[:a.new_rows_from]), g[a.new_rows_from:]]))
    groups = [{"params": [p for n, p in model.named_parameters() if p.requires_grad and "modules_to_save" not in n]},
              {"params": full, "weight_decay": 0.0}]
model.train()
opt = torch.optim.AdamW(groups, lr=a.lr)
trainable = sum(p.numel() for g in groups for p in g["params"])
if method == "modules_to_save":  # count the rows that are meant to train, not the full copies
    trainable -= sum(p[:a.new_rows_from].numel() for p in groups[1]["params"])

ids = torch.randint(0, V, (a.batch, a.seq))
labels = ids.clone()
labels[:, :a.prompt] = -100


def step():
    t0 = time.perf_counter()
    loss = model(input_ids=ids, labels=labels, use_cache=False).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0, loss.item()


step()  # warm-up: allocations, optimizer state
if a.trace:
    with torch.autograd.profiler.profile() as prof:
        step()
        step()
    prof.export_chrome_trace(a.trace)
if a.serve:
    print(json.dumps({"ready": True, "trainable_params": trainable, "method": method}), flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        times = [step()[0] for _ in range(int(line))]
        print(json.dumps({"step_s": times, "tokens_per_s": a.batch * a.seq / statistics.median(times)}), flush=True)
    sys.exit(0)
times, loss = [], 0.0
for _ in range(a.iters):
    dt, loss = step()
    times.append(dt)
print(json.dumps({"tokens_per_s": a.batch * a.seq / statistics.median(times), "step_s": times,
                  "trainable_params": trainable, "method": method, "loss": loss}))
