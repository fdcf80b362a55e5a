"""Reference loader for bench/data_loader_bench: the stage-1 window sampling of vimo's WindowLoader
written with h5py and numpy (whole array in memory, fancy-index gather, normalize).
Prints windows per second. Usage: data_loader_reference.py TRAIN.h5 SECONDS"""
import sys
import time

import h5py
import numpy as np

B, W = 256, 64


def main(path, seconds):
    with h5py.File(path, "r") as f:
        motion = f["motion"][...]
        offsets = f["index/offset"][...]
        lengths = f["index/length"][...]
        persons = f["index/persons"][...]
    mean = np.zeros(262, np.float32)
    inv_std = np.full(262, 0.5, np.float32)
    clip, person, count = [], [], []
    for i in range(len(lengths)):
        if lengths[i] >= W:
            for p in range(persons[i]):
                clip.append(i), person.append(p), count.append(lengths[i] - W + 1)
    clip, person = np.array(clip), np.array(person)
    cum = np.concatenate([[0], np.cumsum(count)])
    rng = np.random.default_rng(0)
    steps = np.arange(W)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        u = rng.integers(0, cum[-1], B)
        e = np.searchsorted(cum, u, side="right") - 1
        rows = offsets[clip[e]] + (u - cum[e])
        batch = motion[rows[:, None] + steps[None, :], person[e][:, None]]  # [B, W, 262]
        batch = (batch - mean) * inv_std
        n += 1
    print(n * B / (time.perf_counter() - t0))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
