"""Reader for ROAD and ROAD++ annotation JSON (``road_trainval_v1.0.json``,
``road_waymo_trainval_v1.0.json``).

The file is streamed video by video (ijson), and each video is kept as compact numpy arrays in the
used label space, so the 1 GB ROAD++ file loads in bounded memory. The small top-level lists are
read by locating their keys in the memory-mapped file.
"""
from __future__ import annotations

import json
import mmap
from itertools import chain
from dataclasses import dataclass, field
from pathlib import Path

import ijson
import numpy as np

from ..errors import UserError
from ..labels import ALL_TYPES, LABEL_TYPES, LabelSpace, name_mapping, roadpp

BOX_TOLERANCE = 1.01
"""Normalised coordinates up to this value occur in the real files; they are clipped to 1."""

HEAD_WINDOW = 1 << 22
"""Bytes at the start of the file searched first for the top-level label lists."""

HEADER_KEYS = [f"{t}_labels" for t in ALL_TYPES] + [f"all_{t}_labels" for t in ALL_TYPES]


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
    labels: dict[str, np.ndarray]  # type -> (N, C) bool multi-hot
    tubes: dict[str, list[Tube]] = field(default_factory=dict)

    @property
    def num_boxes(self) -> int:
        return len(self.frames)

    def annotated_frames(self) -> np.ndarray:
        """(K,) 1-based numbers of the frames with ``annotated > 0``."""
        return np.flatnonzero(self.annotated) + 1

    def tube_frames_boxes(self, tube: Tube) -> tuple[np.ndarray, np.ndarray]:
        """(n,) frames and (n, 4) normalised boxes of a tube."""
        return self.frames[tube.rows], self.boxes[tube.rows]


@dataclass
class Annotation:
    """A whole annotation file: label space and videos by name."""

    path: Path
    labels: LabelSpace
    videos: dict[str, VideoAnnotation]

    def split(self, split: str | None) -> list[str]:
        """Names of the videos whose ``split_ids`` hold ``split`` (all videos for None), sorted."""
        names = [n for n, v in self.videos.items() if split is None or split in v.split_ids]
        return sorted(names)

    def splits(self) -> list[str]:
        return sorted({s for v in self.videos.values() for s in v.split_ids})


def load_annotation(path: str | Path, videos: list[str] | None = None,
                    keep_tubes: bool = True) -> Annotation:
    """Read a ROAD/ROAD++ annotation file; ``videos`` limits which are kept.

    Raises UserError, naming the file, for unreadable, truncated or malformed files, missing keys,
    label ids out of range and boxes outside [0, 1.01].
    """
    path = Path(path)
    if not path.is_file():
        raise UserError("no such annotation file", path)
    header = _read_header(path)
    labels = LabelSpace.from_dict(header, dataset=_dataset_of(path, header))
    mappings = {t: name_mapping(header[f"all_{t}_labels"], labels.names(t)) for t in LABEL_TYPES}
    wanted = None if videos is None else set(videos)
    out: dict[str, VideoAnnotation] = {}
    try:
        with open(path, "rb") as f:
            for name, raw in ijson.kvitems(f, "db", use_float=True):
                if wanted is None or name in wanted:
                    out[name] = _parse_video(name, raw, labels, mappings, keep_tubes, path)
    except ijson.JSONError as err:
        raise UserError(f"malformed or truncated JSON ({err})", path) from None
    if not out and wanted is None:
        raise UserError("annotation file has no videos under 'db'", path)
    if wanted is not None and wanted - set(out):
        missing = ", ".join(sorted(wanted - set(out))[:5])
        raise UserError(f"videos not in the annotation: {missing}", path)
    return Annotation(path=path, labels=labels, videos=out)


def _dataset_of(path: Path, header: dict) -> str:
    if "waymo" in path.name.lower():
        return "road_waymo"
    builtin = roadpp()
    same = all(tuple(header.get(f"{t}_labels", ())) == builtin.names(t) for t in ("agent", "action"))
    return "road_waymo" if same else "road"


