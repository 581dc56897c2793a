"""``roadtrack detect``: every frame of every video through the detector, one artifact per video.

Each frame is the key frame of its own clip (T frames around it, the ends padded); frames are
decoded ahead in a thread and copied to the device once, into a ring from which the clips of a
batch are gathered there (:mod:`roadtrack.engine.frames`). Clips go through the model in
batches, the last stage's queries are filtered by agentness and per-class NMS (class = top agent
label), and ``detections/<video>.npz`` is written atomically once the whole video is done.
Videos whose artifact exists are skipped, so an interrupted run resumes; under ``torchrun`` each
rank takes every world-th video. A video that cannot be opened or that breaks mid-way gets no
artifact and is listed in the summary's failures (``roadtrack.batch``); the others
go on (``strict``: the first one raises).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.ops import batched_nms, roi_align
from tqdm import tqdm

from ..batch import Failure, record_failures
from ..errors import UserError
from ..io.artifacts import artifact_path, save_stage
from ..io.checkpoints import load_model_state
from ..io.runs import DETECTIONS, PipelineRun, TrainingRun
from ..io.video import VideoReadError, VideoSource, discover_videos
from ..labels import BOX_TYPES
from ..models import build_detector, normalize_clip
from ..models.backbones.frozen_bn import fold_frozen_bn
from ..report import table
from . import distributed as D
from .checkpoint import check_labels, load_checkpoint
from .colour import box_colours
from .config import DetectConfig, RunConfig, run_config_from_dict
from .frames import FrameRing, clip_positions, prefetch, ring_capacity, to_device
from .runlog import versions


@dataclass
class LoadedDetector:
    model: nn.Module
    normalize: Callable[[torch.Tensor], torch.Tensor]
    config: RunConfig
    labels: dict
    weights: Path
    note: str = ""  # where the model and the detect settings came from, for the user


def load_detector(run: str | Path | None = None, weights: str | Path | None = None,
                  config: RunConfig | None = None, config_path: str | Path | None = None,
                  which: str | None = None, builder=None) -> LoadedDetector:
    """The trained detector of a run folder (``run``) or of ``weights`` with its ``config``.

    With ``run``, the model and data settings are the run's own; a ``config`` given beside it
    (``roadtrack run --config CONFIG --weights RUN``) supplies the detect settings and must
    describe the same model. With ``weights``, ``config`` supplies both and its model section must
    match the one the checkpoint was trained with. ``which`` (best | last) overrides
    ``detect.checkpoint`` for a run; a run without best.pt falls back to last.pt.
    """
    if run is not None:
        run = TrainingRun(run)
        saved = run.read()
        cfg = run_config_from_dict(saved["config"], run.record_path)
        note = f"model and data settings of {run.record_path}"
        if config is not None:
            _same_model(dataclasses.asdict(config.model), dataclasses.asdict(cfg.model),
                        config_path, f"the run's ({run.record_path})")
            cfg = cfg.replace(detect=config.detect)
            note += f", detect settings of {config_path or 'the config'}"
        weights = run.checkpoint(which or cfg.detect.checkpoint)
    else:
        if weights is None:
            raise UserError("no detector: neither a training run folder nor a checkpoint")
        if config is None:
            raise UserError("a checkpoint file needs the config it was trained with", weights)
        cfg = config
        note = f"model and detect settings of {config_path}"
    state = load_checkpoint(weights)
    if run is not None:
        check_labels(state["labels"], saved.get("labels", {}), weights, what="the run")
    if builder is None:
        builder = (build_detector, normalize_clip)
    build_model, normalize = builder
    labels = state["labels"]
    # before building
    _check_classes(dataclasses.asdict(cfg.model.classes), labels, config_path or weights)
    model = build_model(cfg.model)
    _check_classes(getattr(model, "labels_shape", {}), labels, config_path or weights)
    if run is None and isinstance(state["config"].get("model"), dict):
        _same_model(dataclasses.asdict(cfg.model), state["config"]["model"], config_path,
                    f"the checkpoint's ({weights})")
    load_model_state(model, state["model"], weights)
    fold_frozen_bn(model)  # inference only: frozen BatchNorm into the convolutions before it
    return LoadedDetector(model.eval(), normalize, cfg, labels, Path(weights),
                          f"detector {weights}: {note}")


def _check_classes(shape: dict, labels: dict, path) -> None:
    """The model's class counts must be those of the checkpoint's label space."""
    want = {t: len(labels.get(f"{t}_labels", [])) for t in BOX_TYPES}
    if dict(shape) != want:
        raise UserError(f"label space does not match the checkpoint: the config's model predicts "
                        f"{dict(shape)} classes, the checkpoint was trained on {want}", path)


def _same_model(mine: dict, theirs: dict, path, whose: str) -> None:
    """Refuse a config whose model section differs from ``theirs`` (the loss settings aside:
    they do not change a trained model)."""
    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in d.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    a, b = flat(mine), flat(theirs)
    for d in (a, b):  # the weights depend on the norm built, not on where training started
        if d.get("backbone.norm") == "auto":
            d["backbone.norm"] = "frozen_bn" if d.get("backbone.pretrained") else "bn"
        d.pop("backbone.pretrained", None)
        d.pop("backbone.freeze_at", None)
    for key in a:
        if key in b and a[key] != b[key] and not key.startswith("loss."):
            raise UserError(f"model.{key}: {a[key]!r} here but {b[key]!r} in {whose} model "
                            "section; the trained detector needs its own", path)


class ClipDetector:
    """Batches of normalised clips in, per-clip detections (numpy, source pixels) out.

    ``half``: fp16 weights and inputs (on CUDA only); ``channels_last``: the model's weights in
    channels_last_3d (CUDA only; the ring then hands out clips in that layout too); ``compile``:
    the model through ``torch.compile`` (CUDA only).
    """

    def __init__(self, model: nn.Module, normalize, settings: DetectConfig,
                 device: torch.device, half: bool, channels_last: bool = False,
                 compile: bool = False):
        self.settings, self.device = settings, device
        cuda = device.type == "cuda"
        self.half = half and cuda
        self.channels_last = channels_last and cuda
        self.dtype = torch.float16 if self.half else torch.float32
        self.model = model.to(device).eval()
        if self.half:
            self.model.half()
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last_3d)
        self.forward = torch.compile(self.model) if compile and cuda else self.model
        self.normalize = normalize

    @torch.no_grad()
    def __call__(self, clips: torch.Tensor, sizes: list[tuple[int, int]]) -> list[dict]:
        """clips (B, T, H, W, 3) uint8; sizes: (width, height) of each clip's source frame."""
        x = self.normalize(clips.to(self.device, non_blocking=True))  # (B, 3, T, H, W)
        found = self.detect(x.to(self.dtype), sizes)
        add_colours(found, clips[:, clips.shape[1] // 2].numpy(), sizes)
        return found

    @torch.no_grad()
    def detect(self, x: torch.Tensor, sizes: list[tuple[int, int]]) -> list[dict]:
        """Normalised (B, 3, T, H, W) clips on the device -> detections without colours."""
        return postprocess(self.forward(x), sizes, self.settings)


def add_colours(found: list[dict], keys, sizes: list[tuple[int, int]]) -> None:
    """Add each detection's colour descriptor, read on the B (H, W, 3) uint8 key frames (the
    model's input pixels); ``sizes``: (w, h) of the source frames."""
    height, width = keys[0].shape[:2]
    for result, key, (w, h) in zip(found, keys, sizes, strict=True):
        to_input = np.array([width / w, height / h, width / w, height / h], np.float32)
        result["colour"] = box_colours(key, result["boxes"] * to_input)


def postprocess(out: dict, sizes: list[tuple[int, int]], settings: DetectConfig) -> list[dict]:
    """Last-stage queries -> kept detections per clip: agentness threshold, per-class NMS, top-k.

    ``out``: boxes (B, Q, 4) normalised, scores (B, Q), agent/action/loc (B, Q, C),
    embeddings (B, Q, D). Returns per clip: boxes (n, 4) float32 in source pixels, scores (n,),
    agent/action/loc (n, C) float32, embeddings (n, D) float16, sorted by score. Everything
    stays on the device until one copy of the batch's results to the host; NMS and the choice
    of the kept rows each wait for the device once.
    """
    scores = out["scores"].float()  # (B, Q)
    B, Q = scores.shape
    classes = out["agent"].shape[-1]
    scale = to_device(np.array([[w, h, w, h] for w, h in sizes], np.float32),
                      scores.device)  # (B, 4)
    boxes = out["boxes"].float().clamp(0, 1) * scale[:, None]  # (B, Q, 4) pixels
    sides = boxes[..., 2:] - boxes[..., :2]  # (B, Q, 2): boxes squeezed to a frame edge vanish
    keep = (scores >= settings.score_threshold) & (sides >= 1.0).all(-1)  # (B, Q)
    clip = torch.arange(B, device=scores.device)[:, None].expand(B, Q)
    # NMS never mixes clips or classes; queries dropped above share one extra group of their own
    groups = torch.where(keep, clip * classes + out["agent"].float().argmax(-1), B * classes)
    flat_boxes, flat_scores = boxes.reshape(-1, 4), scores.reshape(-1)
    if settings.nms_iou < 1.0:
        kept = batched_nms(flat_boxes, flat_scores, groups.reshape(-1), settings.nms_iou)
    else:
        kept = torch.argsort(flat_scores, descending=True)
    kept = kept[_first_per_clip(kept // Q, keep.reshape(-1)[kept], B, settings.max_per_frame)]
    fields = {"boxes": flat_boxes[kept], "scores": flat_scores[kept, None],
              **{k: out[k].reshape(B * Q, -1)[kept].float() for k in BOX_TYPES},
              "embeddings": out["embeddings"].reshape(B * Q, -1)[kept].half().float(),
              "index": kept[:, None].float()}  # (K, width) each, float32
    if "features" in out:
        fields["roi_features"] = roi_features(out, kept // Q, kept % Q).float()
    host = torch.cat(list(fields.values()), dim=1).cpu().numpy()  # the batch's one copy
    columns = np.cumsum([0] + [v.shape[1] for v in fields.values()])
    parts = {k: host[:, a:b] for k, a, b in zip(fields, columns[:-1], columns[1:], strict=True)}
    parts["scores"] = parts["scores"][:, 0]
    for name in ("embeddings", "roi_features"):  # float16 values, exact in float32
        if name in parts:
            parts[name] = parts[name].astype(np.float16)
    clips = parts.pop("index")[:, 0].astype(np.int64) // Q
    return [{k: np.ascontiguousarray(v[clips == b]) for k, v in parts.items()}
            for b in range(B)]


def _first_per_clip(clips: torch.Tensor, valid: torch.Tensor, batch: int,
                    most: int) -> torch.Tensor:
    """(K,) bool: the first ``most`` valid rows of each clip; ``clips`` (K,) of rows in order."""
    mine = (clips[:, None] == torch.arange(batch, device=clips.device)) & valid[:, None]  # (K, B)
    rank = (mine.cumsum(0) * mine).sum(1)  # (K,) 1-based place among its clip's valid rows
    return valid & (rank <= most)


def roi_features(out: dict, clips: torch.Tensor, queries: torch.Tensor,
                 size: int = 2) -> torch.Tensor:
    """(n, D) float16: the key frame's feature map of each query's clip pooled in its box
    (RoIAlign, then mean); ``clips``, ``queries``: (n,) indices. The event head reads these
    along a track.
    """
    features = out["features"].float()  # (B, D, Hf, Wf)
    stride = float(out["feature_stride"])
    height, width = features.shape[-2] * stride, features.shape[-1] * stride
    boxes = out["boxes"][clips, queries].float().clamp(0, 1) * torch.tensor(
        [width, height, width, height], device=features.device)  # (n, 4) input pixels
    rois = torch.cat([clips[:, None].to(boxes.dtype), boxes], dim=1)  # (n, 5)
    pooled = roi_align(features, rois, output_size=size, spatial_scale=1.0 / stride,
                       aligned=True)  # (n, D, size, size)
    return pooled.mean(dim=(2, 3)).half()


@dataclass
class DetectSummary:
    videos: int
    skipped: int
    frames: int
    detections: int
    seconds: float
    failures: list[Failure] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def table(self) -> str:
        return table([[self.videos, self.skipped, len(self.failures), self.frames,
                       self.detections, round(self.seconds, 1), round(self.fps, 1)]],
                     ["videos", "skipped", "failed", "frames", "detections", "seconds",
                      "frames/s"])


def detect_videos(detector: LoadedDetector, videos: str | Path, out: str | Path,
                  names: list[str] | None = None, progress: bool = True,
                  device: str = "auto", strict: bool = False) -> DetectSummary:
    """Write ``detections/<video>.npz`` into ``out`` for each video under ``videos``.

    Videos that cannot be opened or that break are left out and listed in the summary's
    ``failures`` (and in ``out/run.yaml``); ``strict`` raises at the first instead.
    """
    unopened: list | None = None if strict else []
    sources = discover_videos(videos, names, unopened)
    failures = [Failure.of(err, name, "detect", err.path) for name, err in unopened or []]
    return detect_sources(detector, sources, out, videos, failures, progress, device, strict)


def detect_sources(detector: LoadedDetector, sources: list[VideoSource], out: str | Path,
                   videos: str | Path, failures: list[Failure] = (), progress: bool = True,
                   device: str = "auto", strict: bool = False) -> DetectSummary:
    """:func:`detect_videos` on opened ``sources`` (found under ``videos``; ``failures``: the ones
    that would not open)."""
    cfg = detector.config
    size = cfg.detect_size
    dist = D.setup(device)  # the caller ends the process group (D.teardown)
    if dist.main:
        _record_stage(Path(out), detector, videos)
    half = {"auto": True, "on": True, "off": False}.get(cfg.detect.half)
    if half is None:
        raise UserError(f"config key 'detect.half' must be auto, on or off, "
                        f"got {cfg.detect.half!r}")
    runner = ClipDetector(detector.model, detector.normalize, cfg.detect, dist.device, half,
                          cfg.detect.channels_last, cfg.detect.compile)
    mine = sources[dist.rank::dist.world]
    todo = [s for s in mine if not artifact_path(out, DETECTIONS, s.name).exists()]
    bar = tqdm(total=sum(len(s.numbers()) for s in todo), desc="detect", unit="frame",
               disable=not (progress and dist.main), dynamic_ncols=True)
    started = time.perf_counter()
    done = frames = detections = 0
    broken: list[Failure] = []
    for source in todo:
        try:
            counts = _detect_video(runner, source, size, int(detector.model.num_frames),
                                   cfg.data.frame_step, cfg.detect.batch_size, Path(out), bar,
                                   cfg.detect.reduced_decode, cfg.detect.decode_threads)
        except VideoReadError as err:
            if strict:
                raise
            broken.append(Failure.of(err, source.name, "detect", source.info.path))
            continue
        done += 1
        frames += counts[0]
        detections += counts[1]
    bar.close()
    totals = D.all_sum(torch.tensor([done, len(mine) - len(todo), frames, detections],
                                    dtype=torch.float64))
    failures = list(failures) + D.all_gather_objects(broken)
    D.barrier()
    if dist.main:
        record_failures(out, failures, [s.name for s in sources] + [f.video for f in failures])
    return DetectSummary(videos=int(totals[0]), skipped=int(totals[1]), frames=int(totals[2]),
                         detections=int(totals[3]), seconds=time.perf_counter() - started,
                         failures=failures)


def _detect_video(runner: ClipDetector, source: VideoSource, size: tuple[int, int],
                  num_frames: int, frame_step: int, batch_size: int, out: Path,
                  bar, reduce: bool = False, threads: int = 1) -> tuple[int, int]:
    """Detect every frame of ``source`` and write its artifact; (frames, detections).

    Frames are decoded ahead in a thread, pushed once into a ring on the device and gathered
    into clips there; the colour descriptors of one batch are read in a second thread while the
    next batch runs.
    """
    info = source.info
    present = source.numbers()  # (F,) the key frames, in order
    positions = clip_positions(present, info.num_frames, num_frames, frame_step)  # (F, T)
    ring = FrameRing(ring_capacity(positions, batch_size), size, runner.device, runner.dtype,
                     runner.normalize, runner.channels_last)
    sizes = [(info.width, info.height)] * batch_size
    frames = prefetch(source, size, reduce=reduce, threads=threads)
    held: dict[int, np.ndarray] = {}  # position -> uint8 frame, until its clip's colours
    parts: list[tuple[int, dict]] = []
    with ThreadPoolExecutor(1, thread_name_prefix="colours") as colours:
        pending = []
        try:
            for start in range(0, len(present), batch_size):
                batch = positions[start: start + batch_size]  # (b, T)
                chunk: list[np.ndarray] = []
                while ring.pushed + len(chunk) <= batch.max():
                    frame = next(frames)[1]
                    held[ring.pushed + len(chunk)] = frame
                    chunk.append(frame)
                    if len(chunk) == ring.capacity:
                        ring.push(chunk)
                        chunk = []
                if chunk:
                    ring.push(chunk)
                found = runner.detect(ring.gather(batch), sizes[:len(batch)])
                keys = [held.pop(p) for p in range(start, start + len(batch))]
                pending.append(colours.submit(add_colours, found, keys, sizes[:len(batch)]))
                parts.extend(zip(present[start: start + len(batch)].tolist(), found,
                                 strict=True))
                bar.update(len(batch))
            for job in pending:
                job.result()
        finally:
            frames.close()
    fields = {k: np.concatenate([p[k] for _, p in parts]) for k in parts[0][1]}
    numbers = np.concatenate([np.full(len(p["scores"]), k, dtype=np.int32) for k, p in parts])
    save_stage(out, DETECTIONS, info.name, frames=numbers, **fields, width=info.width,
               height=info.height, fps=info.fps)
    return len(parts), len(numbers)


def _record_stage(out: Path, detector: LoadedDetector, videos) -> None:
    """Note the detect stage in ``out/run.yaml`` (created when absent), checking label spaces."""
    run = PipelineRun(out)
    content = run.read()
    labels = content.get("labels", detector.labels)
    check_labels(detector.labels, labels, run.record_path, what=f"the run in {out}")
    run.update(config=content.get("config", detector.config.to_dict()), labels=labels,
               detect={"weights": str(detector.weights.resolve()),
                       "videos": str(Path(videos).resolve()),
                       "settings": dataclasses.asdict(detector.config.detect),
                       "versions": versions()})
