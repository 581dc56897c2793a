"""``roadtrack train-events``: fit the event head on tracked detections matched to ground truth.

Each track of the training videos (from a run folder's ``tracks/``) becomes a per-frame feature
series; frames whose box overlaps a ground-truth box (IoU >= 0.5, one-to-one per frame) take that
box's agent, action and location labels as targets, the others are masked out. The head trains on
random windows of the series with a masked binary cross-entropy.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import lap
import numpy as np
import torch
from tqdm import tqdm

from ..boxes import iou_matrix, scale_boxes
from ..errors import UserError
from ..io.annotations import VideoAnnotation, find_annotation_file, load_annotation
from ..io.artifacts import artifact_path, load_stage
from ..io.atomic import atomic_path
from ..io.runs import TRACKS
from ..labels import BOX_TYPES
from .actors import frame_actors, normalise_actors
from .config import EventsConfig
from .features import EXTRA_FIELDS, series_features
from .head import EventHead
from .relation import make_relation
from .series import TrackSeries, track_series

HEAD_FILE = "event_head.pt"


def match_targets(series: TrackSeries, gt: VideoAnnotation, width: int, height: int,
                  min_iou: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-frame multi-hot targets of a track from the ground-truth box it overlaps most.

    Returns ({type: (n, C) float32}, mask (n,) bool: frames with a match).
    """
    n = len(series)
    targets = {t: np.zeros((n, gt.labels[t].shape[1]), np.float32) for t in BOX_TYPES}
    mask = np.zeros(n, dtype=bool)
    gt_boxes = scale_boxes(gt.boxes, width, height)
    starts = np.searchsorted(gt.frames, series.frames, side="left")
    stops = np.searchsorted(gt.frames, series.frames, side="right")
    for i, (a, b) in enumerate(zip(starts, stops, strict=True)):
        if a == b:
            continue
        iou = iou_matrix(series.boxes[i:i + 1], gt_boxes[a:b])[0]
        best = int(iou.argmax())
        if iou[best] >= min_iou:
            mask[i] = True
            for t in BOX_TYPES:
                targets[t][i] = gt.labels[t][a + best]
    return targets, mask


def _exclusive(series_list: list[TrackSeries], gt: VideoAnnotation, width, height, min_iou):
    """Targets for all tracks of a video, one track per ground-truth box in each frame."""
    results = [match_targets(s, gt, width, height, min_iou) for s in series_list]
    by_frame: dict[int, list[tuple[int, int]]] = {}
    for k, (series, (_, mask)) in enumerate(zip(series_list, results, strict=True)):
        for i in np.flatnonzero(mask):
            by_frame.setdefault(int(series.frames[i]), []).append((k, int(i)))
    for frame, entries in by_frame.items():
        if len(entries) < 2:
            continue
        boxes = np.stack([series_list[k].boxes[i] for k, i in entries])
        a, b = np.searchsorted(gt.frames, frame), np.searchsorted(gt.frames, frame, "right")
        cost = 1 - iou_matrix(boxes, scale_boxes(gt.boxes[a:b], width, height))
        _, rows, _ = lap.lapjv(cost, extend_cost=True, cost_limit=1 - min_iou)
        for (k, i), col in zip(entries, rows, strict=True):
            if col < 0:
                results[k][1][i] = False
    return results


def load_training_series(data: Path, run: Path, config: EventsConfig):
    """Features, targets and masks of every track in the training videos."""
    anno_path = find_annotation_file(data) if data.is_dir() else data
    anno = load_annotation(anno_path, splits=[config.fit.split])  # reads only those videos
    videos = anno.split(config.fit.split)
    if not videos:
        raise UserError(f"no videos in split {config.fit.split!r}", anno_path)
    samples = []
    for video in videos:
        if not artifact_path(run, TRACKS, video).is_file():
            raise UserError(f"no tracks for {video}: run the pipeline on the "
                            f"{config.fit.split} videos into this run folder first", run)
        tracks = load_stage(run, TRACKS, video)
        width, height = int(tracks["width"]), int(tracks["height"])
        series_list = track_series(tracks, EXTRA_FIELDS)
        matched = _exclusive(series_list, anno.videos[video], width, height,
                             config.fit.match_iou)
        feats = [series_features(s, width, height, config.head.use_roi) for s in series_list]
        actors = frame_actors(series_list, feats, width, height, config.acar.actors) \
            if config.relation == "acar" else [{} for _ in series_list]
        samples += [(f, targets, mask, a) for f, (targets, mask), a
                    in zip(feats, matched, actors, strict=True) if mask.any()]
    if not samples:
        raise UserError("no track matches the ground truth: nothing to learn from", run)
    return anno.labels, samples


