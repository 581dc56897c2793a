"""Videos that failed in a batch (``detect``, ``run``): the batch goes on without them, lists them
in a closing table and exits with :data:`EXIT_SOME_FAILED`; the run folder's ``run.yaml`` keeps
them under ``failed:`` until a rerun (which retries exactly them) gets them through.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import UserError
from .io.runs import PipelineRun
from .report import table

EXIT_SOME_FAILED = 1
"""Exit status when the batch finished but some videos failed (2: stopped by an error)."""


@dataclass(frozen=True)
class Failure:
    video: str
    stage: str  # detect, track or events
    path: str  # the file at fault: the video, an image of a frame folder, an artifact
    frame: int | None  # where the video broke; None when it could not be opened or read at all
    reason: str

    @classmethod
    def of(cls, error: UserError, video: str, stage: str, path: str | Path) -> Failure:
        """The failure ``error`` (one of ``video``'s, at ``path`` unless it names a file)."""
        reason = str(error)
        if error.path is not None:
            reason = reason.removeprefix(f"{error.path}: ")
        return cls(video, stage, error.path or str(path), getattr(error, "frame", None), reason)


def failure_table(failures: Iterable[Failure]) -> str:
    """One row per failed video, by name: video, stage, file, frame (``-``: none), reason."""
    rows = [[f.video, f.stage, f.path, "-" if f.frame is None else f.frame, f.reason]
            for f in sorted(failures, key=lambda f: f.video)]
    return table(rows, ["video", "stage", "file", "frame", "reason"])


def record_failures(run: str | Path, failures: list[Failure], videos: Iterable[str]) -> None:
    """Bring ``run.yaml``'s ``failed:`` list up to date after a batch over ``videos``: their old
    entries give way to ``failures``, other videos' entries stay."""
    PipelineRun(run).record_failures([asdict(f) for f in failures], videos)
