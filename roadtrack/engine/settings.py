"""A resolved run config as typed sections: the ``model`` dict for the model builder and the
``data``, ``train`` and ``detect`` dataclasses of :mod:`roadtrack.config` for the engines."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..config import DataConfig, DetectConfig, TrainConfig, config_from_dict, is_size
from ..errors import UserError


@dataclass
class RunConfig:
    model: dict
    data: DataConfig
    train: TrainConfig
    detect: DetectConfig

    def to_dict(self) -> dict:
        return {"model": self.model, "data": dataclasses.asdict(self.data),
                "train": dataclasses.asdict(self.train), "detect": dataclasses.asdict(self.detect)}

    def checked(self, path: str | Path | None = None) -> RunConfig:
        """A copy with every value checked again (sections are mutable dataclasses)."""
        return resolve_config(self.to_dict(), path)


def resolve_config(raw: dict | None, path: str | Path | None = None) -> RunConfig:
    """Check a parsed config (unknown keys, wrong types, values out of range raise UserError
    naming the key and ``path``; every section, ``track`` and ``events`` included) and fill
    defaults."""
    full = config_from_dict(raw, path)
    return RunConfig(model=full["model"], data=DataConfig(**full["data"]),
                     train=TrainConfig(**full["train"]), detect=DetectConfig(**full["detect"]))


def check_input_size(size: list, where: str, path=None) -> tuple[int, int]:
    """(W, H) from a config list; both must be positive multiples of 32."""
    if not is_size(size):
        raise UserError(f"{where}: must be [W, H], positive multiples of 32, got {size}", path)
    return int(size[0]), int(size[1])
