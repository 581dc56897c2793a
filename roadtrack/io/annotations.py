"""Reader for ROAD and ROAD++ annotation JSON (``road_trainval_v1.0.json``,
``road_waymo_trainval_v1.0.json``).

The file is streamed video by video (ijson), and each video is kept as compact numpy arrays in the
used label space, so the 1 GB ROAD++ file loads in bounded memory. The small top-level lists are
read by locating their keys in the memory-mapped file.
"""
from __future__ import annotations

import codecs
import contextlib
import gc
import json
import mmap
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from pathlib import Path

import ijson
import numpy as np

from ..errors import UserError
from ..labels import ALL_TYPES, LABEL_TYPES, LabelSpace, name_mapping, roadpp
from .annotation_checks import (
    NUMBER,
    Findings,
    bad,
    check_box_coords,
    check_label_ids,
    check_types,
    describe,
    locate,
    show,
)

ANNOTATION_NAMES = ("road_waymo_trainval_v1.0.json", "road_trainval_v1.0.json")
"""The official annotation file names of a data folder: ROAD++ (ROAD-Waymo), then ROAD."""
MAX_FRAMES = 1_000_000
"""Largest ``numf`` read (ROAD's longest video has about 6,000 frames; this is 28 h at 10 fps)."""

BOX_FIELDS_NAMES = ("box", "tube_uid") + tuple(f"{t}_ids" for t in LABEL_TYPES)
BOX_FIELDS = itemgetter(*BOX_FIELDS_NAMES)
"""The fields of a box the reader reads, in one C-level call per box."""

HEAD_WINDOW = 1 << 22
"""Bytes at the start of the file searched first for the top-level label lists."""

UTF16_32_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)

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


def find_annotation_file(root: str | Path, name: str = "") -> Path:
    """The annotation file of a dataset root: ``name`` when given, else the official names."""
    root = Path(root)
    try:
        found = root.is_dir()
    except (OSError, ValueError) as err:  # a name too long, a NUL
        raise UserError(f"not a usable folder name ({getattr(err, 'strerror', None) or err})",
                        root) from None
    if not found:
        raise UserError("no such data folder", root)
    if name:
        return root / name
    for candidate in ANNOTATION_NAMES:
        if (root / candidate).is_file():
            return root / candidate
    raise UserError(f"no annotation file ({' or '.join(ANNOTATION_NAMES)}) in the data folder",
                    root)


def load_annotation(path: str | Path, videos: list[str] | None = None,
                    keep_tubes: bool = True) -> Annotation:
    """Read a ROAD/ROAD++ annotation file; ``videos`` limits which are kept.

    Raises UserError, naming the file and the place, for unreadable, truncated or malformed files,
    missing keys, fields of the wrong type, label ids out of range and boxes outside [0, 1.01].
    Warns (:class:`~roadtrack.errors.InputWarning`, one line per kind with a count) about flipped
    boxes, repeated keys, videos, tube_uids in a frame and tube boxes (see ``annotation_checks``).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError("no such annotation file", path)
    header, start = _read_header(path)
    labels = LabelSpace.from_dict(header, dataset=_dataset_of(path, header))
    mappings = {t: name_mapping(header[f"all_{t}_labels"], labels.names(t)) for t in LABEL_TYPES}
    wanted = None if videos is None else set(videos)
    out: dict[str, VideoAnnotation] = {}
    findings = Findings()
    repeated: list = []  # (object, key) of every key given twice in an object
    seen: set[str] = set()
    try:
        with open(path, "rb") as f, _cyclic_gc_paused():
            f.seek(start)
            for name, raw in ijson.kvitems(f, "db", use_float=True,
                                           map_type=_object_type(repeated)):
                findings.add("video_twice", int(name in seen), f"video {show(name)}")
                seen.add(name)
                if wanted is None or name in wanted:
                    out[name] = _parse_video(name, raw, labels, mappings, keep_tubes, path,
                                             findings)
                if repeated:
                    obj, key = repeated[0]
                    findings.add("key_twice", len(repeated), f"video {show(name)}: key "
                                 f"{show(key)} in {locate(raw, obj)}")
                    repeated.clear()
    except (ijson.JSONError, UnicodeDecodeError) as err:
        after = f" after video {show(name)}" if seen else ""
        problem = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) \
            else "malformed or truncated JSON"
        raise UserError(f"{problem}{after} ({_first_line(err)})", path) from None
    if not out and wanted is None:
        raise UserError("annotation file has no videos under 'db'", path)
    if wanted is not None and wanted - set(out):
        missing = ", ".join(sorted(wanted - set(out))[:5])
        raise UserError(f"videos not in the annotation: {missing}", path)
    findings.warn(path)
    return Annotation(path=path, labels=labels, videos=out)


@contextlib.contextmanager
def _cyclic_gc_paused():
    """Pause Python's cyclic garbage collector: the parser makes millions of containers, none in
    a cycle, and the collector's passes over them cost a quarter of the load time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _object_type(repeated: list) -> type:
    """A dict type for the parser that notes (object, key) in ``repeated`` for every key given
    twice in one object; the last value wins, as with json.load."""
    class JSONObject(dict):
        __slots__ = ()

        def __setitem__(self, key, value, _setdefault=dict.setdefault, _set=dict.__setitem__):
            if _setdefault(self, key, value) is not value:
                repeated.append((self, key))
                _set(self, key, value)

    return JSONObject


