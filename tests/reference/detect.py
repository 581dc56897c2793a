"""The detect stage as it ran before the frame ring (the reference for tests/test_detect_ring.py):
every key frame's clip stacked on the CPU from resized frames, per-clip post-processing with a
host copy per field. Kept as it was; do not optimise."""
from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import batched_nms, roi_align

from roadtrack.engine.colour import box_colours
from roadtrack.engine.transforms import resize_frames
from roadtrack.io.video import iter_clips
from roadtrack.labels import BOX_TYPES


class ResizedSource:
    """A video source whose frames come resized to ``size`` (W, H)."""

    def __init__(self, source, size):
        self.source, self.size, self.info = source, size, source.info

    def frames(self, start=1, stop=None):
        for n, frame in self.source.frames(start, stop):
            yield n, resize_frames(frame[None], self.size)[0]

    def numbers(self):
        return self.source.numbers()


def roi_features_ref(out, clip, queries, size=2):
    features = out["features"][clip: clip + 1].float()
    stride = float(out["feature_stride"])
    height, width = features.shape[-2] * stride, features.shape[-1] * stride
    boxes = out["boxes"][clip, queries].float().clamp(0, 1) * torch.tensor(
        [width, height, width, height], device=features.device)
    pooled = roi_align(features, [boxes], output_size=size, spatial_scale=1.0 / stride,
                       aligned=True)
    return pooled.mean(dim=(2, 3)).cpu().numpy().astype(np.float16)


def postprocess_ref(out, sizes, settings):
    scores = out["scores"].float()
    batch = scores.shape[0]
    scale = torch.tensor([[w, h, w, h] for w, h in sizes], dtype=torch.float32,
                         device=scores.device)
    boxes = out["boxes"].float().clamp(0, 1) * scale[:, None]
    sides = boxes[..., 2:] - boxes[..., :2]
    keep = (scores >= settings.score_threshold) & (sides >= 1.0).all(-1)
    b_idx, q_idx = keep.nonzero(as_tuple=True)
    classes = out["agent"].float().argmax(-1)[b_idx, q_idx]
    groups = b_idx * out["agent"].shape[-1] + classes
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
            result["roi_features"] = roi_features_ref(out, b, qs)
        results.append(result)
    return results


@torch.no_grad()
def detect_video_ref(model, normalize, source, size, num_frames, frame_step, settings):
    """{key frame: detections} of every frame of ``source``, the former way."""
    info = source.info
    found = {}
    keys, clips = [], []

    def flush():
        x = normalize(torch.from_numpy(np.stack(clips)))
        results = postprocess_ref(model(x), [(info.width, info.height)] * len(clips), settings)
        width, height = size
        for key, clip, result in zip(keys, clips, results, strict=True):
            to_input = np.array([width / info.width, height / info.height] * 2, np.float32)
            result["colour"] = box_colours(clip[len(clip) // 2], result["boxes"] * to_input)
            found[key] = result
        keys.clear()
        clips.clear()

    for key, clip in iter_clips(ResizedSource(source, size), num_frames, frame_step):
        keys.append(key)
        clips.append(clip)
        if len(clips) == settings.batch_size:
            flush()
    if clips:
        flush()
    return found
