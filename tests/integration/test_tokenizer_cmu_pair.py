"""Stage 1 trained on the CMU handshake pair alone (../shared/data/cmu-mocap, skipped when absent):
the tokenizer must reconstruct the pair it was trained on within 15 mm MPJPE (both persons)."""
import json

from conftest import SOURCE_DIR, run_vimo

LIMIT_MM = 15.0


def test_tokenizer_reconstructs_the_cmu_pair(vimo_bin, shared_data, tmp_path):
    cmu = shared_data / "cmu-mocap"
    clips = tmp_path / "clips"
    clips.mkdir()
    run_vimo(vimo_bin, "motion", "import", "--a", cmu / "18_01.bvh", "--b", cmu / "19_01.bvh", "--skip-frames", 1,
             "--out", clips / "cmu_18_19.npy")
    packed = tmp_path / "packed"
    run_vimo(vimo_bin, "data", "prepare", "--config", SOURCE_DIR / "configs/data/clips.yaml", f"data.root={clips}",
             f"data.out={packed}", "data.splits=[train]", "data.val_fraction=0", "data.test_fraction=0",
             "data.mirror=false", "data.swap_persons=false")
    run = tmp_path / "run"
    run_vimo(vimo_bin, "tokenizer", "train", "--config", SOURCE_DIR / "configs/tokenizer/cmu_pair.yaml",
             f"run.dir={run}", f"data.packed={packed}")
    run_vimo(vimo_bin, "tokenizer", "eval", "--run", run, "--split", "train", "--out", tmp_path / "eval.json")
    r = json.loads((tmp_path / "eval.json").read_text())
    print(f"CMU pair: MPJPE {r['mpjpe_mm']:.2f} mm, by layers {r['mpjpe_by_layers_mm']}")
    assert r["frames"] > 100  # both persons of the whole clip were evaluated
    assert r["mpjpe_mm"] <= LIMIT_MM, r
