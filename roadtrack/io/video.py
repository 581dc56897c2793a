"""Video sources read with OpenCV as streams: video files and ROAD-style frame folders.

Frames are numbered from 1 as in the annotations and handed out as RGB uint8 (H, W, 3) arrays.
A clip is T frames ``stride`` apart around a key frame; frames before the first or after the last
repeat the edge frame (padding), so every frame can be a key frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from ..errors import UserError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov")
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
DEFAULT_FPS = 10.0
"""ROAD++ is annotated at 10 fps; frame folders carry no rate of their own."""


@dataclass(frozen=True)
class VideoInfo:
    name: str
    path: Path
    fps: float
    width: int
    height: int
    num_frames: int


class VideoSource:
    """One video: its facts (``info``) and its frames in order (``frames``)."""

    info: VideoInfo

    @property
    def name(self) -> str:
        return self.info.name

    def frames(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (frame number, RGB frame) for frames start..stop (inclusive, 1-based)."""
        raise NotImplementedError

    def read_frames(self, numbers: Iterable[int]) -> dict[int, np.ndarray]:
        """Frames by number (any order, repeats allowed), read in one forward pass."""
        wanted = set(int(n) for n in numbers)
        if not wanted:
            return {}
        return {n: f for n, f in self.frames(min(wanted), max(wanted)) if n in wanted}


class VideoFile(VideoSource):
    """A video file decoded with ``cv2.VideoCapture``."""

    def __init__(self, path: str | Path, name: str | None = None):
        path = Path(path)
        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                raise UserError("cannot open video (missing, unreadable or not a video)", path)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            fps = float(cap.get(cv2.CAP_PROP_FPS)) or DEFAULT_FPS
            ok, _ = cap.read()
        finally:
            cap.release()
        if not ok or count <= 0 or width <= 0 or height <= 0:
            raise UserError("video has no decodable frames", path)
        self.info = VideoInfo(name or path.stem.lower(), path, fps, width, height, count)

    def frames(self, start: int = 1, stop: int | None = None):
        stop = self.info.num_frames if stop is None else min(stop, self.info.num_frames)
        cap = cv2.VideoCapture(str(self.info.path))
        try:
            if start > 1:
                cap.set(cv2.CAP_PROP_POS_FRAMES, start - 1)
            for n in range(start, stop + 1):
                ok, frame = cap.read()
                if not ok:
                    raise UserError(f"decoding failed at frame {n} of {self.info.num_frames}",
                                    self.info.path)
                yield n, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()


class FrameFolder(VideoSource):
    """A folder of numbered images (``00001.jpg``, ...), as ROAD's ``rgb-images/<video>/``."""

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS):
        path = Path(path)
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS) \
            if path.is_dir() else []
        if not files:
            raise UserError("frame folder holds no images", path)
        self.files = files
        first = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise UserError("cannot decode image", files[0])
        height, width = first.shape[:2]
        self.info = VideoInfo(path.name.lower(), path, fps, width, height, len(files))

    def frames(self, start: int = 1, stop: int | None = None):
        stop = self.info.num_frames if stop is None else min(stop, self.info.num_frames)
        for n in range(start, stop + 1):
            yield n, self.read(n)

    def read(self, n: int) -> np.ndarray:
        path = self.files[n - 1]
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise UserError("cannot decode image", path)
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def read_frames(self, numbers):
        return {n: self.read(n) for n in sorted(set(int(n) for n in numbers))}


def open_video(path: str | Path) -> VideoSource:
    """A video file or a frame folder."""
    path = Path(path)
    if path.is_dir():
        return FrameFolder(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise UserError(f"not a video file (expected one of {', '.join(VIDEO_EXTENSIONS)})", path)
    return VideoFile(path)


def discover_videos(path: str | Path, names: Iterable[str] | None = None) -> list[VideoSource]:
    """The videos under ``path``, sorted by name.

    ``path`` may be a video file, a folder of video files and/or frame folders, or a dataset root
    holding ``rgb-images/`` (preferred: the exact frames annotations were made on) or ``videos/``.
    ``names`` keeps only those videos and raises when one is missing.
    """
    path = Path(path)
    if not path.exists():
        raise UserError("no such file or folder", path)
    if path.is_file():
        sources = [open_video(path)]
    else:
        for sub in ("rgb-images", "videos"):
            if (path / sub).is_dir() and any((path / sub).iterdir()):
                path = path / sub
                break
        entries = sorted(path.iterdir())
        sources = [open_video(p) for p in entries
                   if p.suffix.lower() in VIDEO_EXTENSIONS
                   or (p.is_dir() and any(q.suffix.lower() in FRAME_EXTENSIONS for q in p.iterdir()))]
    if not sources:
        raise UserError("no videos (mp4, avi, mkv, mov) or frame folders found", path)
    by_name = {s.name: s for s in sources}
    if names is not None:
        names = list(names)
        missing = [n for n in names if n not in by_name]
        if missing:
            raise UserError(f"videos not found: {', '.join(missing[:5])}", path)
        return [by_name[n] for n in names]
    return [by_name[n] for n in sorted(by_name)]


def clip_frame_numbers(key: int, num_frames: int, length: int, stride: int = 1) -> np.ndarray:
    """(length,) frame numbers of the clip around ``key``, edge-padded into 1..num_frames.

    The key frame sits at index ``length // 2``.
    """
    offsets = (np.arange(length) - length // 2) * stride
    return np.clip(key + offsets, 1, num_frames)


def iter_clips(source: VideoSource, length: int, stride: int = 1,
               keys: Iterable[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Stream (key frame, clip (T, H, W, 3) RGB uint8) for ascending ``keys`` (default: all).

    Frames are decoded once, in order, and only the window the next clips need stays in memory.
    """
    num = source.info.num_frames
    keys = list(range(1, num + 1)) if keys is None else sorted(int(k) for k in keys)
    if not keys:
        return
    buffer: dict[int, np.ndarray] = {}
    stream = source.frames(1, num)
    last_read = 0
    for key in keys:
        numbers = clip_frame_numbers(key, num, length, stride)
        while last_read < numbers.max():
            last_read, frame = next(stream)
            buffer[last_read] = frame
        for old in [n for n in buffer if n < numbers.min()]:
            del buffer[old]
        yield key, np.stack([buffer[n] for n in numbers])
