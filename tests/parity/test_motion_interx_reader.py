"""The Inter-X reader on a fixture in Inter-X's released layout (SMPL-X parameters in .npz at 120 fps):
rotations must come through exactly (pytorch3d 6D of the given axis-angles), frames resampled to 30 fps."""
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import motion_reference as ref  # noqa: E402
from conftest import run_vimo  # noqa: E402


def smplx_params(t, seed, x, z_up):
    rng = np.random.default_rng(seed)
    k = np.arange(t)[:, None]
    pose = 0.3 * np.sin(k * rng.uniform(0.01, 0.05, 63) + rng.uniform(0, 6, 63))
    orient = np.zeros((t, 3))
    orient[:, 1] = 0.4 + 0.002 * np.arange(t)  # turning about the body's up axis
    trans = np.stack([x + 0.003 * np.arange(t), np.full(t, 0.9), np.zeros(t)], -1)
    if z_up:  # the same motion in a Z-up world: rotate +90 degrees about X
        rx = ref.aa_to_mat(np.array([np.pi / 2, 0, 0]))
        orient = np.stack([cv2_rodrigues(rx @ ref.aa_to_mat(o)) for o in orient])
        trans = trans @ rx.T
    return {"root_orient": orient, "pose_body": pose, "trans": trans, "betas": np.zeros(10),
            "gender": np.array("neutral")}


def cv2_rodrigues(m):
    angle = np.arccos(np.clip((np.trace(m) - 1) / 2, -1, 1))
    axis = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]]) / (2 * np.sin(angle))
    return axis * angle


def write_fixture(root, ids, t=240, z_up=False, compressed=False):
    (root / "splits").mkdir(parents=True)
    (root / "texts").mkdir()
    for i, cid in enumerate(ids):
        d = root / "motions" / cid
        d.mkdir(parents=True)
        for p, x in (("P1", 0.0), ("P2", 1.2)):
            params = smplx_params(t, 10 * i + len(p) + int(x), x, z_up)
            (np.savez_compressed if compressed else np.savez)(d / f"{p}.npz", **params)
        (root / "texts" / f"{cid}.txt").write_text("one person waves.\nthe other waves back.\n")
    (root / "splits" / "train.txt").write_text("".join(c + "\n" for c in ids))


def test_interx_reader(vimo_bin, tmp_path):
    for z_up in (False, True):
        root = tmp_path / f"interx_{z_up}"
        write_fixture(root, ["G001T000A000R000"], z_up=z_up)
        out = tmp_path / f"out_{z_up}"
        run_vimo(vimo_bin, "motion", "convert", root, "--format", "interx", "--out", out)
        clip = np.load(out / "G001T000A000R000.npy")
        assert clip.shape == (59, 2, 262)  # 240 frames at 120 fps = 1.99 s -> 60 frames at 30 fps
        assert (out / "G001T000A000R000.txt").read_text().splitlines() == ["one person waves.", "the other waves back."]
        params = smplx_params(240, 0 + 2, 0.0, False)
        want = ref.aa_to_mat(params["pose_body"].reshape(240, 21, 3))[:, :, :2, :].reshape(240, 126)
        assert np.abs(clip[:, 0, 132:258] - want[0:236:4]).max() < 1e-5
        j = clip[:, :, :66].reshape(59, 2, 22, 3)
        up = (j[:, :, 15] - j[:, :, 0]).mean((0, 1))
        assert up[1] > 0.3 and abs(up[2]) < 0.2, f"head should be above the pelvis in Y-up output, got {up}"
        assert j[..., 1].min() > -1e-6


def test_interx_compressed_is_a_clear_error(vimo_bin, tmp_path):
    root = tmp_path / "c"
    write_fixture(root, ["G001T000A000R001"], t=80, compressed=True)
    p = run_vimo(vimo_bin, "motion", "convert", root, "--format", "interx", "--out", tmp_path / "o", check=False)
    assert p.returncode != 0 and "np.savez" in p.stderr and "P1.npz" in p.stderr
