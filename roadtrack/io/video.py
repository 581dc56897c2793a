"""Video sources read with OpenCV as streams: video files and ROAD-style frame folders.

Frames are numbered from 1 as in the annotations and handed out as RGB uint8 (H, W, 3) arrays.
A frame folder's frame n is its image numbered n (``00005.jpg`` is frame 5): an image missing
from the folder is a frame the source does not have (one warning names them), never filled by
shifting the later ones. A clip is T frames ``stride`` apart around a key frame; frames before the
first or after the last repeat the edge frame (padding), a missing frame the nearest present one,
so every frame can be a key frame.

A video that cannot be opened or that breaks mid-way raises :class:`VideoReadError`, a UserError
that says at which frame, so that a batch can note it and go on with the other videos.
"""
from __future__ import annotations

import mimetypes
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import UserError
from .names import video_name

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".qt", ".avi", ".mkv", ".webm", ".mpg", ".mpeg",
                    ".vob", ".wmv", ".asf", ".flv", ".ts", ".mts", ".m2ts", ".3gp")
"""Containers taken as videos: each decodes with the FFmpeg inside OpenCV (tests/test_video.py)."""
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
DEFAULT_FPS = 10.0
"""ROAD++ is annotated at 10 fps; frame folders carry no rate of their own."""
MOST_MISSING = 0.99
"""A frame folder whose image numbers leave more frames missing than this share is refused: its
names are not frame numbers (timestamps, say), and stepping through the gaps would never end."""


class VideoReadError(UserError):
    """A video that cannot be opened (``frame`` None) or that breaks at ``frame``."""

    def __init__(self, reason: str, path: str | Path, frame: int | None = None):
        super().__init__(reason, path)
        self.reason, self.frame = reason, frame


@dataclass(frozen=True)
class VideoInfo:
    name: str
    path: Path
    fps: float
    width: int
    height: int
    num_frames: int  # the last frame's number (a frame folder may miss some before it)


