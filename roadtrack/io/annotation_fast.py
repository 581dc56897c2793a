"""The fast annotation reader: msgspec splits the memory-mapped file into its video entries;
the compiled scanner (``_scan``, where the package was built with it) reads each entry in the
plain form straight into arrays (:func:`build_scanned`), and msgspec decodes any other into typed
structs, which the shared :func:`build_video` turns into arrays.

Each vouches for a result only where it is the one the stream reader would give (the scanner:
see ``_scan.c``). For the msgspec way, an entry whose text has a ``\\u`` escape, a key given
twice (found by counting the colons of the text against the keys decoded), a value of another
type or shape than the usual one, or anything that the checks refuse is handed to the stream
reader's ``slow`` path (which gives the usual error or warning); an oddity above the entries (a
repeated or escaped name, bad syntax) hands it the whole file.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import io
import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from itertools import chain, repeat
from operator import attrgetter
from pathlib import Path
from typing import Annotated, Any

import ijson
import msgspec
import numpy as np
from msgspec import UNSET, Meta, Raw, Struct, UnsetType

from ..errors import UserError
from ..labels import LABEL_TYPES
from .annotation_checks import Findings
from .annotation_video import (
    BOX_FIELDS_NAMES,
    MAX_FRAMES,
    Gathered,
    Occurrence,
    Scanned,
    frame_number,
    split_names,
)

try:
    from ._scan import scan_entry
except ImportError:  # built without a C compiler: every entry is read the msgspec way
    scan_entry = None  # type: ignore[assignment]

RELEASE_BYTES = 1 << 27
"""Mapped bytes read before their pages are given back (keeps the resident memory bounded)."""
PARALLEL_BYTES = 1 << 28
"""Files this large are read by several threads."""
MAX_WORKERS = 4


class FallBack(Exception):
    """The fast reader cannot vouch for this part: read it the stream reader's way."""


# The stream reader's parser (ijson's yajl2_c with use_float) refuses integers beyond 64 bits;
# msgspec takes them, so numbers are bounded here and a bigger one hands the entry over.
Int64 = Annotated[int, Meta(ge=1 - 2 ** 63, le=2 ** 63 - 1)]
Float64 = Annotated[float, Meta(gt=-(2.0 ** 63), lt=2.0 ** 63)]


class Box(Struct, forbid_unknown_fields=True, gc=False):
    box: tuple[Float64, Float64, Float64, Float64]
    tube_uid: str
    agent_ids: list[Int64]
    action_ids: list[Int64]
    loc_ids: list[Int64]
    duplex_ids: list[Int64]
    triplet_ids: list[Int64]


class Frame(Struct, forbid_unknown_fields=True, gc=False):
    annotated: Int64 | Float64 | UnsetType = UNSET
    width: Int64 | UnsetType = UNSET
    height: Int64 | UnsetType = UNSET
    annos: dict[str, Box] | None | UnsetType = UNSET
    rgb_image_id: Int64 | UnsetType = UNSET
    input_image_id: Int64 | UnsetType = UNSET
    av_action_ids: list[Int64] | UnsetType = UNSET


class TubeEntry(Struct, forbid_unknown_fields=True, gc=False):
    label_id: Int64
    annos: dict[str, str]


class Video(Struct, forbid_unknown_fields=True, gc=False):
    numf: Int64
    frames: dict[str, Frame]
    split_ids: list[str] | UnsetType = UNSET
    agent_tubes: dict[str, TubeEntry] | UnsetType = UNSET
    action_tubes: dict[str, TubeEntry] | UnsetType = UNSET
    loc_tubes: dict[str, TubeEntry] | UnsetType = UNSET
    duplex_tubes: dict[str, TubeEntry] | UnsetType = UNSET
    triplet_tubes: dict[str, TubeEntry] | UnsetType = UNSET
    av_action_tubes: Any = UNSET
    frame_labels: Any = UNSET
    location: Any = UNSET
    weather: Any = UNSET


class Splits(Struct, gc=False):
    split_ids: Any = UNSET


