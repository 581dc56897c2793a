"""Detect's data path: frames decoded ahead in a background thread, each converted and copied to
the device once into a ring, clips gathered on the device from the ring.

The former path built every key frame's T-frame clip on the CPU (T times the bytes of the video,
stacked, normalised and copied per key frame). Here a frame is decoded, resized and normalised
once; a clip is a gather of T ring slots, done where the model runs.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..io.video import FrameFolder, VideoSource, clip_frame_numbers, nearest_frames
from .transforms import resize_frames

_END = object()


def reduced_factor(source: tuple[int, int], target: tuple[int, int]) -> int:
    """The largest JPEG decode reduction (1, 2, 4 or 8) whose image is still at least ``target``
    (W, H) on both sides, so that the resize after it only shrinks."""
    for factor in (8, 4, 2):
        if source[0] // factor >= target[0] and source[1] // factor >= target[1]:
            return factor
    return 1


def prefetch(source: VideoSource, size: tuple[int, int], depth: int = 64,
             reduce: bool = False, threads: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """(frame number, RGB uint8 (H, W, 3) at ``size`` = (W, H)) of every frame of ``source``,
    decoded and resized up to ``depth`` frames ahead in the background (OpenCV releases the GIL).

    A video file decodes in one thread; a frame folder's images in ``threads`` threads, JPEGs
    larger than ``size`` at reduced scale (``reduce``). A read error is raised here, at the frame
    where it happened.
    """
    if isinstance(source, FrameFolder):
        info = source.info
        factor = reduced_factor((info.width, info.height), size) if reduce else 1
        return _folder_frames(source, size, factor, max(threads, 1), depth)
    return _ahead(source.frames(), size, depth, source.info.name)


def _folder_frames(source: FrameFolder, size: tuple[int, int], factor: int, threads: int,
                   depth: int) -> Iterator[tuple[int, np.ndarray]]:
    """A frame folder's images read, decoded and resized by a pool of threads, in order."""
    def load(n: int) -> np.ndarray:
        return resize_frames(source.read(n, factor)[None], size)[0]

    with ThreadPoolExecutor(threads, thread_name_prefix=f"decode {source.name}") as pool:
        jobs: deque = deque()
        try:
            for n in source.numbers().tolist():
                jobs.append((n, pool.submit(load, n)))
                if len(jobs) >= depth:
                    first, job = jobs.popleft()
                    yield first, job.result()
            while jobs:
                first, job = jobs.popleft()
                yield first, job.result()
        finally:
            for _, job in jobs:
                job.cancel()