class VideoSource:
    """One video: its facts (``info``), the frames it has (``numbers``), its frames in order."""

    info: VideoInfo

    @property
    def name(self) -> str:
        return self.info.name

    def numbers(self) -> np.ndarray:
        """(F,) int64 ascending: the numbers of the frames this source has."""
        return np.arange(1, self.info.num_frames + 1)

    def frames(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (frame number, RGB frame) for its frames start..stop (inclusive, 1-based)."""
        raise NotImplementedError

    def read_frames(self, numbers: Iterable[int]) -> dict[int, np.ndarray]:
        """Frames by number (any order, repeats allowed), read in one forward pass."""
        wanted = {int(n) for n in numbers}
        if not wanted:
            return {}
        return {n: f for n, f in self.frames(min(wanted), max(wanted)) if n in wanted}


class VideoFile(VideoSource):
    """A video file decoded with ``cv2.VideoCapture``; its container says how many frames."""

    def __init__(self, path: str | Path, name: str | None = None):
        path = Path(path)
        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                raise VideoReadError("cannot open video (missing, unreadable or not a video)",
                                     path)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            fps = float(cap.get(cv2.CAP_PROP_FPS)) or DEFAULT_FPS
            ok, _ = cap.read()
        finally:
            cap.release()
        if not ok or count <= 0 or width <= 0 or height <= 0:
            raise VideoReadError("video has no decodable frames", path)
        self.info = VideoInfo(name or video_name(path), path, fps, width, height, count)

    def frames(self, start: int = 1, stop: int | None = None):
        info = self.info
        stop = info.num_frames if stop is None else min(stop, info.num_frames)
        cap = cv2.VideoCapture(str(info.path))
        try:
            if start > 1:
                cap.set(cv2.CAP_PROP_POS_FRAMES, start - 1)
            for n in range(start, stop + 1):
                try:
                    ok, frame = cap.read()
                except cv2.error as err:
                    raise VideoReadError(f"decoding failed at frame {n} (OpenCV: {err.err})",
                                         info.path, n) from None
                if not ok:
                    raise VideoReadError(f"decoding failed at frame {n} of {info.num_frames}",
                                         info.path, n)
                if frame.shape[:2] != (info.height, info.width):
                    raise VideoReadError(f"frame {n} is {frame.shape[1]}x{frame.shape[0]}, the "
                                         f"video {info.width}x{info.height}", info.path, n)
                if n == info.num_frames and cap.grab():
                    warnings.warn(f"{info.path}: video holds more frames than the {n} its "
                                  f"container declares; frames after {n} are not read",
                                  stacklevel=2)
                yield n, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()


class FrameFolder(VideoSource):
    """A folder of numbered images (``00001.jpg``, ...), as ROAD's ``rgb-images/<video>/``.

    Frame n is the image whose name ends in the number n; a folder numbered from 0 (``00000.jpg``)
    is read as frames 1, 2, ... with a warning, as frames are numbered from 1 everywhere here.
    """

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS, name: str | None = None):
        path = Path(path)
        self.by_number = numbered_images(path)  # frame number -> image, ascending
        self.files = list(self.by_number.values())
        first = next(iter(self.by_number))
        image = _read_image(self.by_number[first], first)
        height, width = image.shape[:2]
        last = next(reversed(self.by_number))
        self.info = VideoInfo(name or video_name(path), path, fps, width, height, last)

    def numbers(self) -> np.ndarray:
        return np.fromiter(self.by_number, dtype=np.int64, count=len(self.by_number))

    def frames(self, start: int = 1, stop: int | None = None, reduce: int = 1):
        """As :meth:`VideoSource.frames`; ``reduce`` (2, 4 or 8) decodes the images at that
        fraction of their size (for JPEGs OpenCV's reduced decoding, a fraction of the time)."""
        stop = self.info.num_frames if stop is None else min(stop, self.info.num_frames)
        for n in self.by_number:
            if start <= n <= stop:
                yield n, self.read(n, reduce)

    def read(self, n: int, reduce: int = 1) -> np.ndarray:
        path = self.by_number.get(n)
        if path is None:
            raise VideoReadError(f"frame folder has no image for frame {n}", self.info.path, n)
        frame = _read_image(path, n, reduce)
        height, width = self.info.height, self.info.width
        # a reduced JPEG rounds its sides up, other reduced images down
        sizes = {(-(-height // reduce), -(-width // reduce)), (height // reduce, width // reduce)}
        if frame.shape[:2] not in sizes:
            raise VideoReadError(f"image is {frame.shape[1]}x{frame.shape[0]}, the folder's first "
                                 f"({self.files[0].name}) {self.info.width}x{self.info.height}",
                                 path, n)
        return frame

    def read_frames(self, numbers):
        return {n: self.read(n) for n in sorted({int(n) for n in numbers})}


_NUMBER = re.compile(r"(\d+)$")


def numbered_images(folder: Path) -> dict[int, Path]:
    """{frame number: image} of a frame folder, ascending; warns once about missing numbers.

    The number is the one that ends the image's name (``00005.jpg``, ``frame_5.png``: 5). A
    name without one, two images of one number, or numbers that leave nearly every frame missing
    raise VideoReadError.
    """
    try:
        images = [p for p in folder.iterdir()
                  if p.suffix.lower() in FRAME_EXTENSIONS and not p.name.startswith(".")]
    except OSError as err:
        raise VideoReadError(f"cannot read folder ({err.strerror})", folder) from None
    if not images:
        raise VideoReadError("frame folder holds no images", folder)
    by_number: dict[int, Path] = {}
    for image in sorted(images):
        match = _NUMBER.search(image.stem)
        if match is None:
            raise VideoReadError("image name holds no frame number (expected 00001.jpg, ...)",
                                 image)
        n = int(match.group(1))
        if n in by_number:
            raise VideoReadError(f"{by_number[n].name} and {image.name} are both frame {n}",
                                 folder)
        by_number[n] = image
    if 0 in by_number:
        warnings.warn(f"{folder}: images are numbered from 0; read as frames 1, 2, ... (frame n "
                      "is image n-1)", stacklevel=2)
        by_number = {n + 1: p for n, p in by_number.items()}
    numbers = sorted(by_number)
    missing = numbers[-1] - len(numbers)
    if missing > MOST_MISSING * numbers[-1]:
        raise VideoReadError(f"image numbers run to {numbers[-1]} with {len(numbers)} images: "
                             "names are not frame numbers (expected 00001.jpg, ...)", folder)
    if missing:
        warnings.warn(f"{folder}: {missing} of frames 1-{numbers[-1]} have no image "
                      f"({_ranges(_gaps(numbers))}); those frames are skipped, the others keep "
                      "their numbers", stacklevel=2)
    return {n: by_number[n] for n in numbers}


def _gaps(numbers: list[int]) -> list[tuple[int, int]]:
    """The runs (first, last) of numbers in 1..numbers[-1] missing from ascending ``numbers``."""
    runs, previous = [], 0
    for n in numbers:
        if n > previous + 1:
            runs.append((previous + 1, n - 1))
        previous = n
    return runs


def _ranges(runs: list[tuple[int, int]], shown: int = 5) -> str:
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:shown])
    return text + (f" and {len(runs) - shown} more runs" if len(runs) > shown else "")


_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}
_REDUCED_GREY = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
                 4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}


def _read_image(path: Path, n: int, reduce: int = 1, grey: bool = False) -> np.ndarray:
    """RGB (H, W, 3), or grey (H, W) with ``grey``, of frame ``n``'s image (``reduce``: decoded
    at 1/2, 1/4 or 1/8 of its size);
    unreadable, undecodable or cut-off JPEGs raise."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise VideoReadError(f"cannot read image ({err.strerror})", path, n) from None
    try:
        frame = cv2.imdecode(data, (_REDUCED_GREY if grey else _REDUCED)[reduce]) \
            if len(data) else None
    except cv2.error as err:  # a header claiming a huge image, say
        raise VideoReadError(f"cannot decode image (OpenCV: {err.err})", path, n) from None
    if frame is None:
        raise VideoReadError("cannot decode image", path, n)
    if bytes(data[:2]) == b"\xff\xd8" and not bytes(data[-64:]).rstrip(b"\0").endswith(b"\xff\xd9"):
        raise VideoReadError("JPEG is cut off (no end-of-image marker)", path, n)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if frame.ndim == 3 else frame


def grey_frames(source: VideoSource, reduce: int = 1, stop: int | None = None
                ) -> Iterator[tuple[int, np.ndarray]]:
    """(frame number, grey uint8 (H', W')) for frames 1..stop, each side shrunk ``reduce`` times
    (1, 2, 4 or 8; rounded up). A frame folder's JPEGs are decoded at that size directly (the
    cheap pass camera-motion estimation needs); video files are decoded whole, then shrunk."""
    if isinstance(source, FrameFolder):
        for n, path in source.by_number.items():
            if stop is not None and n > stop:
                break
            yield n, _read_image(path, n, reduce, grey=True)
        return
    for n, frame in source.frames(1, stop):
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if reduce > 1:
            size = (-(-grey.shape[1] // reduce), -(-grey.shape[0] // reduce))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        yield n, grey


def open_video(path: str | Path, name: str | None = None) -> VideoSource:
    """A video file or a frame folder."""
    path = Path(path)
    if path.is_dir():
        return FrameFolder(path, name=name)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise UserError(f"not a video file (expected one of {', '.join(VIDEO_EXTENSIONS)})", path)
    return VideoFile(path, name)


def find_videos(path: str | Path, names: Iterable[str] | None = None) -> list[tuple[str, Path]]:
    """(name, file or frame folder) of the videos under ``path`` by name, none opened yet.

    ``path`` may be a video file, a folder of video files and/or frame folders, or a dataset root
    holding ``rgb-images/`` (preferred: the exact frames annotations were made on) or ``videos/``.
    A name is the lower-cased stem (see :func:`~roadtrack.io.names.video_name`); two inputs of one
    name are an error naming both. Files of other video containers get one warning. ``names``
    keeps only those videos (any case) and raises when one is missing.
    """
    path = Path(path)
    if not path.exists():
        raise UserError("no such file or folder", path)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise UserError(f"not a video file (expected one of {', '.join(VIDEO_EXTENSIONS)})",
                            path)
        inputs = [path]
    else:
        for sub in ("rgb-images", "videos"):
            if (path / sub).is_dir() and any((path / sub).iterdir()):
                path = path / sub
                break
        inputs = _folder_inputs(path)
    if not inputs:
        raise UserError("no videos (mp4, avi, mkv, mov, webm, ...) or frame folders found", path)
    by_name: dict[str, Path] = {}
    for item in inputs:
        name = video_name(item)
        if name in by_name:
            raise UserError(f"{by_name[name].name} and {item.name} are both video {name!r} "
                            "(names are lower-cased stems); rename one", path)
        by_name[name] = item
    if names is not None:
        names = list(dict.fromkeys(n.lower() for n in names))
        missing = [n for n in names if n not in by_name]
        if missing:
            raise UserError(f"videos not found: {', '.join(missing[:5])}", path)
        return [(n, by_name[n]) for n in names]
    return sorted(by_name.items())


def _folder_inputs(folder: Path) -> list[Path]:
    """The video files and frame folders in ``folder``; warns about other video containers."""
    try:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as err:
        raise UserError(f"cannot read folder ({err.strerror})", folder) from None
    inputs, others = [], []
    for entry in entries:
        if entry.is_dir():
            if _holds_images(entry):
                inputs.append(entry)
        elif entry.suffix.lower() in VIDEO_EXTENSIONS:
            inputs.append(entry)
        elif (mimetypes.guess_type(entry.name)[0] or "").startswith("video/"):
            others.append(entry.name)
    if others:
        warnings.warn(f"{folder}: skipped {len(others)} files in video containers not read here "
                      f"({', '.join(others[:5])}{' ...' if len(others) > 5 else ''}); convert "
                      f"them to one of {', '.join(VIDEO_EXTENSIONS)}", stacklevel=3)
    return inputs


def _holds_images(folder: Path) -> bool:
    """Whether ``folder`` looks like a frame folder (an unreadable one does: opening says why)."""
    try:
        return any(p.suffix.lower() in FRAME_EXTENSIONS for p in folder.iterdir())
    except OSError:
        return True


def discover_videos(path: str | Path, names: Iterable[str] | None = None,
                    failures: list | None = None) -> list[VideoSource]:
    """The videos under ``path`` (see :func:`find_videos`), opened, by name.

    A video that cannot be opened raises VideoReadError, or, when a ``failures`` list is given,
    is left out and appended to it as (name, VideoReadError).
    """
    sources = []
    for name, item in find_videos(path, names):
        try:
            sources.append(open_video(item, name))
        except VideoReadError as err:
            if failures is None:
                raise
            failures.append((name, err))
    return sources


def nearest_frames(numbers: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(n,) each of ``numbers`` replaced by the nearest of ``present`` (ascending; ties: later)."""
    right = np.minimum(np.searchsorted(present, numbers), len(present) - 1)  # (n,)
    left = np.maximum(right - 1, 0)
    closer_left = np.abs(numbers - present[left]) < np.abs(present[right] - numbers)
    return np.where(closer_left, present[left], present[right])


