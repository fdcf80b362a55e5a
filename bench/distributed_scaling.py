"""Data-parallel scaling on this machine: the same stage-1 (RQ-VAE) training, same global batch, on 1
process and on 2 processes under torchrun (Gloo), each with 1 intra-op thread. Prints samples/s of both
side by side and the scaling efficiency (2-rank throughput / (2 x 1-rank throughput)), with the 2-rank
gradient sums started during the backward pass (dist.overlap=true) and after it (false), in buckets of
--bucket-mb.

  python bench/distributed_scaling.py [--steps 60] [--batch 32] [--width 64] [--bucket-mb 0.25] [--vimo build/vimo]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
ap = argparse.ArgumentParser()
ap.add_argument("--vimo", default=str(ROOT / "build" / "vimo"))
ap.add_argument("--steps", type=int, default=60)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--width", type=int, default=64)
ap.add_argument("--clips", type=int, default=64)
ap.add_argument("--bucket-mb", type=float, default=0.25)
a = ap.parse_args()
TORCHRUN = pathlib.Path(sys.executable).parent / "torchrun"
env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
env["OMP_NUM_THREADS"] = "1"


def sh(*cmd):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def throughput(run):
    """Mean samples/s over the logged intervals after the first (which holds the start-up)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [r["samples_per_s"] for r in rows if r.get("split") == "train" and "samples_per_s" in r]
    rates = rates[1:] or rates
    return sum(rates) / len(rates)


with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    sh(a.vimo, "data", "synth", "--out", tmp / "synth", "--clips", a.clips, "--seed", 1)
    sh(a.vimo, "data", "prepare", "--config", ROOT / "configs/data/synthetic.yaml", f"data.root={tmp / 'synth'}",
       f"data.out={tmp / 'packed'}")
    common = ["tokenizer", "train", "--config", ROOT / "configs/tokenizer/demo.yaml", f"data.packed={tmp / 'packed'}",
              f"train.steps={a.steps}", "train.val_every=0", f"train.ckpt_every={a.steps}",
              f"train.log_every={max(1, a.steps // 6)}", f"data.batch_size={a.batch}", f"model.width={a.width}",
              "run.threads=1", "data.workers=0"]
    t0 = time.time()
    sh(a.vimo, *common, f"run.dir={tmp / 'one'}")
    wall1 = time.time() - t0
    walls, rates = {}, {}
    for overlap in ("true", "false"):
        run = tmp / f"two_{overlap}"
        t0 = time.time()
        sh(TORCHRUN, "--standalone", "--nproc-per-node", "2", "--no-python", a.vimo, *common, f"run.dir={run}",
           f"dist.overlap={overlap}", f"dist.bucket_mb={a.bucket_mb}")
        walls[overlap], rates[overlap] = time.time() - t0, throughput(run)
        line = next(x for x in (run / "log.txt").read_text().splitlines() if "gradients summed in" in x)
        print(line.split("] ", 1)[-1] if "] " in line else line)
    s1 = throughput(tmp / "one")
    print(f"stage-1 RQ-VAE, global batch {a.batch}, width {a.width}, {a.steps} steps, 1 thread per process "
          f"({os.cpu_count()} cores)")
    print(f"{'':24s}{'samples/s':>12s}{'wall s':>10s}{'speed-up':>10s}{'efficiency':>12s}")
    print(f"{'1 rank':24s}{s1:12.1f}{wall1:10.1f}")
    for overlap in ("true", "false"):
        s2 = rates[overlap]
        print(f"{'2 ranks, overlap=' + overlap:24s}{s2:12.1f}{walls[overlap]:10.1f}{s2 / s1:9.2f}x{s2 / (2 * s1):12.1%}")
