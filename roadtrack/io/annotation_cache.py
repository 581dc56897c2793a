"""A cache of a parsed annotation file: its arrays in one file beside it (or, where that folder
cannot be written, in the user's cache folder), reused while the file is unchanged.

The cache is data only: flat numpy arrays of every video one after another (per-video counts in a
JSON description), laid out as the file is mapped into memory (:func:`write_arrays`), so a load
reads no more than it checks and the videos are views into the map; labels and tubes are made
per video when first used. It is keyed by the annotation's size, modification time and a hash of
its head and tail, has a CRC-32 of its arrays and is checked for consistency when read: a cache
that fails is rebuilt, with one warning. Set ``ROADTRACK_NO_CACHE`` (to anything but ``0`` or
empty) to neither read nor write it.
"""
from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import warnings
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..errors import InputWarning
from ..labels import LABEL_TYPES
from .annotation_checks import Findings
from .annotation_video import LabelPairs, Occurrence, TubeRuns, VideoAnnotation
from .atomic import atomic_path

VERSION = 3
"""Format of the cache; a cache of another version is rebuilt."""
SUFFIX = ".roadtrack-cache"
HASHED_BYTES = 1 << 20
"""Bytes hashed at the head and at the tail of the annotation file."""
ENV = "ROADTRACK_NO_CACHE"
MAGIC = b"RTCACHE\n"
ALIGN = 64
"""Arrays start at multiples of this many bytes."""
KINDS = "biufU"
"""The kinds of array a cache holds (no objects)."""


class CorruptCache(Exception):
    """The cache file is not what :func:`save_cache` writes."""


def cache_enabled() -> bool:
    return os.environ.get(ENV, "") in ("", "0")


def cache_paths(path: Path) -> list[Path]:
    """Where the cache of ``path`` may be: beside it, then in the user's cache folder."""
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "roadtrack"
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return [path.with_name(path.name + SUFFIX), folder / f"{digest}-{path.name}{SUFFIX}"]


def file_key(path: Path) -> dict:
    """What identifies the content of ``path``: size, modification time, head and tail hash."""
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(HASHED_BYTES))
        f.seek(max(stat.st_size - HASHED_BYTES, 0))
        digest.update(f.read(HASHED_BYTES))
    return {"version": VERSION, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "head_tail_sha256": digest.hexdigest()}


def load_cached(path: Path) -> list[Occurrence] | None:
    """The video entries of ``path`` from its cache; None when there is none for this content
    (warns once when one is unreadable)."""
    key = file_key(path)
    for cache in cache_paths(path):
        if not cache.is_file():
            continue
        try:
            return _read(cache, key)
        except _Stale:
            continue
        except (CorruptCache, OSError, ValueError, KeyError, TypeError, IndexError) as err:
            warnings.warn(f"{cache}: unreadable annotation cache ({_first_line(err)}); "
                          f"rebuilding it", InputWarning, stacklevel=3)
            with_unlink(cache)
    return None


def save_cache(path: Path, parsed: list[Occurrence]) -> None:
    """Write the cache of ``path`` (all entries converted) beside it, else in the user's cache
    folder; quietly nowhere when neither can be written or a video name is repeated."""
    if any("video_twice" in occ.findings.counts or occ.video is None for occ in parsed):
        return
    meta = _describe(parsed)
    meta["key"] = file_key(path)
    videos = [occ.video for occ in parsed if occ.video is not None]
    for cache in cache_paths(path):
        try:
            with atomic_path(cache) as tmp:
                write_arrays(tmp, meta, _arrays(videos))
        except OSError:
            continue
        for place in cache_paths(path):  # the format-2 caches, no longer read
            with_unlink(place.with_name(place.name + ".npz"))
        return


def write_arrays(path: Path, meta: dict, arrays: Iterable[tuple[str, np.ndarray]]) -> None:
    """Write ``arrays`` (made one at a time) and ``meta``: the magic line, each array's bytes at
    a multiple of :data:`ALIGN`, then a JSON header (``meta``, and dtype, shape and offset of each
    array, and the CRC-32 of the bytes before it), its length and CRC-32 (8 and 4 bytes) and the
    magic line again."""
    table: dict[str, list] = {}
    crc = zlib.crc32(MAGIC)
    with open(path, "wb") as f:
        f.write(MAGIC)
        for name, array in arrays:
            pad = b"\0" * (-f.tell() % ALIGN)
            data = np.ascontiguousarray(array).reshape(-1).view(np.uint8).data
            table[name] = [array.dtype.str, list(array.shape), f.tell() + len(pad)]
            f.write(pad)
            f.write(data)
            crc = zlib.crc32(data, zlib.crc32(pad, crc))
        header = json.dumps({"meta": meta, "arrays": table, "crc32": crc}).encode()
        f.write(header + len(header).to_bytes(8, "little")
                + zlib.crc32(header).to_bytes(4, "little") + MAGIC)


