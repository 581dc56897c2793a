"""ROAD++ submissions (ROADPP.md §4): every rule the official scorer relies on, by consequence.

    {label_type: {video: [tube, ...]}},
    tube = {'label_id': int, 'score': float, 'frames': (n,) 1-based, 'boxes': (n, 4) x1 y1 x2 y2
            in 840x600 pixels, optionally 'scores': (n,) per-frame scores}

Each finding has a severity, set by what the official scorer does with it:

``FAILS``       the scorer raises (or does what roadtrack does not reproduce): ``eval road``
                refuses, ``validate`` fails;
``MISSCORED``   the scorer gives a number, but not for what the team meant (a tube it ignores,
                boxes it misaligns): ``validate`` fails, ``eval road`` scores as the official
                code does and warns;
``SUSPICIOUS``  scored as meant, but odd (boxes partly outside the frame): a warning.

The official scorer files a tube under class ``c`` when ``tube['label_id'] == c`` and reads
nothing else of a tube no class claims; it ranks tubes by ``score`` (numpy's argsort: NaN last)
and never reads the per-frame ``scores``; it compares boxes as given, unclipped.
"""
from __future__ import annotations

import numbers
import reprlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..labels import LABEL_TYPES, LabelSpace
from .safe_pickle import read_pickle
from .video_map import TubeSet

FAILS, MISSCORED, SUSPICIOUS = "fails", "misscored", "suspicious"
MAX_FRAME = 2 ** 31  # frame numbers beyond this are no video's (and would overflow the keys)


@dataclass
class Finding:
    severity: str
    kind: str  # what is wrong, without values: findings of one kind are summarised together
    where: str  # "agent/v1 tube 3", "agent", or "" for the top level
    detail: str  # what is wrong with this one, and what the scorer does about it

    def line(self) -> str:
        return f"{self.where}: {self.detail}" if self.where else self.detail


@dataclass
class SubmissionCheck:
    """Every finding, and the tubes the official scorer compares (per label type, pooled)."""

    findings: list[Finding] = field(default_factory=list)
    tubes: dict[str, TubeSet] = field(default_factory=dict)

    def of(self, *severities: str) -> list[Finding]:
        return [f for f in self.findings if f.severity in severities]

    @property
    def problems(self) -> list[Finding]:
        """What ``validate`` fails on: the scorer fails or mis-scores."""
        return self.of(FAILS, MISSCORED)


def load_pickle(path: str | Path) -> object:
    """A submission (or frame detections) pickle, or a zip holding one; see :mod:`.safe_pickle`."""
    return read_pickle(path)[0]