def clip_frame_numbers(key: int, num_frames: int, length: int, stride: int = 1) -> np.ndarray:
    """(length,) frame numbers of the clip around ``key``, edge-padded into 1..num_frames.

    The key frame sits at index ``length // 2``.
    """
    offsets = (np.arange(length) - length // 2) * stride
    return np.clip(key + offsets, 1, num_frames)


def iter_clips(source: VideoSource, length: int, stride: int = 1,
               keys: Iterable[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Stream (key frame, clip (T, H, W, 3) RGB uint8) for ascending ``keys`` (default: every
    frame the source has). A frame the source lacks is replaced by the nearest one it has.

    Frames are decoded once, in order, and only the window the next clips need stays in memory.
    """
    num = source.info.num_frames
    present = source.numbers()  # (F,)
    keys = present.tolist() if keys is None else sorted(int(k) for k in keys)
    if not keys:
        return
    gapped = len(present) < num
    buffer: dict[int, np.ndarray] = {}
    stream = source.frames(1, num)
    last_read = 0
    for key in keys:
        numbers = clip_frame_numbers(key, num, length, stride)
        if gapped:
            numbers = nearest_frames(numbers, present)
        while last_read < numbers.max():
            last_read, frame = next(stream)
            buffer[last_read] = frame
        for old in [n for n in buffer if n < numbers.min()]:
            del buffer[old]
        yield key, np.stack([buffer[n] for n in numbers])
