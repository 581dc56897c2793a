"""The AV's own actions of a ROAD++ annotation file, read without the rest of it.

msgspec decodes only the fields named below (``all_av_action_labels``; per video ``numf`` and
per frame ``annotated`` and ``av_action_ids``) and skips every other value unbuilt, so even the
1 GB trainval file costs seconds and little memory beyond its mapped bytes.
"""
from __future__ import annotations

import mmap
from pathlib import Path

import msgspec

from ..errors import UserError


class _Frame(msgspec.Struct):
    annotated: int | float = 0
    av_action_ids: list[int] = []


class _Video(msgspec.Struct):
    numf: int
    frames: dict[str, _Frame] = {}


class _Document(msgspec.Struct):
    db: dict[str, _Video]
    all_av_action_labels: list[str] | None = None


_DECODER = msgspec.json.Decoder(_Document)


def read_av_actions(path: str | Path, videos: list[str]
                    ) -> tuple[list[str], dict[str, tuple[int, dict[int, list[int]]]]] | None:
    """``(all_av_action_labels, {video: (numf, {frame number: av_action_ids})})`` for the
    annotated frames of ``videos``; None when the file names no AV actions. A file that cannot
    be read this way, or a video it lacks, is one :class:`UserError` naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            start = 3 if data[:3] == b"\xef\xbb\xbf" else 0  # a UTF-8 byte-order mark
            doc = _DECODER.decode(memoryview(data)[start:])
    except (OSError, ValueError, msgspec.MsgspecError) as err:
        raise UserError(f"cannot read the AV actions ({err})", path) from None
    if doc.all_av_action_labels is None:
        return None
    out = {}
    for video in videos:
        if video not in doc.db:
            raise UserError(f"cannot read the AV actions: no video {video!r}", path)
        entry = doc.db[video]
        out[video] = (entry.numf, {int(key): frame.av_action_ids
                                   for key, frame in entry.frames.items()
                                   if frame.annotated > 0 and key.isdigit()})
    return doc.all_av_action_labels, out