def _read_header(path: Path) -> dict:
    """The small top-level lists, found by key in the memory-mapped file."""
    try:
        with open(path, "rb") as f:
            if path.stat().st_size == 0:
                raise UserError("annotation file is empty", path)
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                if data[:64].lstrip()[:1] != b"{" or data[-64:].rstrip()[-1:] != b"}":
                    raise UserError("malformed or truncated JSON (not one object)", path)
                return {key: _value_of_key(data, key, path) for key in HEADER_KEYS
                        if key not in ("av_action_labels", "all_av_action_labels")
                        or data.find(f'"{key}"'.encode()) >= 0}
    except OSError as err:
        raise UserError(f"cannot read: {err.strerror}", path) from None


def _value_of_key(data: mmap.mmap, key: str, path: Path) -> list:
    """The value of a top-level key: looked for near the start, then from the end (the small
    lists stand before or after the large ``db``), then anywhere."""
    needle = f'"{key}"'.encode()
    candidates = [data.find(needle, 0, HEAD_WINDOW), data.rfind(needle)]
    pos = next((p for p in candidates if p >= 0 and _is_key(data, p, needle)), -1)
    start = 0
    while pos < 0:
        found = data.find(needle, start)
        if found < 0:
            raise UserError(f"missing key {key!r}", path)
        pos, start = (found if _is_key(data, found, needle) else -1), found + 1
    colon = data.find(b":", pos + len(needle))
    end = min(len(data), colon + (1 << 20))
    text = data[colon + 1: end].decode("utf-8", errors="replace").lstrip()
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as err:
        raise UserError(f"malformed value for {key!r} ({err.msg})", path) from None
    if not isinstance(value, list):
        raise UserError(f"{key!r} is not a list", path)
    return value


def _is_key(data: mmap.mmap, pos: int, needle: bytes) -> bool:
    return data[pos + len(needle): pos + len(needle) + 64].lstrip()[:1] == b":"


def _parse_video(name: str, raw: dict, labels: LabelSpace, mappings: dict[str, np.ndarray],
                 keep_tubes: bool, path: Path) -> VideoAnnotation:
    where = f"video {name}"
    try:
        numf = int(raw["numf"])
        frames_raw = raw["frames"]
        split_ids = tuple(str(s) for s in raw.get("split_ids", ()))
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{where}: missing or bad key {err}", path) from None
    annotated = np.zeros(numf, dtype=bool)
    frames, keys, coords, uids_of_box = [], [], [], []
    ids = {t: [] for t in LABEL_TYPES}
    id_fields = [(ids[t].append, f"{t}_ids") for t in LABEL_TYPES]
    width = height = 0
    for frame_key, frame in frames_raw.items():
        try:
            n = int(frame_key)
            annotated[n - 1] = frame.get("annotated", 0) > 0
            if not width:
                width, height = int(frame.get("width", 0)), int(frame.get("height", 0))
        except (ValueError, IndexError, AttributeError, TypeError):
            raise UserError(f"{where}: bad frame {frame_key!r} (frames are 1..numf={numf})",
                            path) from None
        if n < 1:
            raise UserError(f"{where}: frame {n} outside 1..numf={numf}", path)
        for box_key, box in (frame.get("annos") or {}).items():
            try:
                coords.append(box["box"])
                uids_of_box.append(box["tube_uid"])
                for append, field_name in id_fields:
                    append(box[field_name])
            except (KeyError, TypeError) as err:
                raise UserError(f"{where} frame {n} box {box_key}: missing key {err}",
                                path) from None
            frames.append(n)
            keys.append((frame_key, box_key))
    boxes = _checked_boxes(coords, keys, where, path)
    frames = np.asarray(frames, dtype=np.int32)
    order = np.argsort(frames, kind="stable")
    uids, track_ids = np.unique(np.asarray(uids_of_box, dtype=str), return_inverse=True)
    video = VideoAnnotation(
        name=name, split_ids=split_ids, numf=numf, width=width, height=height,
        annotated=annotated, frames=frames[order], boxes=boxes[order],
        track_ids=track_ids.astype(np.int32).reshape(-1)[order],
        uids=[str(u) for u in uids],
        labels={t: _multi_hot(ids[t], mappings[t], labels.num_classes(t), f"{where}: {t}_ids",
                              path)[order] for t in LABEL_TYPES},
    )
    if keep_tubes:
        new_row = np.empty(len(order), dtype=np.int64)
        new_row[order] = np.arange(len(order))
        row_of = {key: new_row[i] for i, key in enumerate(keys)}
        video.tubes = {t: _parse_tubes(raw.get(f"{t}_tubes", {}), mappings[t], row_of,
                                       f"{where}: {t}_tubes", path) for t in LABEL_TYPES}
    return video


