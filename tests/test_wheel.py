"""The wheel works without the source tree: build it, install it into a fresh virtual environment
and run the commands from a temporary folder.

The fresh environment sees the dependencies of the interpreter running the tests (a ``.pth``
file naming its site-packages, added after the install; the site-packages' own ``.pth`` files,
such as an editable install's finder, are not run from there), so nothing is downloaded.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[1]

WHERE = "import os, roadtrack; print(roadtrack.__file__); print(os.getcwd())"

# The demo's config load as ``roadtrack demo`` does it, stopped at its first step after it.
DEMO_CONFIG_LOAD = """
import sys

import roadtrack.synth.dataset as dataset
from roadtrack.cli import main


def stop(*args, **kwargs):
    print("demo config loaded")
    sys.exit(0)


dataset.write_dataset = stop
main(["demo", "--out", "demo-out"])
"""


def _run(cmd: list, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=180, check=False)
    assert res.returncode == 0, f"{cmd}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout


def _source_copy(dest: Path) -> Path:
    """The files a build reads (top-level files and the package), without build leftovers."""
    dest.mkdir()
    for item in ROOT.iterdir():
        if item.is_file():
            shutil.copy2(item, dest / item.name)
    shutil.copytree(ROOT / "roadtrack", dest / "roadtrack",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def _fresh_venv(path: Path, wheel: Path) -> Path:
    """A virtual environment holding ``wheel``, seeing the running interpreter's packages."""
    _run([sys.executable, "-m", "venv", "--without-pip", path], path.parent)
    python = path / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
          "--no-index", wheel], path.parent)
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     path.parent).strip())
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "_roadtrack_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    return path / "bin"


def test_the_wheel_runs_the_commands_outside_the_source_tree(tmp_path):
    src = _source_copy(tmp_path / "src")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", tmp_path / "dist", src], tmp_path)
    (wheel,) = (tmp_path / "dist").glob("roadtrack-*.whl")
    venv = tmp_path / "venv"
    bin_dir = _fresh_venv(venv, wheel)
    work = tmp_path / "work"
    work.mkdir()

    where = _run([bin_dir / "python", "-c", WHERE], work).splitlines()
    assert Path(where[0]).resolve().is_relative_to(venv.resolve())
    assert Path(where[1]).resolve() == work.resolve()
    assert not work.resolve().is_relative_to(ROOT)

    assert "Usage: roadtrack" in _run([bin_dir / "roadtrack", "--help"], work)

    det = work / "seqA" / "det" / "det.txt"
    det.parent.mkdir(parents=True)
    det.write_text("".join(f"{f},-1,{10 + 4 * f},{20 + 60 * k},40,50,0.9,-1,-1,-1\n"
                           for f in range(1, 6) for k in range(2)))
    out = _run([bin_dir / "roadtrack", "track", "--config", "sort", "--dets", det,
                "--out", work / "tracks", "--no-progress"], work)
    assert "[sort]" in out
    assert len((work / "tracks" / "seqA.txt").read_text().splitlines()) == 10

    assert "demo config loaded" in _run([bin_dir / "python", "-c", DEMO_CONFIG_LOAD], work)
