"""Parity: `vimo eval fid` against InterGen's calculate_frechet_distance on scipy.linalg.sqrtm (full-rank,
rank-deficient and constant-feature cases), and `vimo eval embeddings` against a numpy transcription of
InterGen's utils/metrics.py and tools/eval.py run on the very draws vimo used."""
import importlib
import json
import os
import pathlib
import sys
import time
import warnings

import numpy as np
import pytest

sys.path[:0] = [str(pathlib.Path(__file__).parents[1])]
from conftest import reference, run_vimo  # noqa: E402


# A missing reference package skips (fails under CI=true: tests/conftest.py).
require = reference


@pytest.fixture(scope="module")
def linalg():
    return require("scipy.linalg")


@pytest.fixture(scope="module")
def safetensors_numpy():
    return require("safetensors.numpy")


# ---- InterGen utils/metrics.py, transcribed (emb_scale and divide_by as InterMask parameterizes them) ----
def euclidean_distance_matrix(m1, m2):
    d1 = -2 * np.dot(m1, m2.T)
    d2 = np.sum(np.square(m1), axis=1, keepdims=True)
    d3 = np.sum(np.square(m2), axis=1)
    return np.sqrt(d1 + d2 + d3)


def calculate_top_k(mat, top_k):
    size = mat.shape[0]
    gt_mat = np.expand_dims(np.arange(size), 1).repeat(size, 1)
    bool_mat = mat == gt_mat
    correct_vec = False
    top_k_list = []
    for i in range(top_k):
        correct_vec = correct_vec | bool_mat[:, i]
        top_k_list.append(correct_vec[:, None])
    return np.concatenate(top_k_list, axis=1)


def calculate_activation_statistics(activations, emb_scale):
    activations = activations * emb_scale
    return np.mean(activations, axis=0), np.cov(activations, rowvar=False)


def calculate_frechet_distance(linalg, mu1, sigma1, mu2, sigma2, eps=1e-6):
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy >= 1.16 deprecates disp=False; InterGen passes it
        covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError("Imaginary component {}".format(np.max(np.abs(covmean.imag))))
        covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def calculate_diversity(activation, first, second, emb_scale, divide_by):
    activation = activation * emb_scale
    return np.linalg.norm((activation[first] - activation[second]) / divide_by, axis=1).mean()


def calculate_multimodality(activation, first, second, emb_scale, divide_by):
    activation = activation * emb_scale
    return np.linalg.norm((activation[:, first] - activation[:, second]) / divide_by, axis=2).mean()


