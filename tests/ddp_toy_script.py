"""Run under ``torchrun --nproc_per_node 2``: toy training then detection, for test_engine_ddp.

Each rank writes what it saw to ``<results>/rank<r>.json``.
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadtrack.engine import distributed as D
from roadtrack.engine.config import run_config_from_dict
from roadtrack.engine.detect import detect_videos, load_detector
from roadtrack.engine.train import train
from tests.train_helpers import toy_builder

data, run, out, results = (Path(a) for a in sys.argv[1:5])
cfg = run_config_from_dict({"model": {}, "data": {"input_size": [64, 64], "workers": 0},
                      "train": {"max_steps": 4, "warmup_steps": 1, "log_every": 2, "batch_size": 2},
                      "detect": {"score_threshold": 0.0}})
summary = train(cfg, data, run, builder=toy_builder(), progress=False)
found = detect_videos(load_detector(run=run, builder=toy_builder()), data, out, progress=False)
D.teardown()
results.mkdir(parents=True, exist_ok=True)
(results / f"rank{os.environ['RANK']}.json").write_text(json.dumps({
    "steps": summary.steps, "loss": summary.train_loss, "videos": found.videos,
    "frames": found.frames}))
