"""A training run's logs: ``metrics.csv`` (plus TensorBoard when installed), and what its
``run.yaml`` notes about the software (the record itself: ``roadtrack.io.runs.TrainingRun``).

``metrics.csv`` has one row per logged step and split (train rows average the losses since the
previous row; val rows hold the validation loss and frame-mAP). A resumed run first drops the rows
written after its checkpoint, so the log reads as if the run had never stopped.
"""
from __future__ import annotations

import csv
import hashlib
import platform
from pathlib import Path

import numpy
import torch
import torchvision

from .. import __version__
from ..io.atomic import write_text_atomic
from ..io.runs import TrainingRun

METRIC_COLUMNS = ("step", "epoch", "split", "lr", "elapsed_s", "loss", "loss_agentness",
                  "loss_agent", "loss_action", "loss_loc", "loss_l1", "loss_giou",
                  "frame_map_agentness", "frame_map_agent")


def versions() -> dict:
    return {"roadtrack": __version__, "python": platform.python_version(),
            "torch": str(torch.__version__), "torchvision": str(torchvision.__version__),
            "numpy": str(numpy.__version__)}


def fingerprint(path: str | Path) -> dict:
    """Size and the SHA-256 of the first MiB: enough to notice a changed input file."""
    path = Path(path)
    with open(path, "rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()
    return {"path": str(path.resolve()), "bytes": path.stat().st_size, "sha256_first_mib": head}


class MetricsLog:
    """Appends rows to ``metrics.csv`` (and TensorBoard scalars when the package is there)."""

    def __init__(self, run: str | Path, resume_step: int | None = None):
        run = TrainingRun(run)
        self.path = run.metrics
        if resume_step is not None and self.path.is_file():
            self._truncate_after(resume_step)
        elif self.path.is_file():
            self.path.unlink()
        self._tb = _tensorboard(run.tensorboard)

    def _truncate_after(self, step: int) -> None:
        with open(self.path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit()
                    and int(r["step"]) <= step]
        lines = [",".join(METRIC_COLUMNS)]
        lines += [",".join(r.get(c, "") or "" for c in METRIC_COLUMNS) for r in rows]
        write_text_atomic(self.path, "\n".join(lines) + "\n")

    def write(self, row: dict) -> None:
        new = not self.path.is_file()
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(v) for k, v in row.items()})
        if self._tb is not None:
            for key, value in row.items():
                if key not in ("step", "epoch", "split") and isinstance(value, (int, float)):
                    self._tb.add_scalar(f"{row['split']}/{key}", value, row["step"])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _tensorboard(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(folder))
