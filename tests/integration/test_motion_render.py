"""`vimo motion render`: GIF decodes (PIL) with the expected frames and size; HTML is self-contained;
MP4 needs ffmpeg and says so when it is absent."""
import shutil
import subprocess

import numpy as np
import pytest

from conftest import run_vimo

PIL = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def clip(vimo_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("render")
    run_vimo(vimo_bin, "data", "synth", "--out", root / "ds", "--clips", 2, "--seed", 1)
    raw = [np.load(root / "ds" / "motions_processed" / f"person{p}" / "1.npy")[:, :66].reshape(-1, 22, 3) for p in (1, 2)]
    zup = np.stack(raw, axis=1)
    yup = np.stack([zup[..., 0], zup[..., 2], -zup[..., 1]], axis=-1).astype(np.float32)  # Z up -> Y up
    path = root / "clip.npy"
    np.save(path, yup)
    return path, yup.shape[0]


def test_gif_decodes_with_expected_frames(vimo_bin, clip, tmp_path):
    path, T = clip
    out = tmp_path / "x.gif"
    run_vimo(vimo_bin, "motion", "render", path, "--out", out, "--caption", "two people shake hands", "--width", 320, "--height", 240)
    im = PIL.open(out)
    assert im.format == "GIF" and im.size == (320, 240)
    assert im.n_frames == (T + 1) // 2
    im.seek(im.n_frames - 1)
    frame = np.asarray(im.convert("RGB"))
    colours = {tuple(c) for c in frame.reshape(-1, 3)}
    assert (22, 72, 165) in colours or (45, 115, 205) in colours, "person A drawn in blue"
    assert (185, 60, 10) in colours or (225, 110, 30) in colours, "person B drawn in orange"


def test_html_is_self_contained(vimo_bin, clip, tmp_path):
    path, T = clip
    out = tmp_path / "x.html"
    run_vimo(vimo_bin, "motion", "render", path, "--out", out, "--caption", "hello <there>")
    html = out.read_text()
    assert "http:" not in html and "https:" not in html and "src=" not in html
    assert f'"frames":{T}' in html and '"persons":2' in html
    assert "hello &lt;there&gt;" in html and "<canvas" in html


def test_mp4_or_clear_error(vimo_bin, clip, tmp_path):
    path, T = clip
    out = tmp_path / "x.mp4"
    p = run_vimo(vimo_bin, "motion", "render", path, "--out", out, "--width", 320, "--height", 240, check=False)
    if not shutil.which("ffmpeg"):
        assert p.returncode != 0 and "ffmpeg" in (p.stdout + p.stderr) and not out.exists()
        return
    assert p.returncode == 0, p.stderr
    # Decode the video again with ffmpeg: every frame of the clip (MP4 keeps the full 30 fps, the GIF
    # every other frame), the requested size, both persons visible (lossy codec: colour tolerance).
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, 240, 320, 3)
    assert frames.shape[0] == T
    last = frames[-1].reshape(-1, 3).astype(int)
    def near(rgb, tol=40):
        return (np.abs(last - np.array(rgb)).sum(1) < tol).sum()
    assert near((22, 72, 165)) + near((45, 115, 205)) > 50, "person A drawn in blue"
    assert near((185, 60, 10)) + near((225, 110, 30)) > 50, "person B drawn in orange"


def test_bad_input(vimo_bin, tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((10, 2, 21, 3), np.float32))
    p = run_vimo(vimo_bin, "motion", "render", bad, "--out", tmp_path / "y.gif", check=False)
    assert p.returncode != 0 and "22, 3" in (p.stdout + p.stderr)


def test_group_scenes_render_every_person(vimo_bin, tmp_path):
    """`vimo data synth-group` writes [T, 3, 262] scenes; the GIF draws person C in its own green and the HTML
    viewer, opened in headless Chromium when it is installed, draws all three bodies."""
    run_vimo(vimo_bin, "data", "synth-group", "--out", tmp_path / "g", "--count", 2, "--persons", 3)
    import json
    meta = json.loads((tmp_path / "g" / "group3_2.json").read_text())
    assert meta["persons"] == 3 and meta["type"] == "circle_dance" and len(meta["pairs"]) == 2
    x = np.load(tmp_path / "g" / "group3_2.npy")
    assert x.shape[1:] == (3, 262) and x.shape[0] == meta["frames"]
    gif = tmp_path / "g.gif"
    run_vimo(vimo_bin, "motion", "render", tmp_path / "g" / "group3_2.npy", "--out", gif, "--width", 320, "--height", 240)
    im = PIL.open(gif)
    im.seek(im.n_frames // 2)
    colours = {tuple(c) for c in np.asarray(im.convert("RGB")).reshape(-1, 3)}
    for name, rgbs in (("A", ((22, 72, 165), (45, 115, 205))), ("B", ((185, 60, 10), (225, 110, 30))),
                       ("C", ((20, 120, 60), (45, 160, 85)))):
        assert any(c in colours for c in rgbs), f"person {name} not drawn"
    html = tmp_path / "g.html"
    run_vimo(vimo_bin, "motion", "render", tmp_path / "g" / "group3_2.npy", "--out", html)
    assert '"persons":3' in html.read_text()
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not chrome:
        pytest.skip("Chromium is not installed (the GIF check above ran)")
    png = tmp_path / "g.png"
    subprocess.run([chrome, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=3000",
                    f"--screenshot={png}", "--window-size=900,760", f"file://{html}"], capture_output=True, timeout=120)
    assert png.exists(), "Chromium wrote no screenshot"
    img = np.asarray(PIL.open(png).convert("RGB")).astype(int)
    def pixels(rgb, tol=40):
        return int((np.abs(img - np.array(rgb)).max(axis=2) <= tol).sum())
    for name, rgb in (("A", (0x2D, 0x73, 0xCD)), ("B", (0xE1, 0x6E, 0x1E)), ("C", (0x2D, 0xA0, 0x55))):
        assert pixels(rgb) > 30, f"the viewer drew no body of person {name}"
