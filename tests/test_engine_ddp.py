"""Two CPU processes under torchrun (Gloo): one training run, videos shared between ranks."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from roadtrack.engine.checkpoint import load_checkpoint
from roadtrack.io.annotations import load_annotation
from roadtrack.io.artifacts import finished_videos
from roadtrack.synth.dataset import ANNOTATION_NAME

ROOT = Path(__file__).resolve().parents[1]


def test_torchrun_two_processes_train_and_detect(synth_root, tmp_path):
    script = ROOT / "tests" / "ddp_toy_script.py"
    with subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
             "2", str(script), str(synth_root), str(tmp_path / "run"), str(tmp_path / "out"),
             str(tmp_path / "results")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            start_new_session=True,
            env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}) as proc:
        try:
            _, stderr = proc.communicate(timeout=240)
        finally:
            if proc.poll() is None:  # never leave the workers behind
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr[-3000:]
    ranks = [json.loads((tmp_path / "results" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # losses averaged over ranks; totals summed
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == 4 and len(state["rng"]) == 2
    ann = load_annotation(synth_root / ANNOTATION_NAME)
    assert finished_videos(tmp_path / "out", "detections") == sorted(ann.videos)
    assert ranks[0]["videos"] == len(ann.videos)
    assert ranks[0]["frames"] == sum(v.numf for v in ann.videos.values())