BOX_ATTRS = attrgetter(*BOX_FIELDS_NAMES)
FRAME_FIELDS = attrgetter(*Frame.__struct_fields__)
VIDEO_ANY = ("av_action_tubes", "frame_labels", "location", "weather")
"""The fields of a video entry decoded untyped (they may hold objects, whose keys count)."""
ENTRIES = msgspec.json.Decoder(dict[str, Raw])
VIDEO = msgspec.json.Decoder(Video)
SPLITS = msgspec.json.Decoder(Splits)


def read_fast(path: Path, start: int, reader) -> list[Occurrence] | None:
    """The video entries of the file (see :func:`roadtrack.io.annotations._parse`), or None
    when the stream reader must read the whole file. ``reader`` has ``want``, ``report_all``,
    ``build``, ``build_scanned`` and ``slow`` (:class:`roadtrack.io.annotations.EntryReader`).
    A large file is read in parts by :func:`workers` threads (the compiled scanner lets go of
    the GIL while it scans)."""
    try:
        spans = _entry_spans(path, start)
        parts = _parts(spans, workers() if path.stat().st_size >= PARALLEL_BYTES else 1)
        with cyclic_gc_paused():
            if len(parts) == 1:
                return _read_part(path, spans, reader)
            with ThreadPoolExecutor(len(parts)) as pool:
                read = pool.map(lambda part: _read_part(path, part, reader), parts)
                return list(chain.from_iterable(read))
    except FallBack:
        return None


def workers() -> int:
    """Threads that read a large file: ROADTRACK_READ_WORKERS, else the usable cores (at most
    :data:`MAX_WORKERS`); one without the compiled scanner (msgspec holds the GIL, and threads
    that take turns at it are slower than one)."""
    given = os.environ.get("ROADTRACK_READ_WORKERS", "")
    if scan_entry is None:
        return 1
    if given.isdigit() and int(given) > 0:
        return int(given)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_WORKERS, cores or 1))