def _batch(samples, rng, batch_size, window):
    """A batch of random windows: features (B, W, F), targets {type: (B, W, C)}, mask (B, W),
    the other actors' arrays {key: (B, W, ...)} (none without a relation module)."""
    dim = samples[0][0].shape[1]
    feats = np.zeros((batch_size, window, dim), np.float32)
    targets = {t: np.zeros((batch_size, window, samples[0][1][t].shape[1]), np.float32)
               for t in BOX_TYPES}
    mask = np.zeros((batch_size, window), bool)
    actors = {key: np.zeros((batch_size, window) + v.shape[1:], v.dtype)
              for key, v in samples[0][3].items()}
    for b, k in enumerate(rng.integers(len(samples), size=batch_size)):
        f, tg, m, a = samples[k]
        start = int(rng.integers(max(1, len(f) - window + 1)))
        stop = min(len(f), start + window)
        feats[b, : stop - start] = f[start:stop]
        mask[b, : stop - start] = m[start:stop]
        for t in BOX_TYPES:
            targets[t][b, : stop - start] = tg[t][start:stop]
        for key in actors:
            actors[key][b, : stop - start] = a[key][start:stop]
    return (torch.from_numpy(feats), {t: torch.from_numpy(v) for t, v in targets.items()},
            torch.from_numpy(mask), {key: torch.from_numpy(v) for key, v in actors.items()})


def fit_event_head(data: Path, run: Path, out: Path, config: EventsConfig,
                   progress: bool = True) -> dict:
    """Train the head and write ``out/event_head.pt``; returns a summary dict."""
    started = time.perf_counter()
    labels, samples = load_training_series(Path(data), Path(run), config)
    torch.manual_seed(config.fit.seed)
    rng = np.random.default_rng(config.fit.seed)
    all_feats = np.concatenate([f for f, _, _, _ in samples])
    mean, std = all_feats.mean(axis=0), all_feats.std(axis=0) + 1e-3
    normed = [((f - mean) / std, t, m, normalise_actors(a, mean, std) if a else a)
              for f, t, m, a in samples]
    sizes = tuple(labels.num_classes(t) for t in BOX_TYPES)
    head = EventHead(all_feats.shape[1], *sizes, hidden=config.head.hidden,
                     layers=config.head.layers, kernel=config.head.kernel,
                     dropout=config.head.dropout,
                     relation=make_relation(config, all_feats.shape[1]))
    optim = torch.optim.AdamW(head.parameters(), lr=config.fit.lr,
                              weight_decay=config.fit.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, config.fit.lr, total_steps=config.fit.steps)
    losses = []
    for _ in tqdm(range(config.fit.steps), desc="train-events", disable=not progress):
        feats, targets, mask, actors = _batch(normed, rng, config.fit.batch_size,
                                              config.fit.window)
        logits = head(feats, **actors)
        loss = sum(torch.nn.functional.binary_cross_entropy_with_logits(
            logits[t][mask], targets[t][mask]) for t in BOX_TYPES)
        optim.zero_grad()
        loss.backward()
        optim.step()
        sched.step()
        losses.append(loss.item())
    # tensors and plain containers only: loaded with weights_only, no code runs
    checkpoint = {"state": head.state_dict(), "in_dim": int(all_feats.shape[1]),
                  "sizes": list(sizes), "mean": torch.from_numpy(mean),
                  "std": torch.from_numpy(std), "labels": labels.to_dict(),
                  "config": asdict(config)}
    with atomic_path(Path(out) / HEAD_FILE, suffix=".pt") as tmp:
        torch.save(checkpoint, tmp)
    return {"tracks": len(samples), "frames": int(sum(m.sum() for _, _, m, _ in samples)),
            "first_loss": float(np.mean(losses[:20])), "last_loss": float(np.mean(losses[-20:])),
            "seconds": time.perf_counter() - started}