def _first_line(err: Exception) -> str:
    """The parser's message without the excerpt of the file it appends."""
    text = str(err)
    if text.startswith(("b'", 'b"')):  # some of ijson's messages are reprs of bytes
        text = text[2:]
    lines = [line.strip() for line in text.replace("\\n", "\n").splitlines() if line.strip()]
    return lines[0] if lines else "parse error"


def _dataset_of(path: Path, header: dict) -> str:
    if "waymo" in path.name.lower():
        return "road_waymo"
    builtin = roadpp()
    same = all(tuple(header.get(f"{t}_labels", ())) == builtin.names(t)
               for t in ("agent", "action"))
    return "road_waymo" if same else "road"


def _read_header(path: Path) -> tuple[dict, int]:
    """The small top-level lists, found by key in the memory-mapped file, and the offset where
    the JSON text starts (3 after a UTF-8 byte-order mark, which is read as json does with
    utf-8-sig)."""
    try:
        with open(path, "rb") as f:
            if path.stat().st_size == 0:
                raise UserError("annotation file is empty", path)
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                start = len(codecs.BOM_UTF8) if data[:3] == codecs.BOM_UTF8 else 0
                if data[:4] in UTF16_32_BOMS or data[:2] in UTF16_32_BOMS:
                    raise UserError("starts with a UTF-16 or UTF-32 byte-order mark: "
                                    "annotation files are UTF-8 JSON", path)
                if data[start: start + 64].lstrip()[:1] != b"{" \
                        or data[-64:].rstrip()[-1:] != b"}":
                    raise UserError("malformed or truncated JSON (not one object)", path)
                header = {key: _value_of_key(data, key, path) for key in HEADER_KEYS
                          if key not in ("av_action_labels", "all_av_action_labels")
                          or data.find(f'"{key}"'.encode()) >= 0}
    except OSError as err:
        raise UserError(f"cannot read: {err.strerror}", path) from None
    return header, start


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
    except (ValueError, RecursionError) as err:
        why = err.msg if isinstance(err, json.JSONDecodeError) else \
            "nested too deeply" if isinstance(err, RecursionError) else "a number too long"
        raise UserError(f"malformed value for {key!r} ({why})", path) from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{key!r} is not a list of class names", path)
    return value


def _is_key(data: mmap.mmap, pos: int, needle: bytes) -> bool:
    return data[pos + len(needle): pos + len(needle) + 64].lstrip()[:1] == b":"


