"""``roadtrack detect``: every frame of every video through the detector, one artifact per video.

Each frame is the key frame of its own clip (T frames around it, the ends padded), clips go
through the model in batches, the last stage's queries are filtered by agentness and per-class
NMS (class = top agent label), and ``detections/<video>.npz`` is written atomically once the whole
video is done. Videos whose artifact exists are skipped, so an interrupted run resumes; under
``torchrun`` each rank takes every world-th video. A video that cannot be opened or that breaks
mid-way gets no artifact and is listed in the summary's failures (``roadtrack.batch``); the others
go on (``strict``: the first one raises).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
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
from ..io.video import VideoReadError, VideoSource, discover_videos, iter_clips
from ..labels import BOX_TYPES
from ..models import build_detector, normalize_clip
from ..models.backbones.frozen_bn import fold_frozen_bn
from ..report import table
from . import distributed as D
from .checkpoint import check_labels, load_checkpoint
from .colour import box_colours
from .config import DetectConfig, RunConfig, run_config_from_dict
from .runlog import versions
from .transforms import resize_frames


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
    """Batches of uint8 clips in, per-clip detections (numpy, source pixels) out."""

    def __init__(self, model: nn.Module, normalize, settings: DetectConfig,
                 device: torch.device, half: bool):
        self.settings, self.device = settings, device
        self.half = half and device.type == "cuda"
        self.model = model.to(device).eval()
        if self.half:
            self.model.half()
        self.normalize = normalize

    @torch.no_grad()
    def __call__(self, clips: torch.Tensor, sizes: list[tuple[int, int]]) -> list[dict]:
        """clips (B, T, H, W, 3) uint8; sizes: (width, height) of each clip's source frame."""
        x = self.normalize(clips.to(self.device, non_blocking=True))  # (B, 3, T, H, W)
        out = self.model(x.half() if self.half else x)
        found = postprocess(out, sizes, self.settings)
        height, width = clips.shape[2:4]
        keys = clips[:, clips.shape[1] // 2].numpy()  # (B, H, W, 3) the key frames, as input
        for result, key, (w, h) in zip(found, keys, sizes, strict=True):
            to_input = np.array([width / w, height / h, width / w, height / h], np.float32)
            result["colour"] = box_colours(key, result["boxes"] * to_input)
        return found


def postprocess(out: dict, sizes: list[tuple[int, int]], settings: DetectConfig) -> list[dict]:
    """Last-stage queries -> kept detections per clip: agentness threshold, per-class NMS, top-k.

    ``out``: boxes (B, Q, 4) normalised, scores (B, Q), agent/action/loc (B, Q, C),
    embeddings (B, Q, D). Returns per clip: boxes (n, 4) float32 in source pixels, scores (n,),
    agent/action/loc (n, C) float32, embeddings (n, D) float16, sorted by score.
    """
    scores = out["scores"].float()  # (B, Q)
    batch = scores.shape[0]
    scale = torch.tensor([[w, h, w, h] for w, h in sizes], dtype=torch.float32,
                         device=scores.device)  # (B, 4)
    boxes = out["boxes"].float().clamp(0, 1) * scale[:, None]  # (B, Q, 4) pixels
    sides = boxes[..., 2:] - boxes[..., :2]  # (B, Q, 2): boxes squeezed to a frame edge vanish
    keep = (scores >= settings.score_threshold) & (sides >= 1.0).all(-1)  # (B, Q)
    b_idx, q_idx = keep.nonzero(as_tuple=True)
    classes = out["agent"].float().argmax(-1)[b_idx, q_idx]  # (K,)
    groups = b_idx * out["agent"].shape[-1] + classes  # NMS never mixes clips or classes
    flat_boxes, flat_scores = boxes[b_idx, q_idx], scores[b_idx, q_idx]
    if settings.nms_iou < 1.0:
        kept = batched_nms(flat_boxes, flat_scores, groups, settings.nms_iou)
    else:
        kept = torch.argsort(flat_scores, descending=True)
    results = []
    for b in range(batch):
        rows = kept[b_idx[kept] == b][:settings.max_per_frame]
        qs = q_idx[rows]
        result = {
            "boxes": flat_boxes[rows].cpu().numpy().astype(np.float32),
            "scores": flat_scores[rows].cpu().numpy().astype(np.float32),
            **{k: out[k][b, qs].float().cpu().numpy() for k in BOX_TYPES},
            "embeddings": out["embeddings"][b, qs].float().cpu().numpy().astype(np.float16)}
        if "features" in out:
            result["roi_features"] = roi_features(out, b, qs)
        results.append(result)
    return results


def roi_features(out: dict, clip: int, queries: torch.Tensor, size: int = 2) -> np.ndarray:
    """(n, D) float16: the key frame's feature map pooled in each kept box (RoIAlign, then mean).

    The event head reads these along a track.
    """
    features = out["features"][clip: clip + 1].float()  # (1, D, Hf, Wf)
    stride = float(out["feature_stride"])
    height, width = features.shape[-2] * stride, features.shape[-1] * stride
    boxes = out["boxes"][clip, queries].float().clamp(0, 1) * torch.tensor(
        [width, height, width, height], device=features.device)  # (n, 4) input pixels
    pooled = roi_align(features, [boxes], output_size=size, spatial_scale=1.0 / stride,
                       aligned=True)  # (n, D, size, size)
    return pooled.mean(dim=(2, 3)).cpu().numpy().astype(np.float16)


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


class _Resized(VideoSource):
    """A video's frames resized once to the model's input size (clips then reuse them)."""

    def __init__(self, source: VideoSource, size: tuple[int, int]):
        self.source, self.size, self.info = source, size, source.info

    def frames(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        for n, frame in self.source.frames(start, stop):
            yield n, resize_frames(frame[None], self.size)[0]

    def numbers(self) -> np.ndarray:
        return self.source.numbers()


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
    runner = ClipDetector(detector.model, detector.normalize, cfg.detect, dist.device, half)
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
                                   cfg.data.frame_step, cfg.detect.batch_size, Path(out), bar)
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
                  bar) -> tuple[int, int]:
    """Detect every frame of ``source`` and write its artifact; (frames, detections)."""
    info = source.info
    parts: list[tuple[int, dict]] = []
    keys: list[int] = []
    clips: list[np.ndarray] = []

    def flush():
        sizes = [(info.width, info.height)] * len(clips)
        results = runner(torch.from_numpy(np.stack(clips)), sizes)
        parts.extend(zip(keys, results, strict=True))
        bar.update(len(clips))
        keys.clear()
        clips.clear()

    for key, clip in iter_clips(_Resized(source, size), num_frames, frame_step):
        keys.append(key)
        clips.append(clip)
        if len(clips) == batch_size:
            flush()
    if clips:
        flush()
    fields = {k: np.concatenate([p[k] for _, p in parts]) for k in parts[0][1]}
    frames = np.concatenate([np.full(len(p["scores"]), k, dtype=np.int32) for k, p in parts])
    save_stage(out, DETECTIONS, info.name, frames=frames, **fields, width=info.width,
               height=info.height, fps=info.fps)
    return len(parts), len(frames)


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