def _parts(spans: list[tuple[str, int, int]], count: int) -> list[list[tuple[str, int, int]]]:
    """``spans`` cut into at most ``count`` runs of about equal bytes, in order."""
    total = sum(length for _, _, length in spans) or 1
    parts: list[list[tuple[str, int, int]]] = [[] for _ in range(max(1, count))]
    done = 0
    for span in spans:
        parts[min(len(parts) - 1, done * len(parts) // total)].append(span)
        done += span[2]
    return [part for part in parts if part] or [[]]


def _entry_spans(path: Path, start: int) -> list[tuple[str, int, int]]:
    """(name, offset, length) of the video entries; FallBack when the structure above them is
    not plain (a repeated or escaped key, a value the stream reader's parser would refuse)."""
    with open(path, "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(data)
    try:
        base = _address(view)
        top = ENTRIES.decode(view[start:])
        if "db" not in top:
            raise FallBack
        _check_gaps(data, base, start, len(data), top)
        db = top.pop("db")
        for raw in top.values():  # decoded only as far as to find their end
            _check_syntax(raw)
        entries = ENTRIES.decode(db)
        at = _address(db) - base
        _check_gaps(data, base, at, at + len(db), entries)
        return [(name, _address(raw) - base, len(raw)) for name, raw in entries.items()]
    except (msgspec.MsgspecError, ValueError):
        raise FallBack from None
    finally:
        _release(data)


def _read_part(path: Path, spans: list[tuple[str, int, int]], reader) -> list[Occurrence]:
    """The entries at ``spans`` of the file."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        parsed, done = [], 0
        for name, offset, length in spans:
            text = data[offset: offset + length]
            split_ids = None if reader.report_all else _splits(text)
            if reader.report_all or reader.want(name, split_ids):
                try:
                    parsed.append(_occurrence(name, text, reader))
                except (msgspec.MsgspecError, FallBack, UserError):
                    parsed.append(reader.slow(name, text))
            else:
                parsed.append(Occurrence(name, split_ids, Findings(), None))
            done += length
            if done > RELEASE_BYTES:
                _release(data)
                done = 0
        return parsed


@contextlib.contextmanager
def cyclic_gc_paused():
    """Pause Python's cyclic garbage collector: the parsers make millions of containers, none in
    a cycle, and the collector's passes over them cost a quarter of the load time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _release(data: mmap.mmap) -> None:
    """Give back the resident pages of the map (they are read again from the page cache when
    touched)."""
    if hasattr(mmap, "MADV_DONTNEED"):
        data.madvise(mmap.MADV_DONTNEED)


def _address(buffer) -> int:
    return np.frombuffer(buffer, dtype=np.uint8).__array_interface__["data"][0]


def _check_gaps(data: mmap.mmap, base: int, lo: int, hi: int, values: dict[str, Raw]) -> None:
    """Between the values of an object (decoded as views into ``data[lo:hi]``) stand just their
    keys: one colon each, no ``\\u`` escape, in order; else a key was repeated (the decoder keeps
    the last) or is escaped, and the stream reader must read the file."""
    pos = lo
    for raw in values.values():
        at = _address(raw) - base
        if not pos <= at <= hi - len(raw):
            raise FallBack
        gap = data[pos:at]
        if gap.count(b":") != 1 or b"\\u" in gap:
            raise FallBack
        pos = at + len(raw)
    tail = data[pos:hi]
    if b":" in tail or b"\\u" in tail:
        raise FallBack


def _check_syntax(raw: Raw) -> None:
    """FallBack unless the stream reader's parser takes ``raw`` (a value msgspec skipped), with
    its settings (``use_float``: integers beyond 64 bits are then a parse error)."""
    try:
        for _ in ijson.basic_parse(io.BytesIO(bytes(raw)), use_float=True):
            pass
    except (ijson.JSONError, UnicodeDecodeError, ValueError):
        raise FallBack from None


def _splits(text: bytes) -> tuple[str, ...] | None:
    try:
        value = SPLITS.decode(text).split_ids
    except msgspec.MsgspecError:
        return None
    return () if value is UNSET else split_names(value)


def _occurrence(name: str, text: bytes, reader) -> Occurrence:
    """One entry read, converted when wanted (else only checked for repeated keys)."""
    scanned = _scanned(name, text, reader) if scan_entry is not None else None
    if scanned is not None:
        return scanned
    if b"\\u" in text:
        raise FallBack
    video = VIDEO.decode(text)
    if text.count(b":") != _count_keys(video):
        raise FallBack
    split_ids = split_names([] if video.split_ids is UNSET else video.split_ids)
    findings = Findings()
    arrays = reader.build(_gather(name, video), findings) if reader.want(name, split_ids) \
        else None
    return Occurrence(name, split_ids, findings, arrays)


def _scanned(name: str, text: bytes, reader) -> Occurrence | None:
    """One entry read by the compiled scanner, or None where it cannot vouch for the result."""
    parts = scan_entry(text, MAX_FRAMES)
    if parts is None:
        return None
    (numf, width, height, split_list, annotated_frames, frames, boxes, uid_index, uids, labels,
     tubes) = parts
    split_ids, findings = tuple(split_list), Findings()
    if not reader.want(name, split_ids):
        return Occurrence(name, split_ids, findings, None)
    annotated = np.zeros(numf, dtype=bool)
    annotated[np.frombuffer(annotated_frames, dtype=np.int64) - 1] = True
    decoded = functools.cache(lambda: VIDEO.decode(text))  # read only for messages

    def box_keys() -> tuple[list[str], list[str]]:
        gathered = _gather(name, decoded())
        return gathered.frame_keys, gathered.box_keys

    def tube_keys(t: str) -> list[str]:
        entries = getattr(decoded(), f"{t}_tubes")
        return [] if entries is UNSET else list(entries)

    video = reader.build_scanned(Scanned(
        name, split_ids, numf, width, height, annotated,
        boxes=np.frombuffer(boxes, dtype=np.float64).reshape(-1, 4),
        frames=np.frombuffer(frames, dtype=np.int32),
        uid_index=np.frombuffer(uid_index, dtype=np.int32), first_uids=uids,
        label_ids={t: (np.frombuffer(rows, dtype=np.int64), np.frombuffer(ids, dtype=np.int64))
                   for t, (rows, ids) in zip(LABEL_TYPES, labels, strict=True)},
        tubes={t: (np.frombuffer(tube_labels, dtype=np.int64),
                   np.frombuffer(sizes, dtype=np.int64), np.frombuffer(refs, dtype=np.int64))
               for t, (tube_labels, sizes, refs) in zip(LABEL_TYPES, tubes, strict=True)},
        box_keys=box_keys, tube_keys=tube_keys), findings)
    return None if video is None else Occurrence(name, split_ids, findings, video)


def _count_keys(video: Video) -> int:
    """The keys of the objects an entry decoded into (with a key given twice, fewer than the
    colons of its text)."""
    count = _untyped_keys(video, VIDEO_ANY) + len(video.frames) + sum(
        getattr(video, name) is not UNSET for name in ("numf", "frames", "split_ids"))
    fields = list(map(FRAME_FIELDS, video.frames.values()))  # one tuple per frame
    count += len(fields) * len(Frame.__struct_fields__) - sum(f.count(UNSET) for f in fields)
    count += sum(len(frame.annos) for frame in video.frames.values() if frame.annos) \
        * (1 + len(BOX_FIELDS_NAMES))
    for t in LABEL_TYPES:
        tubes = getattr(video, f"{t}_tubes")
        if tubes is not UNSET:
            count += 1 + len(tubes) * 3 + sum(len(tube.annos) for tube in tubes.values())
    return count


def _untyped_keys(obj: Struct, fields: tuple[str, ...]) -> int:
    """The untyped ``fields`` of ``obj`` given in the text, and the keys inside them."""
    count = 0
    for name in fields:
        value = getattr(obj, name)
        if value is not UNSET:
            count += 1 + (_any_keys(value) if isinstance(value, (dict, list)) else 0)
    return count


def _any_keys(value) -> int:
    """The keys inside an untyped value (FallBack at an integer beyond 64 bits, see Int64)."""
    if isinstance(value, dict):
        return len(value) + sum(map(_any_keys, value.values()))
    if isinstance(value, list):
        return sum(map(_any_keys, value))
    if type(value) is int and not 1 - 2 ** 63 <= value < 2 ** 63:
        raise FallBack
    return 0


def _gather(name: str, video: Video) -> Gathered:
    """The fields of a decoded entry as the stream reader gathers them; FallBack where its
    checks would refuse one (the stream reader then says how)."""
    numf = video.numf
    if not 0 <= numf <= MAX_FRAMES:
        raise FallBack
    split_ids = [] if video.split_ids is UNSET else video.split_ids
    annotated = np.zeros(numf, dtype=bool)
    numbers, frames, annos = [], [], []  # of the frames with boxes
    width = height = 0
    for key, frame in video.frames.items():
        n = frame_number(key, numf)
        if n < 0:
            raise FallBack
        annotated[n - 1] = frame.annotated is not UNSET and frame.annotated > 0
        if not width:
            width, height = (0 if v is UNSET else v for v in (frame.width, frame.height))
            if width < 0 or height < 0:
                raise FallBack
        if frame.annos:
            numbers.append(n)
            frames.append(key)
            annos.append(frame.annos)
    sizes = list(map(len, annos))
    boxes: list[Box] = list(chain.from_iterable(map(dict.values, annos)))
    box_frames = list(chain.from_iterable(map(repeat, numbers, sizes)))
    frame_keys = list(chain.from_iterable(map(repeat, frames, sizes)))
    box_keys = list(chain.from_iterable(annos))

    def tubes(t: str):
        entries = getattr(video, f"{t}_tubes")
        return () if entries is UNSET else ((k, e.label_id, e.annos) for k, e in entries.items())

    return Gathered(name, split_ids, numf, width, height, annotated, list(map(BOX_ATTRS, boxes)),
                    box_frames, frame_keys, box_keys, tubes, typed=True)
