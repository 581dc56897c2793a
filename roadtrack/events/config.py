"""Settings of the event stage: the ``events`` section of a run config.

    events:
      head:  {hidden, layers, kernel, dropout, use_roi}     the temporal event head
      fit:   {split, steps, batch_size, window, lr, ...}    its training (train-events)
      tubes: {smooth_window, min_length, agent_top_k, ...}  turning tracks into tubes
      relation: none | acar                               ACAR's HR2O among a frame's actors
      acar:  {actors, grid, reduce, hidden, depth, kernel}  its sizes (relation: acar)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import SEED_MAX, BadValue, above, at_least, one_of, section_from_dict, within
from .tubes import TubeConfig


@dataclass(frozen=True)
class HeadConfig:
    hidden: int = 96
    layers: int = 3
    kernel: int = 5
    dropout: float = 0.1
    use_roi: bool = True

    def __post_init__(self):
        at_least(self, 1, "hidden", "layers", "kernel")
        within(self, 0, 1, "dropout", high_open=True)
        if self.kernel % 2 == 0:  # an even kernel changes the series' length
            raise BadValue("kernel", f"must be odd, got {self.kernel}")


@dataclass(frozen=True)
class FitConfig:
    split: str = "train"
    steps: int = 600
    batch_size: int = 32
    window: int = 48
    lr: float = 2e-3
    weight_decay: float = 1e-4
    match_iou: float = 0.5
    seed: int = 0

    def __post_init__(self):
        at_least(self, 1, "steps", "batch_size", "window")
        above(self, 0, "lr")
        at_least(self, 0, "weight_decay")
        within(self, 0, 1, "match_iou", low_open=True)
        within(self, 0, SEED_MAX, "seed")


@dataclass(frozen=True)
class AcarConfig:
    """Sizes of the ACAR relation module (:mod:`roadtrack.events.relation`). The ROAD++ baseline's
    ACAR head (SlowFast-R50, 2304 channels, 7x7 RoIs) reduces to 1024, relates at 512, depth 2,
    kernel 3, max-pooling 2x before HR2O. Here the inputs are the event head's ~100 per-frame
    features and its width is 96, so widths scale down to 32 and 16 (the seed's 2:1); depth,
    kernel and pooling are the seed's. Cost grows with actors x grid^2 x hidden^2 per track frame:
    these sizes make a training step about 10x the plain head's on a CPU."""

    actors: int = 4  # other actors of the frame each track frame relates to (nearest first)
    grid: int = 6  # side of the context map the frame's actors are laid out on (HR2O: 2x2)
    reduce: int = 32  # actor features reduced to this width (ACAR's reduce_dim)
    hidden: int = 16  # actor-context and HR2O width (ACAR's hidden_dim)
    depth: int = 2  # HR2O blocks
    kernel: int = 3  # HR2O convolution kernel

    def __post_init__(self):
        at_least(self, 1, "actors", "reduce", "hidden", "depth", "kernel")
        at_least(self, 3, "grid")  # the 3x3 actor-context convolution needs a 3x3 map
        if self.kernel % 2 == 0:  # an even kernel changes the map's size
            raise BadValue("kernel", f"must be odd, got {self.kernel}")


@dataclass(frozen=True)
class EventsConfig:
    head: HeadConfig = field(default_factory=HeadConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    tubes: TubeConfig = field(default_factory=TubeConfig)
    relation: str = "none"
    acar: AcarConfig = field(default_factory=AcarConfig)

    def __post_init__(self):
        one_of(self, "relation", "none", "acar")

    @classmethod
    def from_dict(cls, data: dict | None, path: str | Path | None = None) -> EventsConfig:
        """Keys checked as everywhere in a config: unknown, ill-typed or out-of-range values raise
        UserError naming the key and ``path``."""
        return section_from_dict(cls, data, "events.", path)