def replication(linalg, text, motion, gt, mm, draws, r, p):
    """tools/eval.py's evaluate_matching_score / fid / diversity / multimodality for one replication."""
    B = p["batch_size"]
    order = draws[f"r{r}.order"]
    batches = len(order) // B  # DataLoader(drop_last=True) over the shuffled order
    top_k_count, mm_dist_sum, all_size, acts = 0, 0.0, 0, []
    for b in range(batches):
        idx = order[b * B:(b + 1) * B]
        dist_mat = euclidean_distance_matrix(text[idx], motion[idx])
        mm_dist_sum += dist_mat.trace()
        top_k_count += calculate_top_k(np.argsort(dist_mat, axis=1), top_k=3).sum(axis=0)
        all_size += B
        acts.append(motion[idx])
    acts = np.concatenate(acts, axis=0)
    gt_order = draws[f"r{r}.gt_order"]
    gt_acts = gt[gt_order[:len(gt_order) // B * B]]
    gt_mu, gt_cov = calculate_activation_statistics(gt_acts, p["fid_scale"])
    mu, cov = calculate_activation_statistics(acts, p["fid_scale"])
    return {
        "r_precision": top_k_count / all_size,
        "mm_dist": mm_dist_sum / all_size,
        "fid": calculate_frechet_distance(linalg, gt_mu, gt_cov, mu, cov),
        "diversity": calculate_diversity(acts, draws[f"r{r}.div_first"], draws[f"r{r}.div_second"],
                                         p["diversity_scale"], p["diversity_divide"]),
        "multimodality": calculate_multimodality(mm, draws[f"r{r}.mm_first"], draws[f"r{r}.mm_second"],
                                                 p["mm_scale"], p["mm_divide"]),
    }


def fid_reference(linalg, a, b, scale=1.0):
    mu1, s1 = calculate_activation_statistics(a.astype(np.float64), scale)
    mu2, s2 = calculate_activation_statistics(b.astype(np.float64), scale)
    return calculate_frechet_distance(linalg, mu1, s1, mu2, s2), np.trace(s1) + np.trace(s2)


def fid_cases(rng):
    a, b = rng.normal(size=(1000, 64)), rng.normal(size=(900, 64)) * 1.3 + 0.2
    low = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 64))  # rank 8 of 64
    const_a, const_b = rng.normal(size=(300, 32)), rng.normal(size=(300, 32))
    const_a[:, 3], const_b[:, 3], const_a[:, 7], const_b[:, 7] = 1.0, 2.0, 0.0, 0.0  # zero-variance features
    same = rng.normal(size=(60, 128))
    return {
        "full_rank": (a, b, 1.0),
        "full_rank_scaled": (a[:400].astype(np.float32), b[:300].astype(np.float32), 6.0),
        "fewer_samples_than_dims": (rng.normal(size=(40, 128)), rng.normal(size=(50, 128)) + 0.5, 1.0),
        "low_rank_features": (low, low[::-1] * 1.1 + rng.normal(size=(500, 64)) * 1e-3, 1.0),
        "constant_features": (const_a, const_b, 1.0),
        "identical_rank_deficient": (same, same.copy(), 1.0),
        "wide_512": (rng.normal(size=(300, 512)), rng.normal(size=(320, 512)) * 0.9, 1.0),
        # A few more rows than dimensions, ill-conditioned (as 576 reaction embeddings of 512).
        "ill_conditioned_576": (rng.normal(size=(576, 40)) @ rng.normal(size=(40, 512)) + rng.normal(size=(576, 512)) * 1e-5,
                                rng.normal(size=(600, 512)) * 0.8, 6.0),
    }


def test_fid_matches_scipy_sqrtm_on_full_and_rank_deficient_features(vimo_bin, tmp_path, linalg):
    rng = np.random.default_rng(7)
    worst_rel, worst_abs = 0.0, 0.0
    for name, (a, b, scale) in fid_cases(rng).items():
        np.save(tmp_path / "a.npy", a)
        np.save(tmp_path / "b.npy", b)
        got = json.loads(run_vimo(vimo_bin, "eval", "fid", "--a", tmp_path / "a.npy", "--b", tmp_path / "b.npy",
                                  "--scale", scale).stdout)["fid"]
        want, traces = fid_reference(linalg, a, b, scale)
        err = abs(got - want)
        # Near 0 (identical sets) both are rounding noise of sqrtm: compare to the covariances' size.
        rel = err / abs(want) if abs(want) > 1e-3 * traces else err / traces
        print(f"fid {name}: vimo {got:.12g} scipy {want:.12g} abs {err:.3g} rel {rel:.3g}")
        worst_rel, worst_abs = max(worst_rel, rel), max(worst_abs, err)
        assert rel <= 1e-6, name
    print(f"fid parity: max abs diff {worst_abs:.3g}, max rel diff {worst_rel:.3g}")


def test_fid_refuses_nan_features_and_writes_nothing(vimo_bin, tmp_path):
    a = np.random.default_rng(0).normal(size=(20, 4))
    np.save(tmp_path / "a.npy", a)
    a[3, 1] = np.nan
    np.save(tmp_path / "b.npy", a)
    p = run_vimo(vimo_bin, "eval", "fid", "--a", tmp_path / "a.npy", "--b", tmp_path / "b.npy", "--out",
                 tmp_path / "fid.json", check=False)
    assert p.returncode != 0 and "NaN" in p.stderr, p.stderr
    assert not (tmp_path / "fid.json").exists()


