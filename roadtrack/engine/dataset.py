"""Clips around annotated key frames of a ROAD/ROAD++ dataset, with their key-frame targets.

A dataset root holds the annotation JSON and the pixels, as frame folders
(``rgb-images/<video>/00001.jpg``) or video files (``videos/<video>.mp4``). Every frame a clip
needs is checked up front, so a missing video or frame is one clear error before training starts.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import UserError
from ..io.annotations import Annotation, VideoAnnotation
from ..io.video import VIDEO_EXTENSIONS, FrameFolder, VideoFile, VideoSource, clip_frame_numbers
from ..labels import BOX_TYPES
from .transforms import ClipTransform


def _frame_source(root: Path, video: str) -> VideoSource:
    folder = root / "rgb-images" / video
    if folder.is_dir():
        return FrameFolder(folder)
    for suffix in VIDEO_EXTENSIONS:
        path = root / "videos" / f"{video}{suffix}"
        if path.is_file():
            return VideoFile(path, name=video)
    raise UserError(f"video {video!r} named in the annotation has neither rgb-images/{video}/ "
                    f"nor videos/{video}.mp4", root)


def _check_frames(source: VideoSource, needed: np.ndarray) -> None:
    """Raise UserError unless ``source`` holds every frame in ``needed`` (1-based)."""
    if isinstance(source, FrameFolder):
        present = {p.stem for p in source.files}
        missing = [int(n) for n in needed if f"{n:05d}" not in present]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise UserError(f"missing frame {missing[0]:05d}.jpg{more} named in the annotation",
                            source.info.path)
    elif len(needed) and needed.max() > source.info.num_frames:
        raise UserError(f"video has {source.info.num_frames} frames, the annotation needs frame "
                        f"{int(needed.max())}", source.info.path)


class ClipDataset(Dataset):
    """Clips of ``num_frames`` frames centred on annotated key frames of ``videos``.

    An item is addressed by ``(index, seed)`` (the sampler's pairs; a plain index uses seed 0) and
    is a dict: ``clip`` (T, H, W, 3) uint8 RGB, ``boxes`` (n, 4) float32 normalised,
    ``agent``/``action``/``loc`` (n, C) float32 multi-hot, ``video`` and ``frame`` (1-based key).
    """

    def __init__(self, root: str | Path, annotation: Annotation, videos: list[str],
                 num_frames: int, transform: ClipTransform, frame_step: int = 1,
                 key_stride: int = 1):
        self.root = Path(root)
        self.videos: list[VideoAnnotation] = [annotation.videos[v] for v in videos]
        self.num_frames, self.frame_step = num_frames, frame_step
        self.transform = transform
        keys = []
        for i, video in enumerate(self.videos):
            frames = video.annotated_frames()[::max(1, key_stride)]
            keys.append(np.stack([np.full(len(frames), i), frames], axis=1))
        self.samples = np.concatenate(keys) if keys else np.zeros((0, 2), dtype=np.int64)
        self.sources = [_frame_source(self.root, v.name) for v in self.videos]
        self._check_frames()

    def _check_frames(self) -> None:
        for i, (video, source) in enumerate(zip(self.videos, self.sources, strict=True)):
            keys = self.samples[self.samples[:, 0] == i, 1]
            needed = np.unique(np.concatenate(
                [clip_frame_numbers(k, video.numf, self.num_frames, self.frame_step) for k in keys]
            )) if len(keys) else np.zeros(0, dtype=np.int64)
            _check_frames(source, needed)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item) -> dict:
        index, seed = item if isinstance(item, tuple) else (item, 0)
        video_index, key = (int(v) for v in self.samples[index])
        video = self.videos[video_index]
        numbers = clip_frame_numbers(key, video.numf, self.num_frames, self.frame_step)
        by_number = self.sources[video_index].read_frames(numbers)
        frames = np.stack([by_number[int(n)] for n in numbers])  # (T, H, W, 3) RGB
        rows = video.frames == key
        labels = {t: video.labels[t][rows].astype(np.float32) for t in BOX_TYPES}
        rng = np.random.default_rng(seed)
        frames, boxes, labels = self.transform(frames, video.boxes[rows], labels, rng)
        return {"clip": torch.from_numpy(np.ascontiguousarray(frames)),
                "boxes": torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float32)),
                **{t: torch.from_numpy(m) for t, m in labels.items()},
                "video": video.name, "frame": key}


def collate_clips(items: list[dict]) -> tuple[torch.Tensor, list[dict], list[tuple[str, int]]]:
    """Stack a batch: clips (B, T, H, W, 3) uint8, the B target dicts, (video, frame) keys."""
    clips = torch.stack([it["clip"] for it in items])
    targets = [{k: it[k] for k in ("boxes",) + BOX_TYPES} for it in items]
    return clips, targets, [(it["video"], it["frame"]) for it in items]
