"""``roadtrack train``: the training loop with checkpoints, exact resume, validation and DDP.

The loop counts optimiser steps. A checkpoint taken after step s holds everything the next step
depends on (weights, optimiser, schedule, scaler, every RNG, the epoch and the batch within it),
and the data order and augmentation are pure functions of (seed, epoch, position), so a resumed
run repeats the uninterrupted one exactly.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import section_from_dict
from ..errors import OutputInUse, UserError
from ..io.annotations import Annotation, find_annotation_file, load_annotation
from ..io.checkpoints import load_model_state
from ..io.runs import TrainingRun
from ..labels import BOX_TYPES
from ..models import build_detector, normalize_clip
from ..models.backbones.pretrained import load_backbone_weights
from ..models.config import ModelConfig
from . import distributed as D
from .checkpoint import (
    check_labels,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config import RunConfig
from .dataset import ClipDataset, collate_clips
from .detect import postprocess
from .launch import run_processes
from .runlog import MetricsLog, fingerprint, versions
from .transforms import ClipTransform, flip_permutation
from .validation import score_frame_map, write_detections


@dataclass
class TrainSummary:
    steps: int
    epochs: float
    elapsed_s: float
    stopped_by: str  # max_steps | time budget | stop_at_step
    train_loss: float
    val: dict  # val_loss and, when the evaluator ran, frame_map_* figures
    run: Path


def default_builder() -> tuple[Callable[[ModelConfig], nn.Module],
                               Callable[[torch.Tensor], torch.Tensor]]:
    """The project's detector builder and clip normaliser."""
    return build_detector, normalize_clip


def train(config: RunConfig, data_dir: str | Path, run_dir: str | Path, resume: bool = False,
          max_minutes: float | None = None, stop_at_step: int | None = None,
          builder=None, progress: bool = True, config_path: str | Path | None = None
          ) -> TrainSummary:
    """Train ``config`` on the dataset at ``data_dir`` into the run folder ``run_dir``.

    ``max_minutes`` overrides the config's time budget; ``stop_at_step`` ends (with a checkpoint)
    after that step, as an interruption would. ``builder`` = (build_model, normalize) replaces the
    project's detector (tests). Under ``torchrun`` every process calls this.
    """
    build_model, normalize = builder or default_builder()
    dist = D.setup()  # the caller ends the process group (D.teardown) when all work is done
    trainer = Trainer(config, Path(data_dir), Path(run_dir), resume, build_model, normalize,
                      dist, progress, config_path)
    budget = config.train.time_budget_minutes if max_minutes is None else max_minutes
    return trainer.fit(budget * 60.0 if budget else None, stop_at_step)


def launch_train(config: RunConfig, data_dir: str | Path, run_dir: str | Path,
                 procs: int | None = None, **options) -> TrainSummary:
    """:func:`train` in ``procs`` (default ``train.procs``) local processes joined by DDP, or in
    this process when that is 1 or when ``torchrun`` already started this one as a rank.

    Two single-threaded processes on a 2-core CPU, ``batch_size`` clips each, take 1.3-1.6x
    the steps per second of one process taking ``2 x batch_size`` (tools/bench_train.py).
    """
    procs = config.train.procs if procs is None else procs
    if procs < 1:
        raise UserError(f"train.procs must be at least 1, got {procs}",
                        options.get("config_path"))
    if procs == 1 or "WORLD_SIZE" in os.environ:
        try:
            return train(config, data_dir, run_dir, **options)
        finally:
            D.teardown()
    if torch.cuda.is_available() and procs > torch.cuda.device_count():
        raise UserError(f"{procs} training processes (train.procs) but this machine has "
                        f"{torch.cuda.device_count()} GPUs", options.get("config_path"))
    return run_processes(procs, train, config, data_dir, run_dir, **options)


