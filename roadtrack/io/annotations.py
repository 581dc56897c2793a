"""Reader for ROAD and ROAD++ annotation JSON (``road_trainval_v1.0.json``,
``road_waymo_trainval_v1.0.json``).

Each video is kept as compact numpy arrays in the used label space. The video entries are read by
the fast reader (``annotation_fast``: typed msgspec structs over the memory-mapped file), entry by
entry falling back to the stream reader here (ijson, per-video dicts) wherever the fast one cannot
vouch for giving the same result, so both give the same arrays, errors and warnings; memory stays
bounded either way. The arrays are cached beside the file (``annotation_cache``). The small
top-level lists are read by locating their keys in the memory-mapped file.
"""
from __future__ import annotations

import codecs
import contextlib
import dataclasses
import io
import json
import mmap
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from pathlib import Path

import ijson
import numpy as np

from ..errors import UserError
from ..labels import ALL_TYPES, LABEL_TYPES, LabelSpace, name_mapping, roadpp
from .annotation_cache import cache_enabled, load_cached, save_cache
from .annotation_checks import NUMBER, Findings, bad, locate, show
from .annotation_fast import FallBack, cyclic_gc_paused, read_fast
from .annotation_video import (
    BOX_FIELDS_NAMES,
    MAX_FRAMES,
    Annotation,
    Gathered,
    Occurrence,
    Scanned,
    Tube,
    VideoAnnotation,
    build_scanned,
    build_video,
    frame_number,
    split_names,
)

__all__ = ["ANNOTATION_NAMES", "MAX_FRAMES", "Annotation", "Tube", "VideoAnnotation",
           "find_annotation_file", "load_annotation"]

ANNOTATION_NAMES = ("road_waymo_trainval_v1.0.json", "road_trainval_v1.0.json")
"""The official annotation file names of a data folder: ROAD++ (ROAD-Waymo), then ROAD."""

BOX_FIELDS = itemgetter(*BOX_FIELDS_NAMES)
"""The fields of a box the reader reads, in one C-level call per box."""

HEAD_WINDOW = 1 << 22
"""Bytes at the start of the file searched first for the top-level label lists."""

UTF16_32_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)

