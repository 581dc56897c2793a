"""MOTChallenge text files: ``frame, id, left, top, width, height, score, x, y, z`` per line.

Detections (``det.txt``) carry id -1; ground truth (``gt.txt``) carries class and visibility in
columns 8 and 9 from MOT16 on. Frames are 1-based.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import UserError
from .atomic import write_text_atomic


@dataclass
class MotTable:
    """Rows of a MOTChallenge file, sorted by frame (stable)."""

    frames: np.ndarray  # (N,) int64, 1-based
    ids: np.ndarray  # (N,) int64; -1 in detection files
    boxes_xywh: np.ndarray  # (N, 4) float64 left top width height
    scores: np.ndarray  # (N,) float64 (column 7; the 'consider' flag in MOT16+ gt files)
    extra: np.ndarray  # (N, K) float64: the columns after the score (class, visibility, ...)

    def __len__(self) -> int:
        return len(self.frames)

    @cached_property
    def boxes_xyxy(self) -> np.ndarray:
        b = self.boxes_xywh
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)

    def select(self, mask: np.ndarray) -> "MotTable":
        return MotTable(self.frames[mask], self.ids[mask], self.boxes_xywh[mask],
                        self.scores[mask], self.extra[mask])


def read_mot(path: str | Path, drop_invalid: bool = True) -> MotTable:
    """Read a MOTChallenge file.

    At least 6 columns are needed (a 6-column file gets score 1). Rows with non-finite values or
    boxes without area are dropped with one warning giving their count (``drop_invalid``), or
    raise. An empty or unparsable file raises UserError naming the file and the line.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read MOT file: {getattr(err, 'strerror', None) or err}", path) from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise UserError("MOT file is empty", path)
    sep = "," if "," in lines[0] else None
    widths = {len(ln.split(sep)) for ln in lines}
    if min(widths) < 6:
        bad = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.strip()
                   and len(ln.split(sep)) < 6)
        raise UserError(f"line {bad}: fewer than 6 columns (frame,id,left,top,width,height)", path)
    ncols = min(widths)
    try:
        table = np.loadtxt(io.StringIO("\n".join(lines)), delimiter=sep, ndmin=2,
                           usecols=range(ncols), dtype=np.float64)
    except ValueError as err:
        raise UserError(f"not numeric MOT data ({err})", path) from None
    valid = np.isfinite(table).all(axis=1) & (table[:, 4] > 0) & (table[:, 5] > 0)
    if not valid.all():
        first = int(np.flatnonzero(~valid)[0]) + 1
        if not drop_invalid:
            raise UserError(f"line {first}: non-finite value or box without area", path)
        warnings.warn(f"{path}: skipped {int((~valid).sum())} rows with non-finite values or "
                      f"boxes without area (first at line {first})", stacklevel=2)
        table = table[valid]
    order = np.argsort(table[:, 0], kind="stable")
    table = table[order]
    scores = table[:, 6] if ncols > 6 else np.ones(len(table))
    return MotTable(frames=table[:, 0].astype(np.int64), ids=table[:, 1].astype(np.int64),
                    boxes_xywh=table[:, 2:6].copy(), scores=scores.copy(),
                    extra=table[:, 7:].copy() if ncols > 7 else np.zeros((len(table), 0)))


def format_mot(frames: np.ndarray, ids: np.ndarray, boxes_xywh: np.ndarray,
               scores: np.ndarray | None = None) -> str:
    """MOTChallenge text for tracks: ``frame,id,left,top,width,height,score,-1,-1,-1``."""
    n = len(frames)
    scores = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64)
    rows = np.column_stack([frames, ids, np.asarray(boxes_xywh).reshape(-1, 4), scores])
    buf = io.StringIO()
    np.savetxt(buf, rows, fmt=["%d", "%d", "%.2f", "%.2f", "%.2f", "%.2f", "%.4f"], delimiter=",")
    return "".join(line + ",-1,-1,-1\n" for line in buf.getvalue().splitlines())


def write_mot(path: str | Path, frames: np.ndarray, ids: np.ndarray, boxes_xywh: np.ndarray,
              scores: np.ndarray | None = None) -> None:
    """Write tracks atomically in MOTChallenge format."""
    write_text_atomic(path, format_mot(frames, ids, boxes_xywh, scores))
