"""The metric part of `vimo eval t2m` (embeddings given): R-precision, MM-Dist, FID, Diversity and
MultiModality over 1,000 pairs x 20 replications, `vimo eval embeddings` against the numpy/scipy
transcription of InterGen's utils/metrics.py (tests/parity/test_eval_features.py) on the same draws,
side by side in one run. vimo's time is the whole command (start, .npy reads, JSON out). Usage:
  python bench/eval_metrics_bench.py BUILD_DIR [--pairs 1000] [--replications 20] [--protocol intergen]"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.linalg
from safetensors.numpy import load_file

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "parity"))
from test_eval_features import embeddings, replication  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--replications", type=int, default=20)
    ap.add_argument("--protocol", default="intergen")
    ap.add_argument("--threads", type=int, default=0, help="OMP threads of vimo (0: all cores)")
    a = ap.parse_args()
    vimo = pathlib.Path(a.build_dir) / "vimo"
    d = pathlib.Path(tempfile.mkdtemp(prefix="vimo_eval_bench_"))
    text, motion, gt, mm = embeddings(np.random.default_rng(1), n=a.pairs, n_gt=a.pairs)
    for k, v in {"text": text, "motion": motion, "gt": gt, "mm": mm}.items():
        np.save(d / f"{k}.npy", v)
    cmd = [str(vimo), "eval", "embeddings", "--text", str(d / "text.npy"), "--motion", str(d / "motion.npy"),
           "--gt", str(d / "gt.npy"), "--mm", str(d / "mm.npy"), "--protocol", a.protocol,
           "--replications", str(a.replications), "--seed", "7", "--save-draws", str(d / "draws.safetensors")]
    env = None
    if a.threads > 0:
        import os
        env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    t0 = time.perf_counter()
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout)
    t_vimo = time.perf_counter() - t0

    draws = load_file(str(d / "draws.safetensors"))
    p = out["protocol"]
    f64 = [x.astype(np.float64) for x in (text, motion, gt, mm)]
    t0 = time.perf_counter()
    ref = [replication(scipy.linalg, *f64, draws, r, p) for r in range(a.replications)]
    t_ref = time.perf_counter() - t0
    worst = max(abs(out["per_replication"][r]["fid"] - ref[r]["fid"]) / abs(ref[r]["fid"])
                for r in range(a.replications))

    print(f"metric part of t2m: {a.pairs} pairs x {a.replications} replications, D={text.shape[1]}, "
          f"MultiModality {mm.shape[0]}x{mm.shape[1]}, protocol {a.protocol}")
    print(f"  vimo eval embeddings (whole command)    {t_vimo:8.2f} s")
    print(f"  numpy/scipy transcription of InterGen   {t_ref:8.2f} s")
    print(f"  ratio reference/vimo                    {t_ref / t_vimo:8.2f}x")
    print(f"  FID max relative difference             {worst:.2e}")


if __name__ == "__main__":
    main()
