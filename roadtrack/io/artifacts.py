"""Per-video stage artifacts in a run folder, written atomically (the folder layout:
``roadtrack.io.runs``).

``detections/<video>.npz`` (detect stage)
    frames (N,) int32, 1-based; boxes (N, 4) float32 x1 y1 x2 y2 in source pixels;
    scores (N,) float32 agentness; agent (N, A), action (N, C), loc (N, L) float32 probabilities
    in the run's label space; embeddings (N, D) float16 for association (D may be 0);
    width, height (int), fps (float).
``tracks/<video>.npz`` (track stage)
    the detection fields of the kept rows plus track_ids (N,) int32 and det_index (N,) int64,
    the row of ``detections/<video>.npz`` each track row came from.
``events/<video>.json`` (event stage)
    per track its agent label and score, and tubes per label type (see ``roadtrack.events``).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..labels import BOX_TYPES
from .atomic import atomic_path, write_json_atomic
from .runs import DETECTIONS, EVENTS, TRACKS, artifact_path, finished_videos

__all__ = ["CAMERA_MOTION", "DETECTION_FIELDS", "STAGE_FIELDS", "TRACK_FIELDS", "artifact_path",
           "finished_videos", "load_arrays", "load_events", "load_stage", "save_arrays",
           "save_events", "save_stage"]

DETECTION_FIELDS = ("frames", "boxes", "scores", *BOX_TYPES, "embeddings", "width", "height",
                    "fps")
TRACK_FIELDS = DETECTION_FIELDS + ("track_ids", "det_index")
CAMERA_MOTION = "camera_motion"
"""Optional tracks field: (F, 2, 3) affine per frame, frame n-1's pixels to frame n's."""

STAGE_FIELDS = {DETECTIONS: DETECTION_FIELDS, TRACKS: TRACK_FIELDS}


def save_arrays(path: str | Path, fields: tuple[str, ...] | None = None, **arrays) -> None:
    """Write named arrays to an .npz atomically; ``fields`` lists the ones that must be present."""
    missing = [f for f in (fields or ()) if f not in arrays]
    if missing:
        raise ValueError(f"artifact {path} lacks fields {missing}")
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            # mypy matches the unpacked dict against savez's allow_pickle: bool as well
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]


def load_arrays(path: str | Path, fields: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Read an .npz artifact whole; a missing, corrupt or incomplete file raises UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError("no such artifact", path)
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise UserError(f"corrupt artifact ({err})", path) from None
    missing = [f for f in (fields or ()) if f not in out]
    if missing:
        raise UserError(f"artifact lacks fields {', '.join(missing)}", path)
    n = len(out["frames"]) if "frames" in out else None
    for key, value in out.items():
        if n is not None and value.ndim >= 1 and key not in ("width", "height", "fps",
                                                              CAMERA_MOTION) \
                and len(value) != n:
            raise UserError(f"field {key!r} has {len(value)} rows, frames has {n}", path)
    return out


def save_stage(run: str | Path, stage: str, video: str, **arrays) -> Path:
    """Write one video's detections or tracks into the run folder atomically."""
    path = artifact_path(run, stage, video)
    save_arrays(path, STAGE_FIELDS[stage], **arrays)
    return path


def load_stage(run: str | Path, stage: str, video: str) -> dict[str, np.ndarray]:
    return load_arrays(artifact_path(run, stage, video), STAGE_FIELDS[stage])


def save_events(run: str | Path, video: str, events: dict) -> Path:
    path = artifact_path(run, EVENTS, video)
    write_json_atomic(path, events)
    return path


def load_events(run: str | Path, video: str) -> dict:
    path = artifact_path(run, EVENTS, video)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError("no such artifact", path) from None
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"corrupt artifact ({err})", path) from None

