"""What the training/detect tests share: a contract-following toy detector, dataset copies."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from torch import nn
from torchvision.ops import generalized_box_iou_loss

from roadtrack.configs import run_config
from roadtrack.synth.dataset import ANNOTATION_NAME

ROOT = Path(__file__).resolve().parents[1]

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)


def toy_normalize(clips: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 -> (B, 3, T, H, W) float, ImageNet-normalised."""
    x = clips.permute(0, 4, 1, 2, 3).float() / 255.0
    return (x - MEAN.to(x.device)) / STD.to(x.device)


class ToyDetector(nn.Module):
    """Follows the detector contract with a few thousand parameters: query i predicts target i."""

    def __init__(self, num_frames: int = 2, agents: int = 10, actions: int = 22, locs: int = 16,
                 queries: int = 4, dim: int = 16):
        super().__init__()
        self.num_frames, self.embed_dim = num_frames, dim
        self.labels_shape = {"agent": agents, "action": actions, "loc": locs}
        self.stem = nn.Conv3d(3, dim, kernel_size=(num_frames, 8, 8), stride=(1, 8, 8))
        self.queries = nn.Embedding(queries, dim)
        self.drop = nn.Dropout(0.1)
        self.box = nn.Linear(dim, 4)
        self.heads = nn.ModuleDict({k: nn.Linear(dim, n) for k, n in
                                    {"agentness": 1, **self.labels_shape}.items()})

    def _heads(self, clips: torch.Tensor):
        feat = torch.relu(self.stem(clips))  # (B, D, 1, H/8, W/8)
        pooled = feat.mean(dim=(2, 3, 4))  # (B, D)
        q = self.drop(pooled[:, None] + self.queries.weight[None])  # (B, Q, D)
        cxcywh = torch.sigmoid(self.box(q))
        boxes = torch.cat([cxcywh[..., :2] - cxcywh[..., 2:] / 2,
                           cxcywh[..., :2] + cxcywh[..., 2:] / 2], dim=-1).clamp(0, 1)
        return boxes, {k: h(q) for k, h in self.heads.items()}, q, feat

    def forward(self, clips: torch.Tensor, targets: list[dict] | None = None):
        if targets is not None:
            return self.losses(clips, targets)
        boxes, logits, q, feat = self._heads(clips)
        return {"boxes": boxes, "scores": torch.sigmoid(logits["agentness"][..., 0]),
                **{k: torch.sigmoid(logits[k]) for k in self.labels_shape},
                "embeddings": q, "features": feat[:, :, 0], "feature_stride": 8}

    def losses(self, clips: torch.Tensor, targets: list[dict]) -> dict:
        """The loss dict in any mode (the validation loss runs under eval())."""
        boxes, logits, _, _ = self._heads(clips)
        parts = {k: clips.new_zeros(()) for k in ("loss_agentness", "loss_agent", "loss_action",
                                                  "loss_loc", "loss_l1", "loss_giou")}
        bce = nn.functional.binary_cross_entropy_with_logits
        for b, t in enumerate(targets):
            n = min(len(t["boxes"]), boxes.shape[1])
            objectness = torch.zeros(boxes.shape[1], device=clips.device)
            objectness[:n] = 1
            parts["loss_agentness"] = parts["loss_agentness"] + bce(logits["agentness"][b, :, 0],
                                                                    objectness)
            if n:
                parts["loss_l1"] = parts["loss_l1"] + (boxes[b, :n] - t["boxes"][:n]).abs().mean()
                parts["loss_giou"] = parts["loss_giou"] + generalized_box_iou_loss(
                    boxes[b, :n], t["boxes"][:n], reduction="mean")
                for k in self.labels_shape:
                    parts[f"loss_{k}"] = parts[f"loss_{k}"] + bce(logits[k][b, :n], t[k][:n])
        parts = {k: v / len(targets) for k, v in parts.items()}
        return {"loss": sum(parts.values()), **parts}


def toy_builder(num_frames: int = 2):
    """A (build_model, normalize) pair for ``roadtrack.engine.train.train(builder=...)``."""
    def build(model_cfg) -> ToyDetector:
        classes = model_cfg.classes  # roadtrack.models.config.ClassesConfig
        return ToyDetector(num_frames=num_frames, agents=classes.agent, actions=classes.action,
                           locs=classes.loc)
    return build, toy_normalize


def copy_dataset(root: Path, dest: Path, frames: bool = True) -> Path:
    """A private copy of a dataset root to break; ``frames=False`` keeps only videos/."""
    shutil.copytree(root, dest, ignore=None if frames else shutil.ignore_patterns("rgb-images"))
    return dest


def edit_annotation(root: Path, edit) -> None:
    """Rewrite the dataset's annotation JSON through ``edit(dict)``."""
    path = root / ANNOTATION_NAME
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def tiny_config(tmp_path: Path, **train) -> str:
    """The tiny config at 64x64 for a few steps, written to ``tmp_path/tiny.yaml``."""
    import yaml

    cfg = yaml.safe_load(run_config("synthetic_tiny").read_text())
    cfg["data"].update(input_size=[64, 64], workers=0)
    cfg["train"].update({"batch_size": 2, "procs": 1, "max_steps": 2, "warmup_steps": 1,
                         "log_every": 1,
                         "time_budget_minutes": 0.0, **train})
    cfg["detect"].update(batch_size=4)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def halfway_broken_copy(source_video, dest, fourcc: str = "mp4v"):
    """``source_video`` re-encoded into ``dest`` (container by its suffix) and cut to half its
    bytes: it opens, then breaks mid-way."""
    import cv2

    from roadtrack.io.video import VideoFile

    source = VideoFile(source_video)
    writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*fourcc), 10,
                             (source.info.width, source.info.height))
    for _, frame in source.frames():
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    dest.write_bytes(dest.read_bytes()[: dest.stat().st_size // 2])
    return dest
