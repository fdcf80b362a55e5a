"""Shared pytest fixtures: the vimo binary, the source tree and the optional real data folder."""
import os
import pathlib
import subprocess

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("VIMO_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[1]))


@pytest.fixture(scope="session")
def vimo_bin():
    path = pathlib.Path(os.environ.get("VIMO_BIN", SOURCE_DIR / "build" / "vimo"))
    if not path.exists():
        pytest.fail(f"vimo binary not found at {path}; build with scripts/setup.sh")
    return str(path)


@pytest.fixture(scope="session")
def shared_data():
    """../shared/data next to the clone, or skip."""
    d = SOURCE_DIR.parent / "shared" / "data"
    if not d.is_dir():
        pytest.skip("../shared/data is absent")
    return d


def run_vimo(vimo_bin, *args, check=True, cwd=None, timeout=900):
    """Runs vimo; returns CompletedProcess with text output. check=True asserts exit 0."""
    p = subprocess.run([vimo_bin, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"vimo {' '.join(map(str, args))} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p