def read_arrays(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``meta`` and the arrays of a file :func:`write_arrays` wrote, the arrays mapped (pages
    are read when touched; writing into them changes only this process's copy); CorruptCache
    when it is not such a file."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < 2 * len(MAGIC) + 12:
            raise CorruptCache("too short")
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    trailer = len(data) - len(MAGIC) - 12
    size = int.from_bytes(data[trailer: trailer + 8], "little")
    if data[:len(MAGIC)] != MAGIC or data[-len(MAGIC):] != MAGIC or size > trailer - len(MAGIC):
        raise CorruptCache("not a roadtrack annotation cache, or cut short")
    header = data[trailer - size: trailer]
    if zlib.crc32(header) != int.from_bytes(data[trailer + 8: trailer + 12], "little"):
        raise CorruptCache("damaged description")
    described = json.loads(header)
    end = trailer - size
    arrays = {}
    for name, (dtype, shape, offset) in described["arrays"].items():
        kind = np.dtype(dtype)
        count = math.prod(shape)
        if kind.kind not in KINDS or kind.hasobject or min(shape, default=0) < 0 \
                or not len(MAGIC) <= offset <= end - count * kind.itemsize:
            raise CorruptCache(f"array {name!r} is not as described")
        arrays[name] = np.frombuffer(data, kind, count, offset).reshape(shape)
    if zlib.crc32(memoryview(data)[:end]) != described["crc32"]:
        raise CorruptCache("damaged arrays (CRC-32)")
    return described["meta"], arrays


class _Stale(Exception):
    """The cache is of another content of the file (or another version of the format)."""


def with_unlink(cache: Path) -> None:
    try:
        cache.unlink()
    except OSError:
        pass


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _describe(parsed: list[Occurrence]) -> dict:
    """The JSON part of the cache: per entry its findings, per video its sizes."""
    meta: dict = {"videos": [], "entries": [], "classes": dict.fromkeys(LABEL_TYPES, 0)}
    for occ in parsed:
        meta["entries"].append({"name": occ.name, "split_ids": occ.split_ids,
                                "findings": [[k, c, occ.findings.first[k]]
                                             for k, c in occ.findings.counts.items()]})
        v = occ.video
        assert v is not None
        meta["videos"].append({"name": v.name, "split_ids": list(v.split_ids), "numf": v.numf,
                               "width": v.width, "height": v.height, "boxes": v.num_boxes,
                               "uids": len(v.uids),
                               "labels": {t: len(_pairs(v, t)[0]) for t in LABEL_TYPES},
                               "tubes": {t: len(v.tubes[t]) for t in LABEL_TYPES}})
        meta["classes"] = {t: v.labels.pairs[t][2] if isinstance(v.labels, LabelPairs)
                           else v.labels[t].shape[1] for t in LABEL_TYPES}
    return meta


def _pairs(video: VideoAnnotation, t: str) -> tuple[np.ndarray, np.ndarray]:
    """(L,) box rows and (L,) classes of a video's ``t`` labels."""
    if isinstance(video.labels, LabelPairs):
        rows, cols, _ = video.labels.pairs[t]
        return rows, cols
    rows, cols = np.nonzero(video.labels[t])
    return rows, cols


def _arrays(videos: list[VideoAnnotation]) -> Iterator[tuple[str, np.ndarray]]:
    """The arrays of every video one after another (labels as (box, class) pairs, box rows and
    tube rows counted within their video), made one at a time."""
    def cat(parts: list[np.ndarray], dtype, shape=(0,)) -> np.ndarray:
        return np.concatenate(parts).astype(dtype, copy=False) if parts \
            else np.zeros(shape, dtype)

    yield "annotated", cat([v.annotated for v in videos], bool)
    yield "frames", cat([v.frames for v in videos], np.int32)
    yield "boxes", cat([v.boxes for v in videos], np.float64, (0, 4))
    yield "track_ids", cat([v.track_ids for v in videos], np.int32)
    yield "uids", np.array([u for v in videos for u in v.uids], dtype=str)
    for t in LABEL_TYPES:
        yield f"label_rows_{t}", cat([_pairs(v, t)[0] for v in videos], np.int32)  # (L,)
        yield f"label_cols_{t}", cat([_pairs(v, t)[1] for v in videos], np.int16)  # (L,)
        tubes = [tube for v in videos for tube in v.tubes[t]]
        yield f"tube_labels_{t}", np.array([tube.label for tube in tubes], dtype=np.int64)
        yield f"tube_sizes_{t}", np.array([len(tube.rows) for tube in tubes], dtype=np.int64)
        yield f"tube_rows_{t}", cat([tube.rows for tube in tubes], np.int32)


def _read(cache: Path, key: dict) -> list[Occurrence]:
    meta, arrays = read_arrays(cache)
    if meta.get("key") != key:
        raise _Stale
    return _unpack(meta, arrays)


def _unpack(meta: dict, arrays: dict[str, np.ndarray]) -> list[Occurrence]:
    """The entries of :func:`save_cache`'s arrays, checked for consistency: views into them,
    labels and tubes made per video when first used."""
    infos = meta["videos"]
    counts = {k: np.array([int(v[k]) for v in infos], dtype=np.int64)
              for k in ("numf", "boxes", "uids")}
    ends = {k: np.concatenate([[0], np.cumsum(c)]).tolist() for k, c in counts.items()}
    boxes, frames, track_ids = arrays["boxes"], arrays["frames"], arrays["track_ids"]
    _expect(arrays["annotated"], bool, (ends["numf"][-1],))
    _expect(frames, np.int32, (ends["boxes"][-1],))
    _expect(boxes, np.float64, (ends["boxes"][-1], 4))
    _expect(track_ids, np.int32, (ends["boxes"][-1],))
    _expect(arrays["uids"], np.dtype("U"), (ends["uids"][-1],))
    if (arrays["annotated"].view(np.uint8) > 1).any() \
            or not (np.isfinite(boxes).all() and ((boxes >= 0) & (boxes <= 1)).all()) \
            or _outside(frames, counts["boxes"], counts["numf"], 1) \
            or _outside(track_ids, counts["boxes"], counts["uids"]):
        raise CorruptCache("boxes, frames or track ids out of range")
    labels, tubes = {}, {}
    for t in LABEL_TYPES:
        classes = int(meta["classes"][t])
        per_video = np.array([v["labels"][t] for v in infos], dtype=np.int64)  # (V,)
        rows, cols = arrays[f"label_rows_{t}"], arrays[f"label_cols_{t}"]  # (L,), (L,)
        _expect(rows, np.int32, (int(per_video.sum()),))
        _expect(cols, np.int16, rows.shape)
        if _outside(rows, per_video, counts["boxes"]) or _outside(cols, [len(cols)], [classes]):
            raise CorruptCache(f"bad {t} labels")
        labels[t] = (rows, cols, classes, np.concatenate([[0], np.cumsum(per_video)]).tolist())
        per_video = np.array([v["tubes"][t] for v in infos], dtype=np.int64)  # (V,)
        sizes = arrays[f"tube_sizes_{t}"]
        _expect(arrays[f"tube_labels_{t}"], np.int64, (int(per_video.sum()),))
        _expect(sizes, np.int64, (int(per_video.sum()),))
        if (sizes < 0).any() or _outside(arrays[f"tube_labels_{t}"], [len(sizes)], [classes]):
            raise CorruptCache(f"bad {t} tubes")
        rows = arrays[f"tube_rows_{t}"]
        _expect(rows, np.int32, (int(sizes.sum()),))
        tube_ends = np.concatenate([[0], np.cumsum(per_video)])  # (V + 1,)
        done = np.concatenate([[0], np.cumsum(sizes)])  # (T + 1,) rows before each tube
        rows_per_video = done[tube_ends[1:]] - done[tube_ends[:-1]]  # (V,)
        if _outside(rows, rows_per_video, counts["boxes"]):
            raise CorruptCache(f"{t} tubes out of range")
        tubes[t] = (arrays[f"tube_labels_{t}"], done, rows, tube_ends.tolist())
    videos: dict[str, VideoAnnotation] = {}
    uids = arrays["uids"].tolist()
    for i, info in enumerate(infos):
        a, b = ends["boxes"][i], ends["boxes"][i + 1]
        video = VideoAnnotation(
            name=info["name"], split_ids=tuple(info["split_ids"]), numf=info["numf"],
            width=info["width"], height=info["height"],
            annotated=arrays["annotated"][ends["numf"][i]: ends["numf"][i + 1]],
            frames=frames[a:b], boxes=boxes[a:b], track_ids=track_ids[a:b],
            uids=uids[ends["uids"][i]: ends["uids"][i + 1]],
            labels=LabelPairs(b - a, {t: (rows[at[i]: at[i + 1]], cols[at[i]: at[i + 1]], c)
                                      for t, (rows, cols, c, at) in labels.items()}),
            tubes=TubeRuns({t: (lab[at[i]: at[i + 1]], starts[at[i]: at[i + 1] + 1], rows)
                            for t, (lab, starts, rows, at) in tubes.items()}))
        videos[video.name] = video
    parsed = []
    for entry in meta["entries"]:
        findings = Findings()
        for kind, count, first in entry["findings"]:
            findings.add(str(kind), int(count), str(first))
        split_ids = None if entry["split_ids"] is None else tuple(entry["split_ids"])
        parsed.append(Occurrence(entry["name"], split_ids, findings, videos[entry["name"]]))
    return parsed


def _outside(values: np.ndarray, sizes, bounds, low: int = 0) -> bool:
    """Whether any of ``values``, which run one part after another of ``sizes`` values each, is
    outside ``low``..its part's bound - 1 + ``low``."""
    return bool(((values < low) | (values >= np.repeat(np.asarray(bounds) + low, sizes))).any())


def _expect(array: np.ndarray, dtype, shape: tuple) -> None:
    if array.dtype.kind != np.dtype(dtype).kind or (array.dtype != dtype and
                                                     np.dtype(dtype).kind != "U") \
            or array.shape != shape:
        raise CorruptCache(f"an array of {array.dtype} {array.shape}, not {shape}")
