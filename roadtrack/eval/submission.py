"""ROAD++ submission pickles: safe reading and every rule the scorer relies on (ROADPP.md §4).

    {label_type: {video: [tube, ...]}},
    tube = {'label_id': int, 'score': float, 'frames': (n,) 1-based, 'boxes': (n, 4) x1 y1 x2 y2
            in 840x600 pixels, optionally 'scores': (n,) per-frame scores}

:func:`check_submission` returns every problem as one line; nothing stops at the first.
"""
from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..labels import LABEL_TYPES, LabelSpace
from .safe_pickle import read_pickle


def load_pickle(path: str | Path) -> object:
    """A submission (or frame detections) pickle, or a zip holding one; see :mod:`.safe_pickle`."""
    return read_pickle(path)[0]


def _is_int(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _numeric_array(value, ndim: int) -> np.ndarray | None:
    """A float64 array of ``ndim`` dimensions, or None when ragged, non-numeric or mis-shaped."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        return None
    if ndim == 2 and array.size == 0:
        array = array.reshape(0, 4)
    return array if array.ndim == ndim else None


def check_tube(tube, num_classes: int, size: tuple[int, int], require_contiguous: bool = True
               ) -> list[str]:
    """Problems of one tube (empty list when valid)."""
    if not isinstance(tube, dict):
        return [f"is a {type(tube).__name__}, not a dict"]
    problems = [f"lacks key {k!r}" for k in ("label_id", "score", "frames", "boxes")
                if k not in tube]
    if problems:
        return problems
    label, score = tube["label_id"], tube["score"]
    if not _is_int(label):
        problems.append(f"label_id {label!r} is not an integer")
    elif not 0 <= int(label) < num_classes:
        problems.append(f"label_id {int(label)} outside 0..{num_classes - 1}")
    if not isinstance(score, (numbers.Real, np.floating, np.integer)) or isinstance(score, bool):
        problems.append(f"score {score!r} is not a number")
    elif not np.isfinite(float(score)):
        problems.append(f"score {score} is not finite")
    frames = _numeric_array(tube["frames"], 1)
    boxes = _numeric_array(tube["boxes"], 2)
    if frames is None:
        problems.append("frames is not a 1-D numeric array")
    elif len(frames) == 0:
        problems.append("has no frames")
    elif not (np.isfinite(frames).all() and (frames == np.round(frames)).all()):
        problems.append("frames are not whole numbers")
    else:
        if frames.min() < 1:
            problems.append(f"frame {int(frames.min())} is not 1-based")
        steps = np.diff(frames)
        if (steps <= 0).any():
            problems.append("frames are not sorted and unique")
        elif require_contiguous and (steps != 1).any():
            at = int(np.flatnonzero(steps != 1)[0])
            problems.append(f"frames are not contiguous (gap after frame {int(frames[at])})")
    if boxes is None or boxes.shape[-1] != 4:
        problems.append("boxes is not an (n, 4) numeric array")
    else:
        if frames is not None and len(frames) != len(boxes):
            problems.append(f"{len(boxes)} boxes for {len(frames)} frames")
        if not np.isfinite(boxes).all():
            problems.append("boxes hold NaN or infinite values")
        else:
            width, height = size
            if ((boxes[:, 0] >= boxes[:, 2]) | (boxes[:, 1] >= boxes[:, 3])).any():
                problems.append("boxes without x1 < x2 and y1 < y2")
            if ((boxes[:, :2] < 0).any() or (boxes[:, 2] > width).any()
                    or (boxes[:, 3] > height).any()):
                problems.append(f"boxes outside the {width}x{height} frame")
    if "scores" in tube:
        per_frame = _numeric_array(tube["scores"], 1)
        if per_frame is None:
            problems.append("scores is not a 1-D numeric array")
        elif not np.isfinite(per_frame).all():
            problems.append("scores hold NaN or infinite values")
        elif frames is not None and len(per_frame) != len(frames):
            problems.append(f"{len(per_frame)} per-frame scores for {len(frames)} frames")
    return problems


def screen_tubes(tubes, num_classes: int, size: tuple[int, int],
                 require_contiguous: bool = True) -> list[int]:
    """Indices of the tubes that break a rule of :func:`check_tube`, found in bulk.

    A fast screen over all tubes of a video at once; :func:`check_tube` then words the
    problems of the (few) tubes it returns.
    """
    suspect = []
    kept, frames, boxes, per_frame = [], [], [], []
    for i, tube in enumerate(tubes):
        try:
            label, score = tube["label_id"], tube["score"]
            f = np.asarray(tube["frames"], dtype=np.float64)
            b = np.asarray(tube["boxes"], dtype=np.float64)
            p = np.asarray(tube["scores"], dtype=np.float64) if "scores" in tube else f
            ok = (_is_int(label) and 0 <= label < num_classes and not isinstance(score, bool)
                  and isinstance(score, (numbers.Real, np.floating, np.integer))
                  and np.isfinite(float(score)) and f.ndim == 1 and 0 < len(f) == len(b)
                  and b.ndim == 2 and b.shape[1] == 4 and p.shape == f.shape)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError):
            # a type or shape problem: check_tube words it
            ok = False
        if not ok:
            suspect.append(i)
            continue
        kept.append(i)
        frames.append(f)
        boxes.append(b)
        per_frame.append(p)
    if kept:
        lengths = np.array([len(f) for f in frames])
        seg = np.repeat(np.arange(len(kept)), lengths)
        f, b, p = np.concatenate(frames), np.concatenate(boxes), np.concatenate(per_frame)
        width, height = size
        with np.errstate(invalid="ignore"):
            bad = (~np.isfinite(f) | (f != np.round(f)) | (f < 1) | ~np.isfinite(p)
                   | ~np.isfinite(b).all(axis=1) | (b[:, 0] >= b[:, 2]) | (b[:, 1] >= b[:, 3])
                   | (b[:, :2] < 0).any(axis=1) | (b[:, 2] > width) | (b[:, 3] > height))
            steps = np.diff(f)
            bad_step = (steps != 1) if require_contiguous else (steps <= 0)
        bad_step &= seg[1:] == seg[:-1]
        flagged = np.bincount(seg, weights=bad, minlength=len(kept)) > 0
        flagged[seg[1:][bad_step]] = True
        suspect += [kept[j] for j in np.flatnonzero(flagged)]
    return sorted(suspect)


def check_submission(submission, videos: list[str], labels: LabelSpace,
                     require_contiguous: bool = True) -> tuple[list[str], list[str]]:
    """All problems (failures) and warnings of a submission for ``videos``."""
    problems: list[str] = []
    warnings: list[str] = []
    if not isinstance(submission, dict):
        return [f"top level is a {type(submission).__name__}, not a dict of label types"], []
    unknown = [k for k in submission if k not in LABEL_TYPES]
    problems += [f"unknown label type {k!r} (expected {', '.join(LABEL_TYPES)})" for k in unknown]
    present = [t for t in LABEL_TYPES if t in submission]
    if not present:
        problems.append("no label type present (expected agent and/or triplet)")
    size = labels.eval_size
    wanted = set(videos)
    for label_type in present:
        per_video = submission[label_type]
        if not isinstance(per_video, dict):
            problems.append(f"{label_type}: is a {type(per_video).__name__}, not a dict of videos")
            continue
        missing = [v for v in videos if v not in per_video]
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            problems.append(f"{label_type}: {len(missing)} videos missing: {shown}")
        extra = [v for v in per_video if v not in wanted]
        if extra:
            warnings.append(f"{label_type}: {len(extra)} videos not evaluated (not in the "
                            f"annotation/list): {', '.join(map(str, extra[:5]))}")
        num_classes = labels.num_classes(label_type)
        for video in videos:
            tubes = per_video.get(video, [])
            if not isinstance(tubes, (list, tuple)):
                problems.append(f"{label_type}/{video}: is a {type(tubes).__name__}, "
                                "not a list of tubes")
                continue
            for i in screen_tubes(tubes, num_classes, size, require_contiguous):
                problems += [f"{label_type}/{video} tube {i}: {p}"
                             for p in check_tube(tubes[i], num_classes, size, require_contiguous)]
    return problems, warnings


def require_valid(submission, videos: list[str], labels: LabelSpace, path: str | Path,
                  require_contiguous: bool = True) -> None:
    """Raise one UserError listing every problem (first line names the file and the count)."""
    problems, _ = check_submission(submission, videos, labels, require_contiguous)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise UserError(f"invalid submission, {len(problems)} problems "
                        f"(run `roadtrack validate`):\n{lines}", path)