def _checked_boxes(coords: list, keys: list, where: str, path: Path) -> np.ndarray:
    """(N, 4) float64 boxes (the file's precision, as the official scorer reads them) clipped
    to [0, 1]; raises for ragged lists or values out of range."""
    try:
        boxes = np.asarray(coords, dtype=np.float64).reshape(-1, 4)
        if len(boxes) != len(coords):
            raise ValueError
    except (ValueError, TypeError):
        bad = next(i for i, c in enumerate(coords) if not isinstance(c, list) or len(c) != 4)
        raise UserError(f"{where} frame {keys[bad][0]} box {keys[bad][1]}: box is not 4 numbers",
                        path) from None
    outside = ~((boxes >= -0.01) & (boxes <= BOX_TOLERANCE)).all(axis=1)
    if outside.any():
        bad = int(np.flatnonzero(outside)[0])
        raise UserError(f"{where} frame {keys[bad][0]} box {keys[bad][1]}: box {coords[bad]} "
                        f"outside [0, {BOX_TOLERANCE}]", path)
    return np.clip(boxes, 0.0, 1.0)


def _multi_hot(id_lists: list, mapping: np.ndarray, num_used: int, where: str,
               path: Path) -> np.ndarray:
    """Ragged lists of ``all_*`` ids -> (N, num_used) bool, dropping unused classes."""
    counts = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
    flat = np.fromiter(chain.from_iterable(id_lists), dtype=np.int64, count=int(counts.sum()))
    if flat.size and (flat.min() < 0 or flat.max() >= len(mapping)):
        bad = flat[(flat < 0) | (flat >= len(mapping))][0]
        raise UserError(f"{where}: id {bad} out of range 0..{len(mapping) - 1}", path)
    rows = np.repeat(np.arange(len(id_lists)), counts)
    used = mapping[flat] if flat.size else flat
    out = np.zeros((len(id_lists), num_used), dtype=bool)
    keep = used >= 0
    out[rows[keep], used[keep]] = True
    return out


def _parse_tubes(raw_tubes: dict, mapping: np.ndarray, row_of: dict, where: str,
                 path: Path) -> list[Tube]:
    tubes = []
    for tube_key, tube in raw_tubes.items():
        try:
            label = int(tube["label_id"])
            annos = tube["annos"]
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{where} {tube_key}: missing or bad key {err}", path) from None
        if not 0 <= label < len(mapping):
            raise UserError(f"{where} {tube_key}: label_id {label} out of range", path)
        if mapping[label] < 0:
            continue
        try:
            rows = np.fromiter((row_of[item] for item in annos.items()), dtype=np.int64,
                               count=len(annos))
        except KeyError as err:
            raise UserError(f"{where} {tube_key}: refers to a missing box {err}", path) from None
        tubes.append(Tube(label=int(mapping[label]), rows=np.sort(rows)))
    return tubes