HEADER_KEYS = [f"{t}_labels" for t in ALL_TYPES] + [f"all_{t}_labels" for t in ALL_TYPES]


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
                    keep_tubes: bool = True, splits: Iterable[str] | None = None,
                    cache: bool | None = None) -> Annotation:
    """Read a ROAD/ROAD++ annotation file; ``videos`` limits which are kept.

    ``splits`` keeps only the videos whose ``split_ids`` hold one of them, and reads no more of
    the others than their JSON syntax and ``split_ids``. ``cache`` (default: on unless
    ``ROADTRACK_NO_CACHE`` is set) reuses the arrays of an earlier read of the same file (see
    :mod:`~roadtrack.io.annotation_cache`).

    Raises UserError, naming the file and the place, for unreadable, truncated or malformed files,
    missing keys, fields of the wrong type, label ids out of range and boxes outside [0, 1.01].
    Warns (:class:`~roadtrack.errors.InputWarning`, one line per kind with a count) about flipped
    boxes, repeated keys, videos, tube_uids in a frame and tube boxes (see ``annotation_checks``).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError("no such annotation file", path)
    header, start = _read_header(path)
    labels = LabelSpace.from_dict(header, dataset=_dataset_of(path, header), source=path)
    mappings = {t: name_mapping(header[f"all_{t}_labels"], labels.names(t)) for t in LABEL_TYPES}
    names = None if videos is None else frozenset(videos)
    split_set = None if splits is None else frozenset(splits)
    want = Wanted(names, split_set)
    reader = EntryReader(path, labels, mappings, keep_tubes, want, split_set is None)

    parsed = None
    if cache_enabled() if cache is None else cache:
        parsed = load_cached(path)
        if parsed is None:
            with contextlib.suppress(UserError):  # read again below, as asked, for the error
                everything = EntryReader(path, labels, mappings, True, Wanted(None, None), True)
                parsed = _parse(everything, start)
                save_cache(path, parsed)
    if parsed is None:
        parsed = _parse(reader, start)
    out: dict[str, VideoAnnotation] = {}
    findings = Findings()
    others: set[str] = set()
    for occ in parsed:
        wanted = want(occ.name, occ.split_ids)
        for kind, count in occ.findings.counts.items():
            if kind == "video_twice" or (kind == "key_twice" and split_set is None) \
                    or (wanted and (keep_tubes or kind != "tube_twice")):
                findings.add(kind, count, occ.findings.first[kind])
        if wanted and occ.video is not None:
            out[occ.name] = occ.video if keep_tubes or not occ.video.tubes \
                else dataclasses.replace(occ.video, tubes={})
        elif not wanted:
            others.update(occ.split_ids or ())
    if not out and names is None and split_set is None:
        raise UserError("annotation file has no videos under 'db'", path)
    if names is not None and names - set(out):
        missing = ", ".join(sorted(names - set(out))[:5])
        raise UserError(f"videos not in the annotation: {missing}", path)
    findings.warn(path)
    return Annotation(path=path, labels=labels, videos=out, other_splits=tuple(sorted(others)))


@dataclass(frozen=True)
class Wanted:
    """Which video entries to convert: by name, by split (None: all)."""

    names: frozenset[str] | None
    splits: frozenset[str] | None

    def __call__(self, name: str, split_ids: tuple[str, ...] | None) -> bool:
        return (self.names is None or name in self.names) and (
            self.splits is None or split_ids is None or bool(self.splits.intersection(split_ids)))


@dataclass(frozen=True)
class EntryReader:
    """How the entries of one file are read (shared by the fast reader's threads):
    ``want(name, split_ids)`` tells which to convert, ``report_all`` whether to report repeated
    keys also in the others."""

    path: Path
    labels: LabelSpace
    mappings: dict[str, np.ndarray]
    keep_tubes: bool
    want: Wanted
    report_all: bool

    def build(self, gathered: Gathered, findings: Findings) -> VideoAnnotation:
        return build_video(gathered, self.labels, self.mappings, self.keep_tubes, self.path,
                           findings)

    def build_scanned(self, scanned: Scanned, findings: Findings) -> VideoAnnotation | None:
        return build_scanned(scanned, self.labels, self.mappings, self.keep_tubes, self.path,
                             findings)

    def slow(self, name: str, text: bytes) -> Occurrence:
        """One entry's text read the stream reader's way (FallBack when its parser refuses)."""
        repeated: list = []
        try:
            raw = next(ijson.items(io.BytesIO(text), "", use_float=True,
                                   map_type=_object_type(repeated)))
        except (ijson.JSONError, UnicodeDecodeError, StopIteration):
            raise FallBack from None
        return _occurrence(name, raw, repeated, Findings(), self)


def _parse(reader: EntryReader, start: int) -> list[Occurrence]:
    """Every video entry of the file in order, read with the fast reader where it can vouch for
    the result and else as a stream."""
    with cyclic_gc_paused():
        parsed = read_fast(reader.path, start, reader)
        return _parse_stream(reader, start) if parsed is None else parsed


def _parse_stream(reader: EntryReader, start: int) -> list[Occurrence]:
    """The video entries of the file, streamed (ijson) into per-video dicts."""
    path = reader.path
    parsed: list[Occurrence] = []
    repeated: list = []  # (object, key) of every key given twice in an object
    seen: set[str] = set()
    try:
        with open(path, "rb") as f:
            f.seek(start)
            for name, raw in ijson.kvitems(f, "db", use_float=True,
                                           map_type=_object_type(repeated)):
                findings = Findings()
                findings.add("video_twice", int(name in seen), f"video {show(name)}")
                seen.add(name)
                parsed.append(_occurrence(name, raw, repeated, findings, reader))
    except (ijson.JSONError, UnicodeDecodeError) as err:
        after = f" after video {show(name)}" if seen else ""
        problem = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) \
            else "malformed or truncated JSON"
        raise UserError(f"{problem}{after} ({_first_line(err)})", path) from None
    return parsed


def _occurrence(name: str, raw, repeated: list, findings: Findings, reader: EntryReader
                ) -> Occurrence:
    """One parsed video entry (dicts), converted when wanted; notes repeated keys."""
    split_ids = split_names(raw.get("split_ids", []) if isinstance(raw, dict) else None)
    wanted = reader.want(name, split_ids)
    video = reader.build(_gather(name, raw, reader.path), findings) if wanted else None
    if repeated:
        # The parser may have read into the next entry already: its objects stay for it.
        inside = _containers(raw)
        mine = [(obj, key) for obj, key in repeated if id(obj) in inside]
        repeated[:] = [(obj, key) for obj, key in repeated if id(obj) not in inside]
        if mine and (wanted or reader.report_all):
            obj, key = mine[0]
            findings.add("key_twice", len(mine), f"video {show(name)}: key "
                         f"{show(key)} in {locate(raw, obj)}")
    return Occurrence(name, split_ids, findings, video)


def _containers(root) -> set[int]:
    """The ids of the dicts and lists in ``root`` (itself included)."""
    seen, stack = set(), [root]
    while stack:
        node = stack.pop()
        if isinstance(node, (dict, list)):
            seen.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)
    return seen


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
    candidates = (data.find(needle, 0, HEAD_WINDOW), lambda: data.rfind(needle))
    pos = next((p for p in (c if isinstance(c, int) else c() for c in candidates)
                if p >= 0 and _is_key(data, p, needle)), -1)
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


def _gather(name: str, raw: dict, path: Path) -> Gathered:
    """The fields of one video entry parsed into dicts, type-checked."""
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
        n = frame_number(frame_key, numf)
        if n < 0:
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
    return Gathered(name, split_ids, numf, width, height, annotated, rows, box_frames,
                    frame_keys, box_keys,
                    lambda t: _tubes(raw.get(f"{t}_tubes", {}), where, f"{t}_tubes", path))


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


def _tubes(raw_tubes: dict, where: str, field: str, path: Path):
    """(key, label_id, annos) of the tubes of one label type (``field``), type-checked."""
    if not isinstance(raw_tubes, dict):
        raise bad(where, repr(field), raw_tubes, "an object of tubes by key", path)
    for tube_key, tube in raw_tubes.items():
        at = f"{where} {field} tube {show(tube_key)}"
        if not isinstance(tube, dict):
            raise bad(at, "the tube", tube, "an object", path)
        label, annos = _get(tube, "label_id", at, path), _get(tube, "annos", at, path)
        if type(label) is not int:
            raise bad(at, "'label_id'", label, "an integer", path)
        yield tube_key, label, annos
