"""``roadtrack submit``: a run's events as a ROAD++ challenge pickle.

    {label_type: {video: [tube, ...]}}   for agent, action, loc, duplex and triplet
    tube = {'label_id': int, 'score': float, 'scores': (n,) float32, 'boxes': (n, 4) float32
            x1 y1 x2 y2 in 840x600 pixels, 'frames': (n,) int32 contiguous 1-based frames}

Agent (Track 1) and triplet (Track 2) are the challenge's tracks; the other three serve a full
local evaluation. Every video asked for is present (an empty list where nothing was found). The
format, its conversion and its checks live in ``roadtrack.io.submission``.
"""
from __future__ import annotations

from pathlib import Path

from ..io.runs import PipelineRun
from ..io.submission import build_submission, require_valid, write_submission
from ..labels import LabelSpace, roadpp


def submit_run(run: str | Path, out: str | Path, videos: list[str] | None = None,
               zipped: bool = False) -> tuple[Path, dict]:
    """Build, check (every rule ``roadtrack validate`` applies) and write a run's submission."""
    submission = build_submission(run, videos)
    saved = PipelineRun(run).read().get("labels")
    labels = LabelSpace.from_dict(saved) if saved else roadpp()
    require_valid(submission, list(submission["agent"]), labels, out)
    return write_submission(submission, out, zipped), submission
