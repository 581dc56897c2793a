"""A cache of a parsed annotation file: its arrays in one ``.npz`` beside it (or, where that
folder cannot be written, in the user's cache folder), reused while the file is unchanged.

The cache is data only (numpy arrays, a JSON description; read with ``allow_pickle=False``). It
is keyed by the file's size, modification time and a hash of its head and tail, and checked for
consistency when read: a cache that fails is rebuilt, with one warning. Set ``ROADTRACK_NO_CACHE``
(to anything but ``0`` or empty) to neither read nor write it.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path

import numpy as np

from ..errors import InputWarning
from ..labels import LABEL_TYPES
from .annotation_checks import Findings
from .annotation_video import Occurrence, Tube, VideoAnnotation
from .atomic import atomic_path

VERSION = 2
"""Format of the cache; a cache of another version is rebuilt."""
SUFFIX = ".roadtrack-cache.npz"
HASHED_BYTES = 1 << 20
"""Bytes hashed at the head and at the tail of the annotation file."""
ENV = "ROADTRACK_NO_CACHE"


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
        except (CorruptCache, OSError, ValueError, KeyError, TypeError, EOFError,
                zipfile.BadZipFile) as err:
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
            with atomic_path(cache, suffix=".npz") as tmp:
                _write_npz(tmp, chain([("meta", np.frombuffer(json.dumps(meta).encode(),
                                                             dtype=np.uint8))], _arrays(videos)))
            return
        except OSError:
            continue


def _write_npz(path: Path, arrays: Iterable[tuple[str, np.ndarray]]) -> None:
    """What ``np.savez`` writes, one array at a time (each made only when written)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays:
            with zf.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, array, allow_pickle=False)


class _Stale(Exception):
    """The cache is of another content of the file."""


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
    meta: dict = {"videos": [], "entries": []}
    for occ in parsed:
        meta["entries"].append({"name": occ.name, "split_ids": occ.split_ids,
                                "findings": [[k, c, occ.findings.first[k]]
                                             for k, c in occ.findings.counts.items()]})
        v = occ.video
        assert v is not None
        meta["videos"].append({"name": v.name, "split_ids": list(v.split_ids), "numf": v.numf,
                               "width": v.width, "height": v.height, "boxes": v.num_boxes,
                               "uids": len(v.uids),
                               "tubes": {t: len(v.tubes[t]) for t in LABEL_TYPES}})
    return meta


def _arrays(videos: list[VideoAnnotation]) -> Iterator[tuple[str, np.ndarray]]:
    """The arrays of every video, concatenated (labels as (box, class) pairs), made one at a
    time."""
    def cat(parts: list[np.ndarray], dtype, shape=(0,)) -> np.ndarray:
        return np.concatenate(parts).astype(dtype, copy=False) if parts \
            else np.zeros(shape, dtype)

    yield "annotated", cat([v.annotated for v in videos], bool)
    yield "frames", cat([v.frames for v in videos], np.int32)
    yield "boxes", cat([v.boxes for v in videos], np.float64, (0, 4))
    yield "track_ids", cat([v.track_ids for v in videos], np.int32)
    yield "uids", np.array([u for v in videos for u in v.uids], dtype=str)
    for t in LABEL_TYPES:
        classes = videos[0].labels[t].shape[1] if videos else 0
        tubes = [tube for v in videos for tube in v.tubes[t]]
        rows, cols = np.nonzero(cat([v.labels[t] for v in videos], bool, (0, classes)))
        yield f"label_rows_{t}", rows.astype(np.int32)  # (L,) box of each label, ascending
        yield f"label_cols_{t}", cols.astype(np.int16)  # (L,) its class
        yield f"label_count_{t}", np.array([classes])
        yield f"tube_labels_{t}", np.array([tube.label for tube in tubes], dtype=np.int64)
        yield f"tube_sizes_{t}", np.array([len(tube.rows) for tube in tubes], dtype=np.int64)
        yield f"tube_rows_{t}", cat([tube.rows for tube in tubes], np.int64)


def _read(cache: Path, key: dict) -> list[Occurrence]:
    with open(cache, "rb") as f, np.load(f, allow_pickle=False) as npz:
        meta = json.loads(npz["meta"].tobytes())
        if meta.get("key") != key:
            raise _Stale
        arrays = {name: npz[name] for name in npz.files if name != "meta"}
    return _unpack(meta, arrays)