def select_videos(annotation: Annotation, split: str, wanted: list[str]) -> list[str]:
    names = annotation.split(split)
    if wanted:
        names = [n for n in names if n in set(wanted)]
    return names


def lr_factor(step: int, warmup: int, total: int, decay: str, min_ratio: float,
              time_progress: float = 0.0) -> float:
    """Multiplier of the base learning rate for optimiser step ``step`` (0-based).

    The decay runs from the end of warm-up to ``total`` steps, or faster where ``time_progress``
    (the share of a time budget spent) is further along."""
    if step < warmup:
        return (step + 1) / warmup
    if decay == "none" or total <= warmup:
        return 1.0
    progress = min(1.0, max((step - warmup) / (total - warmup), time_progress))
    if decay == "linear":
        return 1.0 - (1.0 - min_ratio) * progress
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.amp`` on ``device``; None means full precision."""
    if device.type != "cuda" or setting == "off":
        return None
    if setting == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[setting]


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def parameter_groups(model: nn.Module, weight_decay: float, lr: float,
                     backbone_lr_mult: float = 1.0) -> list[dict]:
    """Weight decay on matrices and kernels only, not on biases, norms and scales; with
    ``backbone_lr_mult`` != 1 the parameters under ``backbone.`` get groups of their own at
    ``lr x backbone_lr_mult``. Frozen parameters are left out."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            backbone = backbone_lr_mult != 1.0 and name.startswith("backbone.")
            groups.setdefault((backbone, param.ndim < 2), []).append(param)
    return [{"params": params, "weight_decay": 0.0 if no_decay else weight_decay,
             "lr": lr * (backbone_lr_mult if backbone else 1.0)}
            for (backbone, no_decay), params in sorted(groups.items())]


