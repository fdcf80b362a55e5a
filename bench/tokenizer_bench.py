"""Python side of bench/tokenizer_bench: training steps/s of the PyTorch reference RQ-VAE."""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tokenizer_reference import Rqvae, stage1_loss  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--width", type=int, default=128)
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--device", default="cpu")
ap.add_argument("--precision", default="fp32")
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
dev = torch.device("cuda" if a.device.startswith("cuda") else "cpu")
model = Rqvae(width=a.width, code_dim=a.width).to(dev)
clips = [torch.randn(128, 2, 262) for _ in range(16)]
opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
g = torch.Generator().manual_seed(0)


def batch():
    # Random windows of one person, like vimo's sampler.
    out = []
    for _ in range(a.batch):
        c = clips[int(torch.randint(len(clips), (1,), generator=g))]
        s = int(torch.randint(c.shape[0] - 64 + 1, (1,), generator=g))
        out.append(c[s:s + 64, int(torch.randint(2, (1,), generator=g))])
    return torch.stack(out).to(dev)


def step():
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.precision == "bf16" and dev.type == "cuda"):
        loss = stage1_loss(model, batch())
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


for _ in range(3):
    step()
if dev.type == "cuda":
    torch.cuda.synchronize()
t0 = time.perf_counter()
for _ in range(a.steps):
    step()
if dev.type == "cuda":
    torch.cuda.synchronize()
sps = a.steps / (time.perf_counter() - t0)
print(f"python  {sps:.3f} steps/s  {sps * a.batch:.1f} samples/s")
print(f"python {sps}")