def _real_scalar(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def class_of(label, num_classes: int) -> int | None:
    """The class the official scorer files a tube under (``label == c``), None when no class.

    Raises ValueError for a label whose comparison raises there (an array of several values).
    """
    if type(label) is int or isinstance(label, np.integer):
        return int(label) if 0 <= label < num_classes else None
    if isinstance(label, np.ndarray):
        if label.size != 1:  # `label == c` is an array whose truth value raises
            raise ValueError(f"label_id is an array of {label.size} values")
        label = label.item()
    if isinstance(label, (numbers.Number, np.bool_)):
        value = complex(label)
        if value.imag == 0 and value.real.is_integer() and 0 <= value.real < num_classes:
            return int(value.real)
    return None  # a string, None, NaN, 1.5, a list: equal to no class


def _numeric(value, ndim: int) -> np.ndarray | None:
    """A float64 array of ``ndim`` dimensions ((0, 4) for no boxes), or None when the value is
    ragged, not numbers, or mis-shaped."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if array.dtype.kind not in "iuf":
        return None
    array = array.astype(np.float64, copy=False)
    if ndim == 2 and array.size == 0:
        array = array.reshape(0, 4)
    if array.ndim != ndim or (ndim == 2 and array.shape[1] != 4):
        return None
    return array


def _per_frame_scores(value, count: int) -> str | None:
    scores = _numeric(value, 1)
    if scores is None:
        return "scores (per frame) is not a 1-D numeric array"
    if len(scores) != count:
        return f"{len(scores)} per-frame scores for {count} frames"
    if not np.isfinite(scores).all():
        return "per-frame scores hold NaN or infinite values"
    return None


class _Video:
    """Findings and scored tubes of one video's tube list."""

    def __init__(self, where: str, num_classes: int, size: tuple[int, int], contiguous: bool,
                 numf: int | None):
        self.where, self.num_classes, self.size = where, num_classes, size
        self.contiguous, self.numf = contiguous, numf
        self.found: list[tuple[int, Finding]] = []
        self.index: list[int] = []  # tube index of each kept tube
        self.label: list[int] = []
        self.score: list[float] = []
        self.frames: list[np.ndarray] = []
        self.boxes: list[np.ndarray] = []

    def add(self, i: int, severity: str, kind: str, detail: str) -> None:
        self.found.append((i, Finding(severity, kind, f"{self.where} tube {i}", detail)))

    def tube(self, i: int, tube) -> None:
        """Structure and types of one tube (values are checked in bulk by :meth:`values`)."""
        if not isinstance(tube, dict):
            return self.add(i, FAILS, "not a dict", f"is a {type(tube).__name__}, not a dict")
        if "label_id" not in tube:
            return self.add(i, FAILS, "key", "lacks key 'label_id'")
        label = tube["label_id"]
        try:
            cls = class_of(label, self.num_classes)
        except ValueError as err:
            return self.add(i, FAILS, "label_id", str(err))
        if cls is None:
            return self.add(i, MISSCORED, "label_id",
                            f"label_id {reprlib.repr(label)} is no class 0..{self.num_classes - 1}: the "
                            "scorer ignores the tube")
        if not (type(label) is int or isinstance(label, np.integer)):
            self.add(i, SUSPICIOUS, "label_id type",
                     f"label_id {reprlib.repr(label)} is not an integer (scored as class {cls})")
        missing = [k for k in ("score", "frames", "boxes") if k not in tube]
        for key in missing:
            self.add(i, FAILS, "key", f"lacks key {key!r}")
        if missing:
            return None
        score = tube["score"]
        if isinstance(score, np.ndarray) and score.ndim == 0:
            score = score[()]
        failed = False
        try:
            value = float(score) if _real_scalar(score) else None
        except OverflowError:  # a Python int beyond float64
            value = None
        if value is None:
            failed = True
            self.add(i, FAILS, "score", f"score {reprlib.repr(score)} is not a number")
        frames, boxes = _numeric(tube["frames"], 1), _numeric(tube["boxes"], 2)
        if frames is None:
            failed = True
            self.add(i, FAILS, "frames", "frames is not a 1-D numeric array")
        elif len(frames) == 0:
            failed = True
            self.add(i, FAILS, "frames", "has no frames")
        if boxes is None:
            failed = True
            self.add(i, FAILS, "boxes", "boxes is not an (n, 4) numeric array")
        elif frames is not None and len(frames) != len(boxes):
            failed = True
            self.add(i, FAILS, "boxes", f"{len(boxes)} boxes for {len(frames)} frames")
        if "scores" in tube and frames is not None:
            problem = _per_frame_scores(tube["scores"], len(frames))
            if problem:
                self.add(i, SUSPICIOUS, "per-frame scores",
                         f"{problem} (the scorer does not use them)")
        if failed:
            return None
        if not np.isfinite(value):
            self.add(i, MISSCORED, "score", f"score {value} is not finite (NaN ranks last)")
        self.index.append(i)
        self.label.append(cls)
        self.score.append(value)
        self.frames.append(frames)
        self.boxes.append(boxes)

    def values(self) -> None:
        """Frame and box values of the kept tubes, in bulk; drops tubes that fail."""
        if not self.index:
            return
        lengths = np.array([len(f) for f in self.frames])
        starts = np.cumsum(lengths) - lengths
        seg = np.repeat(np.arange(len(lengths)), lengths)  # (R,) tube of each row
        f, b = np.concatenate(self.frames), np.concatenate(self.boxes)  # (R,), (R, 4)
        width, height = self.size
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(f) & (f == np.round(f)) & (np.abs(f) < MAX_FRAME)
            steps = np.diff(f)
            same = seg[1:] == seg[:-1]
            finite = np.isfinite(b).all(axis=1)
            flipped = (b[:, 0] >= b[:, 2]) | (b[:, 1] >= b[:, 3])
            off = (b[:, 0] >= width) | (b[:, 2] <= 0) | (b[:, 1] >= height) | (b[:, 3] <= 0)
            outside = ((b[:, :2] < 0).any(axis=1) | (b[:, 2] > width) | (b[:, 3] > height))

        def per_tube(rows: np.ndarray) -> np.ndarray:  # (R,) bool -> (T,) count
            return np.bincount(seg, weights=rows, minlength=len(lengths))

        def per_step(bad: np.ndarray) -> np.ndarray:  # (R-1,) bool -> (T,) count
            return np.bincount(seg[1:][bad & same], minlength=len(lengths))

        not_whole = per_tube(~whole)
        unsorted = per_step(~(steps > 0))
        not_finite = per_tube(~finite)
        gaps = per_step(steps != 1) if self.contiguous else np.zeros(len(lengths))
        first = f[starts]
        last = f[starts + lengths - 1]
        counts = {k: per_tube(v & finite) for k, v in
                  (("flipped", flipped), ("off", off), ("outside", outside & ~off))}
        dropped = set()
        for t in np.flatnonzero((not_whole + unsorted + not_finite + gaps
                                 + sum(counts.values()) > 0)
                                | (first < 1) | ((last > self.numf) if self.numf else False)):
            i, n = self.index[t], int(lengths[t])
            if not_whole[t]:
                self.add(i, FAILS, "frames", "frames are not whole numbers (or beyond 2^31)")
            elif unsorted[t]:
                self.add(i, FAILS, "frames", "frames are not sorted and unique")
            else:
                if first[t] < 1:
                    self.add(i, MISSCORED, "frames before 1",
                             f"frame {int(first[t])} is not 1-based (the scorer compares frame "
                             "numbers as given)")
                if self.numf and last[t] > self.numf:
                    # The scorer compares as given: frames past the end never meet the ground
                    # truth but lengthen the temporal union, lowering the ST-IoU silently.
                    self.add(i, MISSCORED, "frames past the end",
                             f"frame {int(last[t])} is past the video's last frame "
                             f"{self.numf} (it lowers the tube's temporal IoU)")
                if gaps[t]:
                    rows = self.frames[t]
                    at = int(rows[np.flatnonzero(np.diff(rows) != 1)[0]])
                    self.add(i, MISSCORED, "gaps",
                             f"frames are not contiguous (gap after frame {at}): the official "
                             "scorer compares boxes by position, misaligned")
            if not_finite[t]:
                self.add(i, FAILS, "boxes", "boxes hold NaN or infinite values")
            if not_whole[t] or unsorted[t] or not_finite[t]:
                dropped.add(t)
                continue
            if counts["flipped"][t]:
                self.add(i, MISSCORED, "flipped boxes",
                         f"{int(counts['flipped'][t])} of {n} boxes without x1 < x2 and y1 < y2 "
                         "(they overlap nothing)")
            if counts["outside"][t]:
                self.add(i, SUSPICIOUS, "boxes partly outside",
                         f"{int(counts['outside'][t])} of {n} boxes partly outside the "
                         f"{width}x{height} frame (scored unclipped, as the official scorer "
                         "does)")
            if counts["off"][t]:
                self.add(i, SUSPICIOUS, "boxes wholly outside",
                         f"{int(counts['off'][t])} of {n} boxes wholly outside the "
                         f"{width}x{height} frame (they overlap nothing)")
        if dropped:
            keep = [t for t in range(len(self.index)) if t not in dropped]
            for name in ("index", "label", "score", "frames", "boxes"):
                values = getattr(self, name)
                setattr(self, name, [values[t] for t in keep])


def check_submission(submission, videos: list[str], labels: LabelSpace,
                     require_contiguous: bool = True,
                     numf: dict[str, int] | None = None) -> SubmissionCheck:
    """Every finding of a submission for ``videos``, and the tubes the scorer compares.

    ``require_contiguous``: the official protocol (gaps are mis-scored); ``numf``: frames per
    video, to find frames past a video's end.
    """
    out = SubmissionCheck()

    def add(severity, kind, where, detail):
        out.findings.append(Finding(severity, kind, where, detail))

    if not isinstance(submission, dict):
        add(FAILS, "top level", "", f"top level is a {type(submission).__name__}, not a dict "
            "of label types")
        return out
    for key in submission:
        if key not in LABEL_TYPES:
            add(SUSPICIOUS, "unknown label type", "", f"unknown label type {key!r}, not scored "
                f"(expected {', '.join(LABEL_TYPES)})")
    present = [t for t in LABEL_TYPES if t in submission]
    if not present:
        add(FAILS, "top level", "", "no label type present (expected agent and/or triplet)")
    size = labels.eval_size
    wanted = set(videos)
    for label_type in present:
        per_video = submission[label_type]
        if not isinstance(per_video, dict):
            add(FAILS, "videos", label_type, f"is a {type(per_video).__name__}, not a dict of "
                "videos")
            continue
        missing = [v for v in videos if v not in per_video]
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            add(FAILS, "videos", label_type, f"{len(missing)} videos missing: {shown}")
        extra = [v for v in per_video if v not in wanted]
        if extra:
            add(SUSPICIOUS, "extra videos", label_type, f"{len(extra)} videos not evaluated (not "
                f"in the annotation/list): {', '.join(map(str, extra[:5]))}")
        pooled = TubeSet()
        for vi, video in enumerate(videos):
            tubes = per_video.get(video, [])
            where = f"{label_type}/{video}"
            if not isinstance(tubes, (list, tuple)):
                add(FAILS, "tubes", where, f"is a {type(tubes).__name__}, not a list of tubes")
                continue
            check = _Video(where, labels.num_classes(label_type), size, require_contiguous,
                           None if numf is None else numf.get(video))
            for i, tube in enumerate(tubes):
                check.tube(i, tube)
            check.values()
            check.found.sort(key=lambda item: item[0])  # tube order
            out.findings += [f for _, f in check.found]
            pooled.extend(vi, check.label, check.score, check.frames, check.boxes)
        out.tubes[label_type] = pooled
    return out


def summarise(findings: list[Finding]) -> list[str]:
    """One line per kind of finding and label type: the first, and how many more there are."""
    groups: dict[tuple, list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.severity, f.kind, f.where.split("/")[0]), []).append(f)
    lines = []
    for group in groups.values():
        more = f"; and {len(group) - 1} more like it" if len(group) > 1 else ""
        lines.append(group[0].line() + more)
    return lines


def require_valid(submission, videos: list[str], labels: LabelSpace, path: str | Path,
                  require_contiguous: bool = True) -> None:
    """Raise one UserError listing every problem (first line names the file and the count)."""
    problems = check_submission(submission, videos, labels, require_contiguous).problems
    if problems:
        lines = "\n".join(f"  {p.line()}" for p in problems)
        raise UserError(f"invalid submission, {len(problems)} problems "
                        f"(run `roadtrack validate`):\n{lines}", path)