class Trainer:
    """One process's share of a training run (see :func:`train`)."""

    def __init__(self, config: RunConfig, data_dir: Path, run: Path, resume: bool,
                 build_model, normalize, dist: D.Dist, progress: bool, config_path):
        # Everything that can fail on bad input is checked before the run folder is touched,
        # every config value first.
        self.cfg, self.run, self.dist = config, run, dist
        self.normalize, self.progress = normalize, progress
        self.layout = TrainingRun(run)
        self.last_path, self.best_path = self.layout.last, self.layout.best
        tc = config.train
        width, height = config.data.input_size
        self.input_size = (width, height)
        annotation_path = find_annotation_file(data_dir, config.data.annotation)
        splits = [config.data.train_split, config.data.val_split]
        self.annotation = load_annotation(annotation_path, keep_tubes=False,
                                          splits=None if None in splits else splits)
        self.labels = self.annotation.labels.to_dict()
        self.resume_state = self._resume_state(resume, config_path)
        torch.manual_seed(tc.seed)  # identical initial weights on every rank
        self._check_label_counts(dataclasses.asdict(config.model.classes), config_path)
        self.model = build_model(config.model)
        self._check_label_counts(dict(getattr(self.model, "labels_shape", {})), config_path)
        pretrained = config.model.backbone.pretrained
        if pretrained and self.resume_state is None and hasattr(self.model, "backbone"):
            report = load_backbone_weights(self.model.backbone.body, config.model.backbone)
            if dist.main:
                print("\n".join(report), file=sys.stderr)
        self.model.to(dist.device)
        self.num_frames = int(self.model.num_frames)
        self.train_videos = select_videos(self.annotation, config.data.train_split,
                                          config.data.videos)
        if not self.train_videos:
            raise UserError(f"no videos in split {config.data.train_split!r}", annotation_path)
        self.val_videos = select_videos(self.annotation, config.data.val_split, config.data.videos)
        self.train_set = self._dataset(self.train_videos, train=True, data_dir=data_dir)
        self.val_set = self._dataset(self.val_videos, train=False, data_dir=data_dir) \
            if self.val_videos else None
        if len(self.train_set) == 0:
            raise UserError(f"split {config.data.train_split!r} has no annotated frames",
                            annotation_path)
        self.annotation_path = annotation_path
        self.data_dir = data_dir

        self.sampler = D.ShardedBatchSampler(len(self.train_set), config.train.batch_size,
                                             dist.rank, dist.world, shuffle=True, seed=tc.seed)
        self.loader = self._loader(self.train_set, self.sampler)
        self.max_steps = tc.epochs * self.sampler.batches_per_epoch if tc.epochs > 0 \
            else tc.max_steps
        if tc.channels_last:
            to_channels_last(getattr(self.model, "backbone", self.model))
        self.optimizer = torch.optim.AdamW(
            parameter_groups(self.model, tc.weight_decay, tc.lr, tc.backbone_lr_mult),
            lr=tc.lr, betas=tuple(tc.betas), fused=dist.device.type == "cuda")
        self.budget_s: float | None = None  # set by fit()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, tc.warmup_steps, self.max_steps, tc.decay,
                                                tc.min_lr_ratio, self._time_progress()))
        self.amp = amp_dtype(tc.amp, dist.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        self.ddp = DistributedDataParallel(self.model, device_ids=[dist.device.index]
                                           if dist.device.type == "cuda" else None) \
            if dist.world > 1 else self.model
        self.forward = torch.compile(self.ddp) if tc.compile and dist.device.type == "cuda" \
            else self.ddp
        torch.backends.cudnn.benchmark = not tc.deterministic
        torch.backends.cudnn.deterministic = tc.deterministic
        self.step, self.epoch, self.batch, self.elapsed = 0, 0, 0, 0.0
        self.best: dict = {}
        self.pending: dict[str, float] = {}  # loss sums since the last log row
        self.pending_count = 0
        torch.manual_seed(tc.seed + 1000 * dist.rank)  # dropout etc. differ between ranks
        if self.resume_state is not None:
            self._restore(self.resume_state)

    # ----------------------------------------------------------------------------- set-up
    def _resume_state(self, resume: bool, config_path) -> dict | None:
        if not resume:
            if self.last_path.exists():
                raise OutputInUse("run folder already holds a training run", self.run)
            return None
        if not self.last_path.exists():
            raise UserError("nothing to resume: no checkpoints/last.pt", self.run)
        state = load_checkpoint(self.last_path)
        check_labels(state["labels"], self.labels, self.last_path)
        saved = section_from_dict(ModelConfig, state["config"].get("model"), "model.",
                                  self.last_path)
        if saved.architecture() != self.cfg.model.architecture():
            raise UserError("the config's model section differs from the checkpoint's; resume "
                            "with the run's config", config_path or self.last_path)
        return state

    def _check_label_counts(self, shape: dict, config_path) -> None:
        """The config's class counts (before building the model) and the model's (after) must
        be the data's."""
        want = {t: len(self.labels[f"{t}_labels"]) for t in BOX_TYPES}
        if shape != want:
            raise UserError(f"the model predicts {shape} classes but the data's label space has "
                            f"{want}", config_path)

    def _dataset(self, videos: list[str], train: bool, data_dir: Path) -> ClipDataset:
        dc = self.cfg.data
        space = self.annotation.labels
        transform = ClipTransform(
            size=self.input_size, train=train, crop_prob=dc.crop_prob,
            crop_min_scale=dc.crop_min_scale, keep_threshold=dc.keep_threshold,
            flip_prob=dc.flip_prob, box_jitter=dc.box_jitter,
            flip_perms={t: flip_permutation(space.names(t)) for t in BOX_TYPES})
        return ClipDataset(data_dir, self.annotation, videos, self.num_frames, transform,
                           frame_step=dc.frame_step, key_stride=dc.key_stride if train else 1)

    def _loader(self, dataset: ClipDataset, sampler: D.ShardedBatchSampler) -> DataLoader:
        workers = self.cfg.data.workers
        if workers:
            before_forking_workers()
        return DataLoader(dataset, batch_sampler=sampler, num_workers=workers,
                          collate_fn=collate_clips,
                          pin_memory=self.dist.device.type == "cuda",
                          generator=torch.Generator(),  # leaves the global RNG alone
                          worker_init_fn=_quiet_worker)

    def _restore(self, state: dict) -> None:
        load_model_state(self.model, state["model"], self.last_path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.batch = int(state["step"]), int(state["epoch"]), \
            int(state["batch"])
        self.elapsed, self.best = float(state.get("elapsed_s", 0.0)), dict(state.get("best", {}))
        self.pending = {k: float(v) for k, v in state.get("pending_log", {}).items()}
        self.pending_count = int(state.get("pending_count", 0))
        rngs = state["rng"]
        set_rng_state(rngs[self.dist.rank] if self.dist.rank < len(rngs) else rngs[0])

    def _time_progress(self) -> float:
        """Share of the time budget spent (whole run), when the decay spans the budget."""
        if self.cfg.train.decay_span != "budget" or not self.budget_s:
            return 0.0
        return self.elapsed / self.budget_s

    # ----------------------------------------------------------------------------- loop
    def fit(self, budget_s: float | None, stop_at_step: int | None) -> TrainSummary:
        if self.dist.main:
            self.run.mkdir(parents=True, exist_ok=True)
            self._write_run_yaml()
        log = MetricsLog(self.run, self.step if self.resume_state else None) \
            if self.dist.main else None
        bar = tqdm(total=self.max_steps, initial=self.step, desc="train", unit="step",
                   disable=not (self.progress and self.dist.main), dynamic_ncols=True)
        train_loss, val = float("nan"), {}
        stopped_by = "max_steps"
        start = time.monotonic()
        elapsed_before = self.elapsed
        self.budget_s = budget_s
        while self.step < self.max_steps:
            self.sampler.set_epoch(self.epoch, self.batch)
            batches = iter(self.loader)
            for clips, targets, _ in batches:
                parts = self._train_step(clips, targets)
                for k, v in parts.items():
                    self.pending[k] = self.pending.get(k, 0.0) + float(v)
                self.pending_count += 1
                self._advance()
                self.elapsed = D.broadcast_value(elapsed_before + time.monotonic() - start,
                                                 self.dist.device)
                bar.update(1)
                if self.step % self.cfg.train.log_every == 0 or self.step == self.max_steps:
                    train_loss = self._log_train(log, bar)
                if self.cfg.train.val_every and self.step % self.cfg.train.val_every == 0 \
                        and self.step < self.max_steps:
                    val = self._validate(log)
                if self.cfg.train.checkpoint_every \
                        and self.step % self.cfg.train.checkpoint_every == 0:
                    self._save(self.last_path)
                if budget_s is not None and self.elapsed - elapsed_before >= budget_s:
                    stopped_by = "time budget"
                    break
                if stop_at_step is not None and self.step >= stop_at_step:
                    stopped_by = "stop_at_step"
                    break
                if self.step >= self.max_steps or self.batch == 0:
                    break
            del batches  # ends this epoch's workers now, not at garbage collection
            if stopped_by != "max_steps":
                break
        bar.close()
        if self.pending_count:  # stopped between log steps: report; the sums go on in last.pt
            train_loss = self._log_train(None, None, clear=False)
        if stopped_by != "stop_at_step":
            val = self._validate(log)
        self._save(self.last_path)
        if log is not None:
            log.close()
        D.barrier()
        return TrainSummary(steps=self.step, epochs=self.epoch + self.batch
                            / self.sampler.batches_per_epoch, elapsed_s=self.elapsed,
                            stopped_by=stopped_by, train_loss=train_loss, val=val, run=self.run)

    def _advance(self) -> None:
        self.step += 1
        self.batch += 1
        if self.batch >= self.sampler.batches_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0

    def _train_step(self, clips: torch.Tensor, targets: list[dict]) -> dict[str, torch.Tensor]:
        self.ddp.train()
        clips, targets = self._to_device(clips, targets)
        with autocast(self.dist.device, self.amp), self._whole_batch_box_count():
            losses = self.forward(clips, targets)
        loss = losses["loss"]
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.train.clip_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {k: v.detach().float() for k, v in losses.items()}

    @contextlib.contextmanager
    def _whole_batch_box_count(self):
        """Under DDP, the detector's losses divide by the mean box count over the ranks
        (training steps only: validation batches are not in step across ranks)."""
        criterion = getattr(self.model, "criterion", None)
        if self.dist.world == 1 or not hasattr(criterion, "count_boxes"):
            yield
            return
        criterion.count_boxes = D.mean_over_ranks
        try:
            yield
        finally:
            criterion.count_boxes = float

    def _to_device(self, clips: torch.Tensor, targets: list[dict]):
        device = self.dist.device
        clips = self.normalize(clips.to(device, non_blocking=True))  # (B, 3, T, H, W)
        if self.cfg.train.channels_last:
            clips = clips.contiguous(memory_format=torch.channels_last_3d)
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
        return clips, targets

    def _log_train(self, log: MetricsLog | None, bar, clear: bool = True) -> float:
        """Average the losses since the last row over steps and ranks; write a row."""
        keys = sorted(self.pending)
        mean = D.all_sum(torch.tensor([self.pending[k] for k in keys], dtype=torch.float64)
                         / self.pending_count) / self.dist.world
        row = {k: float(v) for k, v in zip(keys, mean, strict=True)}
        if clear:
            self.pending, self.pending_count = {}, 0
        if log is not None:
            log.write({"step": self.step, "epoch": self.epoch, "split": "train",
                       "lr": self.optimizer.param_groups[0]["lr"],
                       "elapsed_s": round(self.elapsed, 2), **row})
        if bar is not None:
            bar.set_postfix(loss=f"{row['loss']:.3f}",
                            lr=f"{self.optimizer.param_groups[0]['lr']:.2e}")
        return row["loss"]

    # ----------------------------------------------------------------------------- validation
    @torch.no_grad()
    def _validate(self, log: MetricsLog | None) -> dict:
        """Validation loss and (``train.val_map``) agent frame-mAP over the val split."""
        if self.val_set is None:
            return {}
        sampler = D.ShardedBatchSampler(len(self.val_set), self.cfg.train.batch_size,
                                        self.dist.rank, self.dist.world, shuffle=False,
                                        seed=self.cfg.train.seed)
        workers = self.cfg.data.workers
        loader = DataLoader(self.val_set, batch_sampler=sampler, num_workers=workers,
                            collate_fn=collate_clips, generator=torch.Generator(),
                            pin_memory=self.dist.device.type == "cuda",
                            worker_init_fn=_quiet_worker if workers else None)
        both = getattr(self.model, "losses_and_predictions", None) if self.cfg.train.val_map \
            else None  # the model once per batch where it offers both results of one pass
        self.model.eval()
        total = torch.zeros(2, dtype=torch.float64)
        found = []  # (video, key frame, detections)
        for clips, targets, keys in tqdm(loader, desc="val", unit="batch", leave=False,
                                         disable=not (self.progress and self.dist.main),
                                         dynamic_ncols=True):
            clips, targets = self._to_device(clips, targets)
            with autocast(self.dist.device, self.amp):
                if both is not None:
                    losses, out = both(clips, targets)
                else:
                    losses = self.model.losses(clips, targets)  # the loss under eval()
                    out = self.model(clips) if self.cfg.train.val_map else None
            total += torch.tensor([float(losses["loss"]) * len(targets), len(targets)],
                                  dtype=torch.float64)
            if out is not None:
                sizes = [(self.annotation.videos[v].width, self.annotation.videos[v].height)
                         for v, _ in keys]
                found += [(v, f, d) for (v, f), d in
                          zip(keys, postprocess(out, sizes, self.cfg.detect), strict=True)]
        total = D.all_sum(total)
        val = {"loss": float(total[0] / max(total[1], 1))}
        if self.cfg.train.val_map:
            val.update(self._frame_map(found))
        if log is not None:
            log.write({"step": self.step, "epoch": self.epoch, "split": "val",
                       "elapsed_s": round(self.elapsed, 2), **val})
        self._keep_best(val)
        return {f"val_{k}" if k == "loss" else k: v for k, v in val.items()}

    def _frame_map(self, found: list) -> dict:
        """Rank 0 gathers every rank's detections, writes RUN/val/ and scores it."""
        if self.dist.world > 1:
            everything = [None] * self.dist.world
            torch.distributed.all_gather_object(everything, found)
            found = [item for part in everything for item in part]
        scores = {}
        if self.dist.main:
            folder = self.layout.val
            write_detections(folder, self.annotation, self.val_videos, found)
            scores = score_frame_map(folder, self.annotation, self.val_videos)
        if self.dist.world > 1:
            shared = [scores]
            torch.distributed.broadcast_object_list(shared, src=0)
            scores = shared[0]
        return scores

    def _keep_best(self, val: dict) -> None:
        """best.pt follows the highest agent frame-mAP, or the lowest loss without one."""
        if "frame_map_agent" in val:
            metric, score = "frame_map_agent", val["frame_map_agent"]
        else:
            metric, score = "val_loss", -val["loss"]
        if self.best.get("metric") == metric and self.best.get("score", -math.inf) >= score:
            return
        self.best = {"metric": metric, "score": score, "step": self.step}
        self._save(self.best_path)

    # ----------------------------------------------------------------------------- records
    def _state(self) -> dict:
        rngs = [rng_state()]
        if self.dist.world > 1:
            rngs = [None] * self.dist.world
            torch.distributed.all_gather_object(rngs, rng_state())
        return {"model": self.model.state_dict(), "config": self.cfg.to_dict(),
                "labels": self.labels, "epoch": self.epoch, "batch": self.batch,
                "step": self.step, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "rng": rngs, "best": self.best, "elapsed_s": self.elapsed,
                "pending_log": self.pending, "pending_count": self.pending_count}

    def _save(self, path: Path) -> None:
        state = self._state()  # collective under DDP: every rank takes part
        if self.dist.main:
            save_checkpoint(path, state)

    def _write_run_yaml(self) -> None:
        self.layout.write({
            "config": self.cfg.to_dict(), "labels": self.labels,
            "data": {"root": str(self.data_dir.resolve()),
                     "annotation": fingerprint(self.annotation_path),
                     "train_videos": self.train_videos, "val_videos": self.val_videos,
                     "train_clips": len(self.train_set),
                     "val_clips": len(self.val_set) if self.val_set else 0},
            "world_size": self.dist.world, "max_steps": self.max_steps,
            "resumed_at_step": self.step if self.resume_state else None}, versions())


def to_channels_last(module: nn.Module) -> nn.Module:
    """Lay out the 5-D weights (3-D convolution kernels) of ``module`` in channels_last_3d, in
    place; cuDNN then runs the convolutions of channels_last_3d inputs without transposes."""
    for param in module.parameters():
        if param.ndim == 5:
            param.data = param.data.contiguous(memory_format=torch.channels_last_3d)
    return module


def before_forking_workers() -> None:
    """Forked workers inherit OpenCV's thread pool: one that this process already started (the
    demo synthesises data in-process) deadlocks the child's ``setNumThreads``. With one OpenCV
    thread here the children have nothing to tear down."""
    cv2.setNumThreads(1)


def _quiet_worker(_: int) -> None:
    """DataLoader workers decode with one OpenCV thread each (the cores are for the model)."""
    cv2.setNumThreads(1)
