"""The video agent detector: a video backbone and an STMixer decoder with agentness, box, agent,
action and location heads."""
from __future__ import annotations

import torch
from torch import nn

from .backbones import build_backbone
from .config import ModelConfig
from .criterion import SetCriterion
from .neck import build_neck
from .stm.geometry import whole_frame_xyzr, xyzr_to_xyxy
from .stm.sampling import layout_features
from .stm.stage import DecoderStage

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_clip(frames: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (B, T, H, W, 3) -> float (B, 3, T, H, W) normalised with ImageNet mean / std."""
    x = frames.permute(0, 4, 1, 2, 3).float().div_(255.0)
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    return (x - mean) / std


class Detector(nn.Module):
    """Backbone + STMixer decoder.

    ``model(clips, targets)`` in training mode returns the loss dict; ``model(clips)`` otherwise
    returns the last stage's predictions: ``boxes`` (B, Q, 4) normalised x1 y1 x2 y2, ``scores``
    (B, Q), ``agent``/``action``/``loc`` probabilities, ``embeddings`` (B, Q, D), ``features``
    (B, D, H/4, W/4) of the key frame, ``feature_stride``.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        dec = cfg.decoder
        self.cfg = cfg
        self.num_frames = cfg.num_frames
        self.labels_shape = {"agent": cfg.classes.agent, "action": cfg.classes.action,
                             "loc": cfg.classes.loc}
        self.embed_dim = dec.dim
        self.backbone = build_backbone(cfg.backbone, dec.dim)
        self.strides = self.backbone.strides
        self.feature_frames = self.backbone.frames(cfg.num_frames)
        self.neck = build_neck(cfg.neck, dec.dim)  # None: the pyramid goes to the decoder as is
        self.groups = dec.groups
        self.spatial_queries = nn.Embedding(dec.num_queries, dec.dim)
        self.temporal_queries = nn.Embedding(dec.num_queries, dec.dim)
        self.query_norm_s = nn.LayerNorm(dec.dim)
        self.query_norm_t = nn.LayerNorm(dec.dim)
        self.stages = nn.ModuleList([
            DecoderStage(dec.dim, dec.num_heads, dec.ffn_dim, dec.spatial_points,
                         self.feature_frames, dec.groups, dec.out_multiplier, dec.mapping_stride,
                         dec.tau, self.labels_shape, dec.dropout, dec.mixing)
            for _ in range(dec.num_stages)])
        for stage in self.stages:
            stage.init_weights()
        self.criterion = SetCriterion(cfg.loss)

    def decode(self, clips: torch.Tensor) -> tuple[list[dict], torch.Tensor, list]:
        """Run backbone and decoder: (per-stage outputs, last spatial queries, feature levels)."""
        B, _, T, H, W = clips.shape
        if T != self.num_frames:
            raise ValueError(f"clip has {T} frames, the model takes {self.num_frames}")
        if H % 32 or W % 32:
            raise ValueError(f"clip size {W}x{H} is not a multiple of 32")
        levels = self.backbone(clips)  # 4 x (B, D, T', H/s, W/s)
        if self.neck is not None:
            levels = self.neck(levels)
        layout = layout_features(levels, self.groups)  # made once, read by every stage
        N = self.spatial_queries.num_embeddings
        spatial = self.query_norm_s(self.spatial_queries.weight).expand(B, N, -1)
        temporal = self.query_norm_t(self.temporal_queries.weight).expand(B, N, -1)
        xyzr = whole_frame_xyzr(B, N, W, H, device=clips.device).to(clips.dtype)
        scale = clips.new_tensor([W, H, W, H])
        outputs = []
        for stage in self.stages:
            spatial, temporal, xyzr, logits = stage(layout, self.strides, spatial, temporal, xyzr)
            logits["boxes"] = xyzr_to_xyxy(xyzr) / scale  # normalised x1 y1 x2 y2
            outputs.append(logits)
        return outputs, spatial, levels

    def losses(self, clips: torch.Tensor, targets: list[dict]) -> dict:
        """The training loss dict in any mode (e.g. a validation loss under ``eval()``)."""
        outputs, _, _ = self.decode(clips)
        return self.criterion(outputs, targets)

    def losses_and_predictions(self, clips: torch.Tensor, targets: list[dict]
                               ) -> tuple[dict, dict]:
        """The loss dict and the inference dict of one pass (validation under ``eval()``)."""
        outputs, spatial, levels = self.decode(clips)
        return self.criterion(outputs, targets), self._predictions(outputs[-1], spatial, levels)

    def forward(self, clips: torch.Tensor, targets: list[dict] | None = None) -> dict:
        outputs, spatial, levels = self.decode(clips)
        if self.training:
            if targets is None:
                raise ValueError("training mode needs targets (call model.eval() to detect)")
            return self.criterion(outputs, targets)
        return self._predictions(outputs[-1], spatial, levels)

    def _predictions(self, last: dict, spatial: torch.Tensor, levels: list) -> dict:
        """The contract's inference dict, float32 whatever autocast computed in."""
        key = levels[0].shape[2] // 2  # the feature frame holding the key frame
        result = {"boxes": last["boxes"].float().clamp(0.0, 1.0),
                  "scores": last["agentness"].float().sigmoid(),
                  "embeddings": spatial.float(), "features": levels[0][:, :, key].float(),
                  "feature_stride": self.strides[0]}
        for name in self.labels_shape:
            result[name] = last[name].float().sigmoid()
        return result


def build_detector(config: ModelConfig | None = None) -> Detector:
    """The detector of a run config's ``model`` section (defaults when None)."""
    return Detector(config or ModelConfig())
