"""ROAD++ submissions (ROADPP.md §4): built from a run's events, written, and checked against
every rule the official scorer relies on, by consequence.

    {label_type: {video: [tube, ...]}},
    tube = {'label_id': int, 'score': float, 'frames': (n,) 1-based, 'boxes': (n, 4) x1 y1 x2 y2
            in 840x600 pixels, optionally 'scores': (n,) per-frame scores}

:func:`build_submission` turns ``events/<video>.json`` artifacts into one (for agent, action,
loc, duplex and triplet; 'scores' (n,) float32, 'boxes' float32, 'frames' int32 contiguous;
every video asked for present, an empty list where nothing was found).

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

import functools
import numbers
import pickle
import reprlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..labels import EVAL_SIZES, LABEL_TYPES, LabelSpace
from .artifacts import load_events
from .atomic import atomic_path
from .runs import EVENTS, finished_videos
from .safe_pickle import shown

FAILS, MISSCORED, SUSPICIOUS = "fails", "misscored", "suspicious"
MAX_FRAME = 2 ** 31  # frame numbers beyond this are no video's (and would overflow the keys)


@dataclass
class TubeSet:
    """Tubes of one label type pooled over videos, in the official pooled order."""

    video: list[int] = field(default_factory=list)  # index into the evaluated video list
    label: list[int] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # (n,) int, sorted
    boxes: list[np.ndarray] = field(default_factory=list)  # (n, 4) evaluation pixels

    def add(self, video: int, label: int, score: float, frames, boxes) -> None:
        self.video.append(video)
        self.label.append(int(label))
        self.score.append(float(score))
        self.frames.append(np.asarray(frames, dtype=np.int64).reshape(-1))
        self.boxes.append(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))

    def __len__(self) -> int:
        return len(self.label)


MIN_SIDE = 0.5
"""Boxes get at least this width and height (evaluation pixels): the scorer needs x1 < x2."""


def ordered_boxes(boxes: np.ndarray, eval_size: tuple[int, int]) -> np.ndarray:
    """(n, 4) boxes with x1 < x2 and y1 < y2, inside the evaluation frame."""
    xs, ys = np.sort(boxes[:, [0, 2]], axis=1), np.sort(boxes[:, [1, 3]], axis=1)
    out = np.empty_like(boxes)
    for lo_hi, limit, cols in ((xs, eval_size[0], (0, 2)), (ys, eval_size[1], (1, 3))):
        lo = np.clip(lo_hi[:, 0], 0, limit - MIN_SIDE)
        hi = np.clip(np.maximum(lo_hi[:, 1], lo + MIN_SIDE), MIN_SIDE, limit)
        out[:, cols[0]], out[:, cols[1]] = lo, hi
    return out


def submission_tubes(events: dict, label_type: str, eval_size=EVAL_SIZES["road_waymo"]) -> list:
    """The tubes of one events document and label type, in evaluation pixels."""
    sx, sy = eval_size[0] / events["width"], eval_size[1] / events["height"]
    tubes = []
    for tube in events["tubes"].get(label_type, []):
        boxes = np.asarray(tube["boxes"], dtype=np.float64).reshape(-1, 4) * [sx, sy, sx, sy]
        boxes = ordered_boxes(boxes, eval_size)
        tubes.append({"label_id": int(tube["label_id"]), "score": float(tube["score"]),
                      "scores": np.asarray(tube["scores"], dtype=np.float32),
                      "boxes": boxes.astype(np.float32),
                      "frames": np.asarray(tube["frames"], dtype=np.int32)})
    return tubes


def build_submission(run: str | Path, videos: list[str] | None = None) -> dict:
    """The submission dict for ``videos`` (default: every video with events in ``run``)."""
    run = Path(run)
    available = finished_videos(run, EVENTS)
    videos = videos if videos is not None else available
    if not videos:
        raise UserError("run has no events/<video>.json: run the pipeline first", run)
    missing = [v for v in videos if v not in available]
    if missing:
        raise UserError(f"no events for {len(missing)} video(s), e.g. {missing[0]}: "
                        "run the pipeline on them first", run)
    out: dict[str, dict[str, list]] = {t: {} for t in LABEL_TYPES}
    for video in videos:
        events = load_events(run, video)
        for label_type in LABEL_TYPES:
            out[label_type][video] = submission_tubes(events, label_type)
    return out


def write_submission(submission: dict, path: str | Path, zipped: bool = False) -> Path:
    """Pickle atomically; with ``zipped`` also write ``<path>.zip`` holding it (for eval.ai)."""
    path = Path(path)
    data = pickle.dumps(submission, protocol=4)
    with atomic_path(path, suffix=path.suffix) as tmp:
        tmp.write_bytes(data)
    if zipped:
        zip_path = path.with_suffix(path.suffix + ".zip")
        with atomic_path(zip_path, suffix=".zip") as tmp, \
                zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(path.name, data)
        return zip_path
    return path


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


_FLOATS = (float, np.float64, np.float32)  # the usual scores, checked without the ABC


def _real_number(value) -> float | None:
    """``value`` as a float when it is a real number (not a bool), else None."""
    if type(value) in _FLOATS:
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:  # what `-score` also accepts
        value = value[()]
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        return None
    try:
        return float(value)
    except OverflowError:  # a Python int beyond float64
        return None


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
        # the stubs give numbers.Number no __complex__; complex() takes every Number here
        value = complex(label)  # type: ignore[arg-type]
        if value.imag == 0 and value.real.is_integer() and 0 <= value.real < num_classes:
            return int(value.real)
    return None  # a string, None, NaN, 1.5, a list: equal to no class


def _numeric(value, ndim: int) -> np.ndarray | None:
    """A float64 array of ``ndim`` dimensions ((0, 4) for no boxes), or None when the value is
    ragged, not numbers, or mis-shaped."""
    if type(value) is not np.ndarray:
        try:
            value = np.asarray(value)
        except (ValueError, TypeError, OverflowError):
            return None
    if value.dtype.char == "d":
        array = value
    elif value.dtype.kind in "iuf":
        array = value.astype(np.float64)
    else:
        return None
    if ndim == 2 and array.size == 0:
        array = array.reshape(0, 4)
    if array.ndim != ndim or (ndim == 2 and array.shape[1] != 4):
        return None
    return array


class _Tubes:
    """Findings and scored tubes of one label type: types tube by tube (:meth:`tube`), values
    of all of them at once (:meth:`values`)."""

    def __init__(self, label_type: str, videos: list[str], num_classes: int,
                 size: tuple[int, int], contiguous: bool, numf: dict[str, int] | None):
        self.label_type, self.videos, self.num_classes = label_type, videos, num_classes
        self.size, self.contiguous = size, contiguous
        self.numf = [numf.get(v) if numf else None for v in videos]
        self.found: list[tuple[tuple[int, int], Finding]] = []
        self.video: list[int] = []  # per kept tube: video index, tube index, ...
        self.index: list[int] = []
        self.label: list[int] = []
        self.score: list[float] = []
        self.frames: list[np.ndarray] = []
        self.boxes: list[np.ndarray] = []
        self.per_frame: list[tuple[int, np.ndarray]] = []  # (kept position, scores)

    def add(self, vi: int, i: int, severity: str, kind: str, detail: str) -> None:
        where = f"{self.label_type}/{self.videos[vi]} tube {i}"
        self.found.append(((vi, i), Finding(severity, kind, where, detail)))

    def tube(self, vi: int, i: int, tube) -> None:
        """Structure and types of one tube (values are checked in bulk by :meth:`values`)."""
        if not isinstance(tube, dict):
            return self.add(vi, i, FAILS, "not a dict", f"is a {type(tube).__name__}, not a dict")
        if "label_id" not in tube:
            return self.add(vi, i, FAILS, "key", "lacks key 'label_id'")
        label = tube["label_id"]
        try:
            cls = class_of(label, self.num_classes)
        except ValueError as err:
            return self.add(vi, i, FAILS, "label_id", str(err))
        if cls is None:
            return self.add(vi, i, MISSCORED, "label_id",
                            f"label_id {reprlib.repr(label)} is no class "
                            f"0..{self.num_classes - 1}: the scorer ignores the tube")
        if not (type(label) is int or isinstance(label, np.integer)):
            self.add(vi, i, SUSPICIOUS, "label_id type",
                     f"label_id {reprlib.repr(label)} is not an integer (scored as class {cls})")
        missing = [k for k in ("score", "frames", "boxes") if k not in tube]
        for key in missing:
            self.add(vi, i, FAILS, "key", f"lacks key {key!r}")
        if missing:
            return None
        score = _real_number(tube["score"])
        frames, boxes = _numeric(tube["frames"], 1), _numeric(tube["boxes"], 2)
        failed = score is None or frames is None or boxes is None or len(frames) == 0 \
            or len(frames) != len(boxes)
        if score is None:
            self.add(vi, i, FAILS, "score",
                     f"score {reprlib.repr(tube['score'])} is not a number")
        if frames is None:
            self.add(vi, i, FAILS, "frames", "frames is not a 1-D numeric array")
        elif len(frames) == 0:
            self.add(vi, i, FAILS, "frames", "has no frames")
        if boxes is None:
            self.add(vi, i, FAILS, "boxes", "boxes is not an (n, 4) numeric array")
        elif frames is not None and len(frames) != len(boxes):
            self.add(vi, i, FAILS, "boxes", f"{len(boxes)} boxes for {len(frames)} frames")
        if "scores" in tube and frames is not None:
            per_frame = _numeric(tube["scores"], 1)
            problem = None
            if per_frame is None:
                problem = "scores (per frame) is not a 1-D numeric array"
            elif len(per_frame) != len(frames):
                problem = f"{len(per_frame)} per-frame scores for {len(frames)} frames"
            elif not failed:
                self.per_frame.append((len(self.index), per_frame))  # finite? see values()
            if problem:
                self.add(vi, i, SUSPICIOUS, "per-frame scores",
                         f"{problem} (the scorer does not use them)")
        if failed:
            return None
        assert score is not None and frames is not None and boxes is not None  # else failed
        if not np.isfinite(score):
            self.add(vi, i, MISSCORED, "score", f"score {score} is not finite (NaN ranks last)")
        self.video.append(vi)
        self.index.append(i)
        self.label.append(cls)
        self.score.append(score)
        self.frames.append(frames)
        self.boxes.append(boxes)

    def values(self) -> None:
        """Frame and box values of the kept tubes, all at once; drops the tubes that fail."""
        if not self.index:
            return
        lengths = np.array([len(f) for f in self.frames])
        num = len(lengths)
        starts = np.cumsum(lengths) - lengths
        seg = np.repeat(np.arange(num), lengths)  # (R,) tube of each row
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
            return np.bincount(seg, weights=rows, minlength=num)

        def per_step(bad: np.ndarray) -> np.ndarray:  # (R-1,) bool -> (T,) count
            return np.bincount(seg[1:][bad & same], minlength=num)

        not_whole, not_finite = per_tube(~whole), per_tube(~finite)
        unsorted = per_step(~(steps > 0))
        gaps = per_step(steps != 1) if self.contiguous else np.zeros(num)
        first, last = f[starts], f[starts + lengths - 1]
        numf = np.array([self.numf[v] or np.inf for v in self.video])  # (T,)
        counts = {k: per_tube(v & finite) for k, v in
                  (("flipped", flipped), ("off", off), ("outside", outside & ~off))}
        nan_scores = np.zeros(num, dtype=bool)
        if self.per_frame:
            at, arrays = zip(*self.per_frame, strict=True)
            rows = np.repeat(at, [len(a) for a in arrays])  # (P,) kept tube of each score
            nan_scores = np.bincount(rows, weights=~np.isfinite(np.concatenate(arrays)),
                                     minlength=num) > 0
        flagged = (not_whole + not_finite + unsorted + gaps + sum(counts.values()) > 0) \
            | (first < 1) | (last > numf) | nan_scores
        dropped = set()
        for t in np.flatnonzero(flagged):
            n = int(lengths[t])
            add = functools.partial(self.add, self.video[t], self.index[t])
            if nan_scores[t]:
                add(SUSPICIOUS, "per-frame scores", "per-frame scores hold NaN or infinite "
                    "values (the scorer does not use them)")
            if not_whole[t]:
                add(FAILS, "frames", "frames are not whole numbers (or beyond 2^31)")
            elif unsorted[t]:
                add(FAILS, "frames", "frames are not sorted and unique")
            else:
                if first[t] < 1:
                    add(MISSCORED, "frames before 1", f"frame {int(first[t])} is not 1-based "
                        "(the scorer compares frame numbers as given)")
                if last[t] > numf[t]:
                    # The scorer compares as given: frames past the end never meet the ground
                    # truth but lengthen the temporal union, lowering the ST-IoU silently.
                    add(MISSCORED, "frames past the end", f"frame {int(last[t])} is past the "
                        f"video's last frame {int(numf[t])} (it lowers the tube's temporal IoU)")
                if gaps[t]:
                    rows = self.frames[t]
                    at = int(rows[np.flatnonzero(np.diff(rows) != 1)[0]])
                    add(MISSCORED, "gaps", f"frames are not contiguous (gap after frame {at}): "
                        "the official scorer compares boxes by position, misaligned")
            if not_finite[t]:
                add(FAILS, "boxes", "boxes hold NaN or infinite values")
            if not_whole[t] or unsorted[t] or not_finite[t]:
                dropped.add(t)
                continue
            if counts["flipped"][t]:
                add(MISSCORED, "flipped boxes", f"{int(counts['flipped'][t])} of {n} boxes "
                    "without x1 < x2 and y1 < y2 (they overlap nothing)")
            if counts["outside"][t]:
                add(SUSPICIOUS, "boxes partly outside", f"{int(counts['outside'][t])} of {n} "
                    f"boxes partly outside the {width}x{height} frame (scored unclipped, as "
                    "the official scorer does)")
            if counts["off"][t]:
                add(SUSPICIOUS, "boxes wholly outside", f"{int(counts['off'][t])} of {n} boxes "
                    f"wholly outside the {width}x{height} frame (they overlap nothing)")
        if dropped:
            keep = [t for t in range(num) if t not in dropped]
            for name in ("video", "index", "label", "score", "frames", "boxes"):
                values = getattr(self, name)
                setattr(self, name, [values[t] for t in keep])

    def tube_set(self) -> TubeSet:
        """The kept tubes, pooled in the official order (videos, then list order)."""
        return TubeSet(video=self.video, label=self.label, score=self.score,
                       frames=[f.astype(np.int64) for f in self.frames], boxes=self.boxes)


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
            add(SUSPICIOUS, "unknown label type", "", f"unknown label type "
                f"{reprlib.repr(key)}, not scored (expected {', '.join(LABEL_TYPES)})")
    present = [t for t in LABEL_TYPES if t in submission]
    if not present:
        add(FAILS, "top level", "", "no label type present (expected agent and/or triplet)")
    wanted = set(videos)
    for label_type in present:
        per_video = submission[label_type]
        if not isinstance(per_video, dict):
            add(FAILS, "videos", label_type, f"is a {type(per_video).__name__}, not a dict of "
                "videos")
            continue
        missing = [v for v in videos if v not in per_video]
        if missing:
            listed = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            add(FAILS, "videos", label_type, f"{len(missing)} videos missing: {listed}")
        extra = [v for v in per_video if v not in wanted]
        if extra:
            add(SUSPICIOUS, "extra videos", label_type, f"{len(extra)} videos not evaluated (not "
                f"in the annotation/list): {', '.join(map(shown, extra[:5]))}")
        check = _Tubes(label_type, videos, labels.num_classes(label_type), labels.eval_size,
                       require_contiguous, numf)
        for vi, video in enumerate(videos):
            tubes = per_video.get(video, [])
            if not isinstance(tubes, (list, tuple)):
                add(FAILS, "tubes", f"{label_type}/{video}", f"is a {type(tubes).__name__}, "
                    "not a list of tubes")
                continue
            for i, tube in enumerate(tubes):
                check.tube(vi, i, tube)
        check.values()
        check.found.sort(key=lambda item: item[0])  # videos, then tubes, in order
        out.findings += [f for _, f in check.found]
        out.tubes[label_type] = check.tube_set()
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
