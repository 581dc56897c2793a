"""Settings of the event stage: the ``events`` section of a run config.

    events:
      head:  {hidden, layers, kernel, dropout, use_roi}     the temporal event head
      fit:   {split, steps, batch_size, window, lr, ...}    its training (train-events)
      tubes: {smooth_window, min_length, agent_top_k, ...}  turning tracks into tubes
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .tubes import TubeConfig


@dataclass
class HeadConfig:
    hidden: int = 96
    layers: int = 3
    kernel: int = 5
    dropout: float = 0.1
    use_roi: bool = True


@dataclass
class FitConfig:
    split: str = "train"
    steps: int = 600
    batch_size: int = 32
    window: int = 48
    lr: float = 2e-3
    weight_decay: float = 1e-4
    match_iou: float = 0.5
    seed: int = 0


@dataclass
class EventsConfig:
    head: HeadConfig = field(default_factory=HeadConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    tubes: TubeConfig = field(default_factory=TubeConfig)

    @classmethod
    def from_dict(cls, data: dict | None, path: str | Path | None = None) -> "EventsConfig":
        """Keys checked as everywhere in a config: unknown or ill-typed ones raise UserError."""
        from ..config import section_from_dict
        from ..errors import UserError

        config = section_from_dict(cls, data, "events.", path)
        for name in ("smooth_window", "min_length", "agent_top_k", "label_top_k"):
            if getattr(config.tubes, name) < 1:
                raise UserError(f"config key 'events.tubes.{name}' must be at least 1, got "
                                f"{getattr(config.tubes, name)}", path)
        return config


def events_config(path: str | Path) -> EventsConfig:
    """The ``events`` section of a config file."""
    from ..config import load_config

    return EventsConfig.from_dict(load_config(path)["events"], path)