def _parse_video(name: str, raw: dict, labels: LabelSpace, mappings: dict[str, np.ndarray],
                 keep_tubes: bool, path: Path, findings: Findings) -> VideoAnnotation:
    where = f"video {show(name)}"
    if not isinstance(raw, dict):
        raise bad(where, "the entry", raw, "an object", path)
    numf = _get(raw, "numf", where, path)
    if type(numf) is not int or not 0 <= numf <= MAX_FRAMES:
        raise bad(where, "'numf'", numf, f"a frame count (an integer 0..{MAX_FRAMES})", path)
    split_ids = raw.get("split_ids", [])
    if not isinstance(split_ids, list) or set(map(type, split_ids)) - {str}:
        raise bad(where, "'split_ids'", split_ids, "a list of split names", path)
    frames_raw = _get(raw, "frames", where, path)
    if not isinstance(frames_raw, dict):
        raise bad(where, "'frames'", frames_raw, "an object of frames by number", path)

    annotated = np.zeros(numf, dtype=bool)
    # per box: field tuple, frame, keys
    rows: list[tuple] = []
    box_frames: list[int] = []
    frame_keys: list[str] = []
    box_keys: list[str] = []
    width = height = 0
    for frame_key, frame in frames_raw.items():
        n = int(frame_key) if frame_key.isascii() and frame_key.isdigit() \
            and len(frame_key) < 10 else -1
        if str(n) != frame_key or not 1 <= n <= numf:
            raise UserError(f"{where}: frame key {frame_key[:40]!r} is not a frame number "
                            f"1..numf={numf}", path)
        at = f"{where} frame {n}"
        if not isinstance(frame, dict):
            raise bad(at, "the frame", frame, "an object", path)
        flag = frame.get("annotated", 0)
        if type(flag) not in NUMBER:
            raise bad(at, "'annotated'", flag, "a number", path)
        annotated[n - 1] = flag > 0
        if not width:
            width, height = (_size(frame, key, at, path) for key in ("width", "height"))
        annos = frame.get("annos")
        if annos is None:
            continue
        if not isinstance(annos, dict):
            raise bad(at, "'annos'", annos, "an object of boxes by key", path)
        try:
            rows.extend(map(BOX_FIELDS, annos.values()))
        except (KeyError, TypeError):
            _raise_for_box(annos, at, path)
        box_frames.extend(repeat(n, len(annos)))
        frame_keys.extend(repeat(frame_key, len(annos)))
        box_keys.extend(annos)

    def box_at(i: int) -> str:
        return f"{where} frame {frame_keys[i]} box {show(box_keys[i])}"

    columns = zip(*rows, strict=True) if rows else [[]] * (2 + len(LABEL_TYPES))
    coords, uids_of_box, *id_lists = columns
    raw_boxes = check_box_coords(list(coords), box_at, path)
    check_types(uids_of_box, (str,), box_at, "'tube_uid'", "a string", path)
    frames = np.asarray(box_frames, dtype=np.int32)
    uids, inverse = np.unique(np.asarray(uids_of_box, dtype=str), return_inverse=True)
    track_ids = inverse.astype(np.int32).reshape(-1)
    multi_hot = {t: _multi_hot(list(ids), mappings[t], labels.num_classes(t), box_at,
                               f"'{t}_ids'", path)
                 for t, ids in zip(LABEL_TYPES, id_lists, strict=True)}
    findings.check_boxes(raw_boxes, frames, track_ids, box_at)

    order = np.argsort(frames, kind="stable")
    video = VideoAnnotation(
        name=name, split_ids=tuple(split_ids), numf=numf, width=width, height=height,
        annotated=annotated, frames=frames[order], boxes=np.clip(raw_boxes, 0.0, 1.0)[order],
        track_ids=track_ids[order], uids=[str(u) for u in uids],
        labels={t: hot[order] for t, hot in multi_hot.items()},
    )
    if keep_tubes:
        new_row = np.empty(len(order), dtype=np.int64)
        new_row[order] = np.arange(len(order))
        row_of = dict(zip(zip(frame_keys, box_keys, strict=True), new_row.tolist(), strict=True))
        video.tubes = {t: _parse_tubes(raw.get(f"{t}_tubes", {}), mappings[t], row_of,
                                       where, f"{t}_tubes", path, findings)
                       for t in LABEL_TYPES}
    return video


def _get(obj: dict, key: str, where: str, path: Path):
    try:
        return obj[key]
    except KeyError:
        raise UserError(f"{where}: missing key {key!r}", path) from None


def _size(frame: dict, key: str, where: str, path: Path) -> int:
    value = frame.get(key, 0)
    if type(value) is not int or value < 0:
        raise bad(where, repr(key), value, "a size in pixels (an integer)", path)
    return value


def _raise_for_box(annos: dict, where: str, path: Path):
    """The error for the first box of a frame that is no object or lacks a field."""
    for key, box in annos.items():
        if not isinstance(box, dict):
            raise bad(f"{where} box {show(key)}", "the box", box, "an object", path)
        missing = [f for f in BOX_FIELDS_NAMES if f not in box]
        if missing:
            raise UserError(f"{where} box {show(key)}: missing key {missing[0]!r}", path)
    raise AssertionError("no bad box")


def _multi_hot(id_lists: list, mapping: np.ndarray, num_used: int, where, field: str,
               path: Path) -> np.ndarray:
    """Ragged lists of ``all_*`` ids of N boxes -> (N, num_used) bool, dropping unused classes."""
    rows, ids = check_label_ids(id_lists, len(mapping), where, field, path)  # (M,), (M,)
    used = mapping[ids]
    out = np.zeros((len(id_lists), num_used), dtype=bool)
    keep = used >= 0
    out[rows[keep], used[keep]] = True
    return out


def _parse_tubes(raw_tubes: dict, mapping: np.ndarray, row_of: dict, where: str, field: str,
                 path: Path, findings: Findings) -> list[Tube]:
    """The tubes of one label type (``field``) whose class is used; (frame, box key) -> row in
    ``row_of``."""
    if not isinstance(raw_tubes, dict):
        raise bad(where, repr(field), raw_tubes, "an object of tubes by key", path)
    tubes, keys = [], []
    for tube_key, tube in raw_tubes.items():
        at = f"{where} {field} tube {show(tube_key)}"
        if not isinstance(tube, dict):
            raise bad(at, "the tube", tube, "an object", path)
        label, annos = _get(tube, "label_id", at, path), _get(tube, "annos", at, path)
        if type(label) is not int:
            raise bad(at, "'label_id'", label, "an integer", path)
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
                         [t.rows for t in tubes], len(row_of),
                         lambda i: f"{where} {field} tube {show(keys[i])}")
    return tubes