def embeddings(rng, n=1000, n_gt=1100, d=512, texts=100, repeats=30):
    text = rng.normal(size=(n, d)).astype(np.float32)
    motion = (text + rng.normal(size=(n, d)) * 1.2).astype(np.float32)  # R-precision neither 0 nor 1
    gt = (rng.normal(size=(n_gt, d)) * 1.1).astype(np.float32)
    mm = (rng.normal(size=(texts, 1, d)) + 0.3 * rng.normal(size=(texts, repeats, d))).astype(np.float32)
    return text, motion, gt, mm


@pytest.mark.parametrize("protocol", ["intergen", "intermask"])
def test_embedding_metrics_match_intergens_formulas_on_the_same_draws(vimo_bin, tmp_path, protocol, linalg,
                                                                     safetensors_numpy):
    text, motion, gt, mm = embeddings(np.random.default_rng(3))
    for k, v in {"text": text, "motion": motion, "gt": gt, "mm": mm}.items():
        np.save(tmp_path / f"{k}.npy", v)
    reps = 3
    t0 = time.time()
    out = json.loads(run_vimo(vimo_bin, "eval", "embeddings", "--text", tmp_path / "text.npy", "--motion",
                              tmp_path / "motion.npy", "--gt", tmp_path / "gt.npy", "--mm", tmp_path / "mm.npy",
                              "--protocol", protocol, "--replications", reps, "--seed", 11, "--save-draws",
                              tmp_path / "draws.safetensors").stdout)
    print(f"vimo eval embeddings ({protocol}, {reps} replications, 1000 pairs, D=512): {time.time() - t0:.1f} s")
    draws = safetensors_numpy.load_file(str(tmp_path / "draws.safetensors"))
    p = out["protocol"]
    f64 = [x.astype(np.float64) for x in (text, motion, gt, mm)]
    worst = {}
    for r in range(reps):
        want, got = replication(linalg, *f64, draws, r, p), out["per_replication"][r]
        assert [got[f"r_precision_top{k}"] for k in (1, 2, 3)] == list(want["r_precision"]), r
        for k in ("mm_dist", "fid", "diversity", "multimodality"):
            rel = abs(got[k] - want[k]) / abs(want[k])
            worst[k] = max(worst.get(k, 0.0), rel)
            assert rel <= (1e-6 if k == "fid" else 1e-9), (r, k, got[k], want[k])
    vals = np.array([[out["per_replication"][r]["fid"]] for r in range(reps)])
    assert out["summary"]["fid"]["ci95"] == pytest.approx(1.96 * vals.std(axis=0)[0] / np.sqrt(reps), rel=1e-9)
    print(f"{protocol}: R-precision counts identical; max rel diffs {worst}")


def test_draws_are_permutations_and_choices_without_replacement(vimo_bin, tmp_path, safetensors_numpy):
    text, motion, _, mm = embeddings(np.random.default_rng(5), n=400, d=16, texts=5, repeats=12)
    for k, v in {"text": text, "motion": motion, "mm": mm}.items():
        np.save(tmp_path / f"{k}.npy", v)
    run_vimo(vimo_bin, "eval", "embeddings", "--text", tmp_path / "text.npy", "--motion", tmp_path / "motion.npy",
             "--mm", tmp_path / "mm.npy", "--replications", 2, "--batch-size", 96, "--save-draws",
             tmp_path / "d.safetensors")
    d = safetensors_numpy.load_file(str(tmp_path / "d.safetensors"))
    assert sorted(d["r0.order"].tolist()) == list(range(400))
    assert not np.array_equal(d["r0.order"], d["r1.order"])
    assert len(set(d["r0.div_first"].tolist())) == 300 and d["r0.div_first"].max() < 384  # 4 full batches
    assert len(set(d["r1.mm_first"].tolist())) == 10 and d["r1.mm_first"].max() < 12
