"""The parsed form of a ROAD/ROAD++ annotation (per-video arrays and tubes) and the step that
builds one video's arrays from the fields a parser gathered, shared by every parser so that
they check and convert alike."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..labels import LABEL_TYPES, LabelSpace
from .annotation_checks import (
    Findings,
    bad,
    check_box_coords,
    check_box_range,
    check_label_ids,
    check_types,
    describe,
    show,
)

MAX_FRAMES = 1_000_000
"""Largest ``numf`` read (ROAD's longest video has about 6,000 frames; this is 28 h at 10 fps)."""

BOX_FIELDS_NAMES = ("box", "tube_uid") + tuple(f"{t}_ids" for t in LABEL_TYPES)
"""The fields of a box the reader reads, in this order in a gathered row."""


@dataclass
class Tube:
    """One ground-truth tube: a class and the rows (into the video's box arrays) it covers."""

    label: int
    rows: np.ndarray  # (n,) int, sorted by frame


@dataclass
class VideoAnnotation:
    """All boxes of one video as flat arrays, frames 1-based, labels in the used space."""

    name: str
    split_ids: tuple[str, ...]
    numf: int
    width: int
    height: int
    annotated: np.ndarray  # (numf,) bool: frame n is labelled when annotated[n - 1]
    frames: np.ndarray  # (N,) int32
    boxes: np.ndarray  # (N, 4) float64 x1 y1 x2 y2 normalised to [0, 1] (full JSON precision)
    track_ids: np.ndarray  # (N,) int32 index into uids
    uids: list[str]
    labels: Mapping[str, np.ndarray]  # type -> (N, C) bool multi-hot
    tubes: Mapping[str, list[Tube]] = field(default_factory=dict)

    @property
    def num_boxes(self) -> int:
        return len(self.frames)

    def annotated_frames(self) -> np.ndarray:
        """(K,) 1-based numbers of the frames with ``annotated > 0``."""
        return np.flatnonzero(self.annotated) + 1

    def tube_frames_boxes(self, tube: Tube) -> tuple[np.ndarray, np.ndarray]:
        """(n,) frames and (n, 4) normalised boxes of a tube."""
        return self.frames[tube.rows], self.boxes[tube.rows]


class LabelPairs(Mapping[str, np.ndarray]):
    """Multi-hot labels of N boxes per label type, kept as (box, class) pairs and made dense,
    (N, C) bool, on first access (then kept)."""

    def __init__(self, count: int, pairs: dict[str, tuple[np.ndarray, np.ndarray, int]]):
        self.count = count
        self.pairs = pairs  # type -> (L,) box rows, (L,) classes, number of classes
        self.made: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.made:
            rows, cols, classes = self.pairs[key]
            hot = np.zeros((self.count, classes), dtype=bool)  # (N, C)
            hot[rows, cols] = True
            self.made[key] = hot
        return self.made[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)


class TubeRuns(Mapping[str, list[Tube]]):
    """The tubes of a video per label type, kept as flat arrays and made :class:`Tube` objects
    on first access (then kept)."""

    def __init__(self, runs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                 made: dict[str, list[Tube]] | None = None):
        self.runs = runs  # type -> (T,) labels, (T + 1,) starts into rows, (R,) int rows
        self.made: dict[str, list[Tube]] = dict(made or {})
        self.order = [t for t in LABEL_TYPES if t in self.runs or t in self.made]

    def __getitem__(self, key: str) -> list[Tube]:
        if key not in self.made:
            labels, starts, rows = self.runs[key]
            bounds = starts.tolist()
            self.made[key] = [Tube(label=label, rows=rows[a:b].astype(np.int64)) for label, a, b
                              in zip(labels.tolist(), bounds[:-1], bounds[1:], strict=True)]
        return self.made[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


@dataclass
class Annotation:
    """A whole annotation file: label space and videos by name (``other_splits``: the splits of
    videos a subset load left out)."""

    path: Path
    labels: LabelSpace
    videos: dict[str, VideoAnnotation]
    other_splits: tuple[str, ...] = ()

    def split(self, split: str | None) -> list[str]:
        """Names of the videos whose ``split_ids`` hold ``split`` (all videos for None), sorted."""
        names = [n for n, v in self.videos.items() if split is None or split in v.split_ids]
        return sorted(names)

    def splits(self) -> list[str]:
        return sorted({s for v in self.videos.values() for s in v.split_ids}
                      | set(self.other_splits))


@dataclass
class Gathered:
    """The fields of one video as a parser read them, before checks and conversion: per box a
    row of :data:`BOX_FIELDS_NAMES` values, its frame number, frame key and box key."""

    name: str
    split_ids: list
    numf: int
    width: int
    height: int
    annotated: np.ndarray  # (numf,) bool
    rows: list[tuple]
    box_frames: list[int]
    frame_keys: list[str]
    box_keys: list[str]
    tubes: Callable[[str], Iterable[tuple[str, int, object]]]
    """label type -> (tube key, label_id, annos) of its tubes, type-checked up to the label."""
    typed: bool = False
    """The parser made sure of the types: boxes are 4 floats, uids strings, ids integers."""


@dataclass
class Occurrence:
    """One entry under ``db`` as read: its name, ``split_ids`` (None when not a list of names),
    what it showed (:class:`Findings`) and its arrays (None when not asked for)."""

    name: str
    split_ids: tuple[str, ...] | None
    findings: Findings
    video: VideoAnnotation | None


def split_names(value) -> tuple[str, ...] | None:
    """A ``split_ids`` value as a tuple of names, None when it is not a list of strings."""
    if not isinstance(value, list) or set(map(type, value)) - {str}:
        return None
    return tuple(value)


def frame_number(key: str, numf: int) -> int:
    """The number 1..numf a frame key spells exactly (no sign, zeros or spaces), else -1."""
    n = int(key) if key.isascii() and key.isdigit() and len(key) < 10 else -1
    return n if str(n) == key and 1 <= n <= numf else -1


def build_video(g: Gathered, labels: LabelSpace, mappings: dict[str, np.ndarray],
                keep_tubes: bool, path: Path, findings: Findings) -> VideoAnnotation:
    """Check a gathered video and convert it to arrays in the used label space."""
    where = f"video {show(g.name)}"
    frame_keys, box_keys = g.frame_keys, g.box_keys

    def box_at(i: int) -> str:
        return f"{where} frame {frame_keys[i]} box {show(box_keys[i])}"

    columns = zip(*g.rows, strict=True) if g.rows else [[]] * (2 + len(LABEL_TYPES))
    coords, uids_of_box, *id_lists = columns
    if g.typed:
        raw_boxes = check_box_range(np.array(coords, dtype=np.float64).reshape(-1, 4), coords,
                                    box_at, path)
    else:
        raw_boxes = check_box_coords(list(coords), box_at, path)
        check_types(uids_of_box, (str,), box_at, "'tube_uid'", "a string", path)
    uids, inverse = np.unique(np.asarray(uids_of_box, dtype=str), return_inverse=True)
    pairs = {}
    for t, ids in zip(LABEL_TYPES, id_lists, strict=True):
        owners, all_ids = check_label_ids(ids, len(mappings[t]), box_at, f"'{t}_ids'", path,
                                          g.typed)
        pairs[t] = _used_pairs(owners, all_ids, mappings[t])
    video, new_row = _frame_sorted(
        VideoAnnotation(name=g.name, split_ids=tuple(g.split_ids), numf=g.numf, width=g.width,
                        height=g.height, annotated=g.annotated,
                        frames=np.asarray(g.box_frames, dtype=np.int32), boxes=raw_boxes,
                        track_ids=inverse.astype(np.int32).reshape(-1),
                        uids=[str(u) for u in uids], labels={}),
        pairs, labels, box_at, findings)
    if keep_tubes:
        rows = RowLookup(frame_keys, box_keys, g.box_frames, new_row, video.frames)
        runs, made = {}, {}
        for t in LABEL_TYPES:
            args = (mappings[t], rows, where, f"{t}_tubes")
            at_once = _tubes_at_once(g.tubes(t), *args, findings)
            if at_once is None:
                made[t] = _build_tubes(g.tubes(t), *args, path, findings)
            else:
                runs[t] = at_once
        video.tubes = TubeRuns(runs, made)
    return video


@dataclass
class Scanned:
    """The fields of one video as the compiled scanner gives them (``roadtrack.io._scan``):
    arrays of its boxes in the order of the text, tube references resolved to those boxes.
    The keys that name boxes and tubes in messages are read only when a message needs them."""

    name: str
    split_ids: tuple[str, ...]
    numf: int
    width: int
    height: int
    annotated: np.ndarray  # (numf,) bool
    boxes: np.ndarray  # (N, 4) float64
    frames: np.ndarray  # (N,) int32
    uid_index: np.ndarray  # (N,) int32 into first_uids
    first_uids: list[str]  # each tube_uid once, in order of first use
    label_ids: dict[str, tuple[np.ndarray, np.ndarray]]  # type -> (M,) box, (M,) all_* id
    tubes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    """type -> (T,) label_id, (T,) references per tube, (R,) box of each reference (-1: none)."""
    box_keys: Callable[[], tuple[list[str], list[str]]]  # frame key and box key of each box
    tube_keys: Callable[[str], list[str]]  # the tube keys of a label type, in order


def build_scanned(v: Scanned, labels: LabelSpace, mappings: dict[str, np.ndarray],
                  keep_tubes: bool, path: Path, findings: Findings) -> VideoAnnotation | None:
    """What :func:`build_video` gives for the same entry, or None where a check refuses it
    (:func:`build_video` then says how)."""
    where = f"video {show(v.name)}"

    def box_at(i: int) -> str:
        frame_keys, box_keys = v.box_keys()
        return f"{where} frame {frame_keys[i]} box {show(box_keys[i])}"

    try:
        check_box_range(v.boxes, v.boxes, box_at, path)
    except UserError:
        return None
    pairs = {}
    for t, (rows, all_ids) in v.label_ids.items():
        if ((all_ids < 0) | (all_ids >= len(mappings[t]))).any():
            return None
        pairs[t] = _used_pairs(rows, all_ids, mappings[t])
    ranked = sorted(range(len(v.first_uids)), key=v.first_uids.__getitem__)
    rank = np.empty(len(ranked), dtype=np.int32)  # (U,) place of each uid in sorted order
    rank[ranked] = np.arange(len(ranked), dtype=np.int32)
    video, new_row = _frame_sorted(
        VideoAnnotation(name=v.name, split_ids=v.split_ids, numf=v.numf, width=v.width,
                        height=v.height, annotated=v.annotated, frames=v.frames, boxes=v.boxes,
                        track_ids=rank[v.uid_index], uids=[v.first_uids[i] for i in ranked],
                        labels={}),
        pairs, labels, box_at, findings)
    if keep_tubes:
        runs = {}
        for t, (all_labels, sizes, refs) in v.tubes.items():
            if ((all_labels < 0) | (all_labels >= len(mappings[t]))).any():
                return None
            used = mappings[t][all_labels]  # (T,)
            kept = np.flatnonzero(used >= 0)  # (K,)
            rows = refs[np.repeat(used >= 0, sizes)]  # (R',) of the kept tubes
            if (rows < 0).any():
                return None
            runs[t] = _runs(used[kept], sizes[kept], new_row[rows], len(new_row), findings,
                            _tube_namer(where, t, v.tube_keys, kept))
        video.tubes = TubeRuns(runs)
    return video


def _tube_namer(where: str, t: str, tube_keys: Callable[[str], list[str]], kept: np.ndarray
                ) -> Callable[[int], str]:
    """Names the i-th kept tube of type ``t`` (reading the tube keys only then)."""
    return lambda i: f"{where} {t}_tubes tube {show(tube_keys(t)[kept[i]])}"


def _frame_sorted(video: VideoAnnotation, pairs: dict[str, tuple[np.ndarray, np.ndarray]],
                  labels: LabelSpace, box_at: Callable[[int], str], findings: Findings
                  ) -> tuple[VideoAnnotation, np.ndarray]:
    """``video``, its boxes given in the order read, with its labels from ``pairs`` and
    checked, sorted by frame (stable, boxes clipped to [0, 1]); and (N,) the new row of each."""
    findings.check_boxes(video.boxes, video.frames, video.track_ids, box_at)
    order = np.argsort(video.frames, kind="stable")
    new_row = np.empty(len(order), dtype=np.int64)  # (N,) where each box goes
    new_row[order] = np.arange(len(order))
    hot = LabelPairs(len(order), {t: (new_row[rows].astype(np.int32), cols,
                                      labels.num_classes(t)) for t, (rows, cols) in pairs.items()})
    sorted_video = VideoAnnotation(
        name=video.name, split_ids=video.split_ids, numf=video.numf, width=video.width,
        height=video.height, annotated=video.annotated, frames=video.frames[order],
        boxes=np.clip(video.boxes, 0.0, 1.0)[order], track_ids=video.track_ids[order],
        uids=video.uids, labels=hot)
    return sorted_video, new_row


class RowLookup:
    """The row (in the frame-sorted arrays) of a box given by frame key and box key."""

    def __init__(self, frame_keys: list[str], box_keys: list[str], box_frames: list[int],
                 new_row: np.ndarray, frames: np.ndarray):
        self.count = len(box_keys)
        self.frames = frames  # (N,) frame of each row
        self.frame_of_key = dict(zip(frame_keys, box_frames, strict=True))
        self.by_box = dict(zip(box_keys, new_row.tolist(), strict=True))
        if len(self.by_box) < self.count:  # a box key in several frames
            self.by_box = {}
        self.pairs = lambda: dict(zip(zip(frame_keys, box_keys, strict=True), new_row.tolist(),
                                      strict=True))

    def rows(self, annos: list[dict]) -> np.ndarray:
        """(R,) rows of the boxes of ``annos`` (frame key -> box key), in order; KeyError or
        TypeError when one is missing."""
        count = sum(map(len, annos))
        if self.by_box:
            rows = np.fromiter(map(self.by_box.__getitem__,
                                   chain.from_iterable(map(dict.values, annos))),
                               dtype=np.int64, count=count)  # (R,)
            frames = np.fromiter(map(self.frame_of_key.__getitem__, chain.from_iterable(annos)),
                                 dtype=np.int64, count=count)  # (R,)
            if np.array_equal(self.frames[rows], frames):
                return rows
        pairs = self.pairs()
        return np.fromiter(map(pairs.__getitem__, zip(chain.from_iterable(annos),
                                                      chain.from_iterable(map(dict.values, annos)),
                                                      strict=True)), dtype=np.int64, count=count)


def _used_pairs(rows: np.ndarray, all_ids: np.ndarray, mapping: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """(M,) box and (M,) ``all_*`` id of every label -> (L,) box and (L,) class in the used
    space (int64, int16), dropping unused classes."""
    used = mapping[all_ids]
    keep = used >= 0
    return rows[keep], used[keep].astype(np.int16)


def _tubes_at_once(items: Iterable[tuple[str, int, object]], mapping: np.ndarray,
                   lookup: RowLookup, where: str, field: str, findings: Findings
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """What :func:`_build_tubes` gives, as :class:`TubeRuns` keeps it ((K,) labels, (K + 1,)
    starts, (R,) rows), in a few passes over all tubes of one type; None when any tube is not as
    expected (then :func:`_build_tubes` names the first problem)."""
    try:
        entries = list(items)
        labels = np.array([label for _, label, _ in entries], dtype=np.int64)  # (T,)
        if ((labels < 0) | (labels >= len(mapping))).any() \
                or not set(type(annos) for _, _, annos in entries) <= {dict}:
            return None
        used = mapping[labels]
        kept = np.flatnonzero(used >= 0)  # (K,)
        annos: list[dict] = [entries[i][2] for i in kept]  # type: ignore[misc]
        sizes = np.fromiter(map(len, annos), dtype=np.int64, count=len(annos))  # (K,)
        rows = lookup.rows(annos)  # (R,)
    except (KeyError, TypeError, UserError, OverflowError, IndexError):
        return None
    keys = [entries[i][0] for i in kept]
    return _runs(used[kept], sizes, rows, lookup.count, findings,
                 lambda i: f"{where} {field} tube {show(keys[i])}")


def _runs(labels: np.ndarray, sizes: np.ndarray, rows: np.ndarray, count: int,
          findings: Findings, tube_at: Callable[[int], str]
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tubes of (K,) used ``labels`` with (K,) ``sizes`` and their (R,) ``rows`` one after the
    other, as :class:`TubeRuns` keeps them: rows sorted within each tube, (K + 1,) starts;
    checked for boxes given twice."""
    starts = np.concatenate([[0], np.cumsum(sizes)])  # (K + 1,)
    falls = np.flatnonzero(np.diff(rows) < 0) + 1  # (F,) where a row is below the one before
    if not np.isin(falls, starts).all():  # some tube is not in order (they mostly are)
        owner = np.repeat(np.arange(len(labels)), sizes)  # (R,)
        rows = rows[np.lexsort((rows, owner))]  # sorted within each tube
    findings.check_tube_runs(labels, sizes, rows, count, tube_at)
    return labels, starts, rows


def _build_tubes(items: Iterable[tuple[str, int, object]], mapping: np.ndarray,
                 lookup: RowLookup, where: str, field: str, path: Path, findings: Findings
                 ) -> list[Tube]:
    """The tubes of one label type (``field``) whose class is used, one at a time."""
    tubes, keys = [], []
    row_of = lookup.pairs()
    for tube_key, label, annos in items:
        at = f"{where} {field} tube {show(tube_key)}"
        if not 0 <= label < len(mapping):
            raise UserError(f"{at}: label_id {describe(label)} out of range "
                            f"0..{len(mapping) - 1}", path)
        if not isinstance(annos, dict):
            raise bad(at, "'annos'", annos, "an object of box keys by frame", path)
        if mapping[label] < 0:
            continue
        try:
            rows = list(map(row_of.__getitem__, annos.items()))
        except (KeyError, TypeError):
            frame, box = next((f, b) for f, b in annos.items()
                              if type(b) is not str or (f, b) not in row_of)
            if type(box) is not str:
                raise bad(f"{at} frame {show(frame)}", "the box key", box, "a string",
                          path) from None
            raise UserError(f"{at}: refers to a missing box (frame {show(frame)}, box "
                            f"{show(box)})", path) from None
        tubes.append(Tube(label=int(mapping[label]), rows=np.sort(np.array(rows, np.int64))))
        keys.append(tube_key)
    findings.check_tubes(np.array([t.label for t in tubes], dtype=np.int64),
                         [t.rows for t in tubes], lookup.count,
                         lambda i: f"{where} {field} tube {show(keys[i])}")
    return tubes