def _unpack(meta: dict, arrays: dict[str, np.ndarray]) -> list[Occurrence]:
    """The entries of :func:`_pack`'s output, checked for consistency."""
    infos = meta["videos"]
    counts = {k: np.array([int(v[k]) for v in infos], dtype=np.int64)
              for k in ("numf", "boxes", "uids")}
    total = {k: int(c.sum()) for k, c in counts.items()}
    ends = {k: np.concatenate([[0], np.cumsum(c)]).tolist() for k, c in counts.items()}
    boxes, frames, track_ids = arrays["boxes"], arrays["frames"], arrays["track_ids"]
    _expect(arrays["annotated"], bool, (total["numf"],))
    _expect(frames, np.int32, (total["boxes"],))
    _expect(boxes, np.float64, (total["boxes"], 4))
    _expect(track_ids, np.int32, (total["boxes"],))
    _expect(arrays["uids"], np.dtype("U"), (total["uids"],))
    video_of_box = np.repeat(np.arange(len(infos)), counts["boxes"])  # (N,)
    if not (np.isfinite(boxes).all() and ((boxes >= 0) & (boxes <= 1)).all()) \
            or ((frames < 1) | (frames > counts["numf"][video_of_box])).any() \
            or ((track_ids < 0) | (track_ids >= counts["uids"][video_of_box])).any():
        raise CorruptCache("boxes, frames or track ids out of range")
    hot, tubes = {}, {}
    for t in LABEL_TYPES:
        classes = int(arrays[f"label_count_{t}"][0])
        rows, cols = arrays[f"label_rows_{t}"], arrays[f"label_cols_{t}"]  # (L,), (L,)
        _expect(rows, np.int32, (rows.size,))
        _expect(cols, np.int16, (rows.size,))
        if ((rows < 0) | (rows >= total["boxes"]) | (cols < 0) | (cols >= classes)).any():
            raise CorruptCache(f"bad {t} labels")
        hot[t] = np.zeros((total["boxes"], classes), dtype=bool)  # (N, C)
        hot[t][rows, cols] = True
        per_video = np.array([v["tubes"][t] for v in infos], dtype=np.int64)  # (V,)
        labels, sizes = arrays[f"tube_labels_{t}"], arrays[f"tube_sizes_{t}"]
        rows = arrays[f"tube_rows_{t}"]
        _expect(labels, np.int64, (int(per_video.sum()),))
        _expect(sizes, np.int64, labels.shape)
        if (labels < 0).any() or (labels >= classes).any() or (sizes < 0).any():
            raise CorruptCache(f"bad {t} tubes")
        _expect(rows, np.int64, (int(sizes.sum()),))
        bound = np.repeat(counts["boxes"][np.repeat(np.arange(len(infos)), per_video)], sizes)
        if ((rows < 0) | (rows >= bound)).any():
            raise CorruptCache(f"{t} tubes out of range")
        starts = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        tubes[t] = [Tube(label=label, rows=rows[a:b])
                    for label, a, b in zip(labels.tolist(), starts[:-1], starts[1:], strict=True)]
    videos: dict[str, VideoAnnotation] = {}
    tube_at = dict.fromkeys(LABEL_TYPES, 0)
    uids = arrays["uids"].tolist()
    for i, info in enumerate(infos):
        a, b = ends["boxes"][i], ends["boxes"][i + 1]
        video = VideoAnnotation(
            name=info["name"], split_ids=tuple(info["split_ids"]), numf=info["numf"],
            width=info["width"], height=info["height"],
            annotated=arrays["annotated"][ends["numf"][i]: ends["numf"][i + 1]],
            frames=frames[a:b], boxes=boxes[a:b], track_ids=track_ids[a:b],
            uids=uids[ends["uids"][i]: ends["uids"][i + 1]],
            labels={t: hot[t][a:b] for t in LABEL_TYPES})
        for t in LABEL_TYPES:
            n = info["tubes"][t]
            video.tubes[t] = tubes[t][tube_at[t]: tube_at[t] + n]
            tube_at[t] += n
        videos[video.name] = video
    parsed = []
    for entry in meta["entries"]:
        findings = Findings()
        for kind, count, first in entry["findings"]:
            findings.add(str(kind), int(count), str(first))
        split_ids = None if entry["split_ids"] is None else tuple(entry["split_ids"])
        parsed.append(Occurrence(entry["name"], split_ids, findings, videos[entry["name"]]))
    return parsed


def _expect(array: np.ndarray, dtype, shape: tuple) -> None:
    if array.dtype.kind != np.dtype(dtype).kind or (array.dtype != dtype and
                                                     np.dtype(dtype).kind != "U") \
            or array.shape != shape:
        raise CorruptCache(f"an array of {array.dtype} {array.shape}, not {shape}")