def _ahead(frames: Iterator[tuple[int, np.ndarray]], size: tuple[int, int], depth: int,
           name: str) -> Iterator[tuple[int, np.ndarray]]:
    """``frames`` resized, produced by one background thread up to ``depth`` ahead."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work():
        try:
            for n, frame in frames:
                item = (n, resize_frames(frame[None], size)[0])
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_END)
        except BaseException as err:  # handed to the consumer
            buffer.put(err)

    thread = threading.Thread(target=work, name=f"decode {name}", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def clip_positions(present: np.ndarray, num_frames: int, length: int,
                   stride: int = 1) -> np.ndarray:
    """(F, length) int64: for the clip of each present frame (the key frames, in order), the
    positions in ``present`` of its frames (edge-padded, a missing frame's nearest present one),
    as :func:`roadtrack.io.video.iter_clips` builds them."""
    numbers = np.stack([clip_frame_numbers(int(k), num_frames, length, stride)
                        for k in present]) if len(present) else np.zeros((0, length), np.int64)
    if len(present) < num_frames:
        numbers = nearest_frames(numbers.ravel(), present).reshape(numbers.shape)
    return np.searchsorted(present, numbers)


def ring_capacity(positions: np.ndarray, batch: int) -> int:
    """Slots a ring needs so that every batch of ``batch`` consecutive clips is in it at once
    (each frame read only once, in order)."""
    span = 1
    for start in range(0, len(positions), batch):
        part = positions[start: start + batch]
        span = max(span, int(part.max()) - int(part.min()) + 1)
    return span


class FrameRing:
    """Normalised frames on the device in ``capacity`` slots; frame at position p in slot
    p % capacity.

    ``normalize``: uint8 (B, T, H, W, 3) -> (B, 3, T, H, W), applied to each frame once when it
    is pushed; when it is an affine map per channel (as ImageNet normalisation), it is applied
    in place in the slots, with no temporary tensors. ``channels_last``: slots are
    (C, H, W, 3) and a gathered batch is a channels_last_3d (B, 3, T, H, W) tensor; otherwise
    slots are (3, C, H, W) and the batch is contiguous.
    """

    def __init__(self, capacity: int, size: tuple[int, int], device: torch.device,
                 dtype: torch.dtype, normalize: Callable[[torch.Tensor], torch.Tensor],
                 channels_last: bool = False):
        width, height = size
        self.capacity, self.device, self.dtype = capacity, device, dtype
        self.normalize, self.channels_last = normalize, channels_last
        shape = (capacity, height, width, 3) if channels_last else (3, capacity, height, width)
        self.slots = torch.empty(shape, dtype=dtype, device=device)
        self.affine = _affine(normalize)
        if self.affine is not None:
            view = (3,) if channels_last else (3, 1, 1, 1)
            self.affine = tuple(v.to(device, dtype).view(view) for v in self.affine)
        self.pushed = 0  # frames pushed so far: positions 0 .. pushed-1

    def push(self, frames: list[np.ndarray] | np.ndarray) -> None:
        """Copy (H, W, 3) uint8 frames (the next positions) to the device, normalise, store.

        On a GPU they go up as one pinned batch; on the CPU each is copied into its slot (no
        temporary batch: large temporaries cost page faults on every allocation)."""
        n = len(frames)
        if n > self.capacity:
            raise ValueError(f"{n} frames do not fit a ring of {self.capacity}")
        if self.device.type == "cuda":
            # pinned blocks come from torch's caching host allocator, which keeps a block
            # until its asynchronous copy is done
            pinned = torch.from_numpy(np.stack(frames)).pin_memory()
            host = list(pinned.to(self.device, non_blocking=True).unbind(0))  # n x (H, W, 3)
        else:
            host = [torch.from_numpy(np.asarray(f)) for f in frames]
        first = self.pushed % self.capacity
        parts = [(first, min(n, self.capacity - first), 0)]  # (slot, count, frame) runs
        if parts[0][1] < n:
            parts.append((0, n - parts[0][1], parts[0][1]))
        if self.affine is None:  # any normaliser: (3, n, H, W) through it, then stored
            frames_t = self.normalize(torch.stack(host)[None])[0]
            for slot, count, start in parts:
                part = frames_t[:, start: start + count].to(self.dtype)
                self._run(slot, count).copy_(part.permute(1, 2, 3, 0) if self.channels_last
                                             else part)
        else:
            scale, shift = self.affine
            for slot, count, start in parts:
                dst = self._run(slot, count)
                for i in range(count):
                    frame = host[start + i]
                    if self.channels_last:
                        dst[i].copy_(frame)
                    else:
                        dst[:, i].copy_(frame.permute(2, 0, 1))
                dst.mul_(scale).add_(shift)
        self.pushed += n

    def _run(self, slot: int, count: int) -> torch.Tensor:
        """The slots slot .. slot+count-1 (a view)."""
        return self.slots[slot: slot + count] if self.channels_last \
            else self.slots[:, slot: slot + count]

    def gather(self, positions: np.ndarray) -> torch.Tensor:
        """(B, 3, T, H, W) clips of the (B, T) frame positions, which must be in the ring."""
        if positions.max() >= self.pushed or positions.min() < self.pushed - self.capacity:
            raise ValueError("clip frames outside the ring")
        index = to_device(positions % self.capacity, self.device)
        if self.channels_last:
            return self.slots[index].permute(0, 4, 1, 2, 3)  # (B, T, H, W, 3) -> (B, 3, T, H, W)
        B, T = positions.shape
        out = self.slots.new_empty(B, 3, T, *self.slots.shape[2:])
        for b in range(B):  # contiguous clips, one copy each
            torch.index_select(self.slots, 1, index[b], out=out[b])
        return out


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A small host array on ``device`` without waiting for it (pinned first on a GPU: a copy
    from pageable memory may wait for the stream)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def _affine(normalize: Callable[[torch.Tensor], torch.Tensor]
            ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(scale, shift) per channel when ``normalize`` maps uint8 v to v * scale + shift (checked
    on every value 0..255 of every channel), else None."""
    values = torch.arange(256, dtype=torch.uint8).view(1, 256, 1, 1, 1).expand(1, 256, 1, 1, 3)
    try:
        out = normalize(values.contiguous())[0, :, :, 0, 0].double()  # (3, 256)
    except Exception:  # noqa: BLE001 - a normaliser of another contract: used as it is
        return None
    if out.shape != (3, 256):
        return None
    shift = out[:, 0]
    scale = (out[:, 255] - shift) / 255
    guess = torch.arange(256, dtype=torch.float64) * scale[:, None] + shift[:, None]
    if not torch.allclose(guess, out, rtol=1e-5, atol=1e-5):
        return None
    return scale.float(), shift.float()
