"""``roadtrack train --procs N``: local DDP processes started without torchrun."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from roadtrack.engine import distributed as D
from roadtrack.engine.checkpoint import load_checkpoint
from roadtrack.engine.launch import run_processes
from roadtrack.errors import UserError
from tests.train_helpers import ROOT, copy_dataset, tiny_config


def rank_sum(offset: float) -> dict:
    """Every rank adds its rank + offset; each returns what it saw (spawned: module level)."""
    D.setup("cpu")
    total = D.all_sum(torch.tensor([float(os.environ["RANK"]) + offset]))
    return {"rank": int(os.environ["RANK"]), "world": int(os.environ["WORLD_SIZE"]),
            "sum": float(total), "threads": torch.get_num_threads()}


def fail_on_rank_one(path: str) -> None:
    """Rank 1 refuses its input; rank 0 waits for it in a collective (and is stopped)."""
    D.setup("cpu")
    if os.environ["RANK"] == "1":
        raise UserError("no frames", path)
    D.barrier()


def test_processes_join_one_group_and_return_rank_zero_result(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    result = run_processes(2, rank_sum, 10.0)
    assert result == {"rank": 0, "world": 2, "sum": 21.0, "threads": 1}


def test_user_error_in_one_rank_is_the_callers_one_line_error():
    with pytest.raises(UserError, match=r"^clip\.mp4: no frames$"):
        run_processes(2, fail_on_rank_one, "clip.mp4")


def _train(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "roadtrack", "train", "--config", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
                          check=False)


def test_train_procs_two_trains_one_run_with_both_ranks(synth_root, tmp_path):
    config = tiny_config(tmp_path, batch_size=1)
    done = _train([config, "--data", str(synth_root), "--out", str(tmp_path / "run"),
                   "--procs", "2"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 2 steps") == 1  # the summary once, from the caller
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == 2 and len(state["rng"]) == 2  # one RNG state per rank
    assert "world_size: 2" in (tmp_path / "run" / "run.yaml").read_text()


def test_train_procs_two_with_a_missing_video_is_one_line_and_no_run(synth_root, tmp_path):
    data = copy_dataset(synth_root, tmp_path / "data", frames=False)
    min((data / "videos").iterdir()).unlink()
    done = _train([tiny_config(tmp_path), "--data", str(data), "--out", str(tmp_path / "run"),
                   "--procs", "2"])
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "videos" in lines[0], done.stderr[-3000:]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_procs_below_one_is_refused(tmp_path):
    config = tiny_config(tmp_path, procs=0)
    done = _train([config, "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    assert done.returncode == 2 and "train.procs" in done.stderr
    assert not Path(tmp_path / "run").exists()
