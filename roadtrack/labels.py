"""Label spaces of ROAD and ROAD++: used class lists, name mapping, duplex/triplet children.

Annotation files index every ``*_ids`` list into ``all_<type>_labels``; the tasks (and submission
``label_id``) use positions in ``<type>_labels``. Mapping goes by name; ids of unused classes drop.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import UserError

BOX_TYPES = ("agent", "action", "loc")
"""The label types every box carries (the detector's and the event head's heads); duplex and
triplet combine them."""

LABEL_TYPES = BOX_TYPES + ("duplex", "triplet")
"""The five label types the challenge evaluates, in the official order."""

ALL_TYPES = LABEL_TYPES + ("av_action",)

EVAL_SIZES = {"road_waymo": (840, 600), "road": (682, 512)}
"""Width and height of the official evaluation frame per dataset."""


@dataclass(frozen=True)
class LabelSpace:
    """The used class lists of one dataset, in the order the official scorer indexes them."""

    dataset: str
    agent: tuple[str, ...]
    action: tuple[str, ...]
    loc: tuple[str, ...]
    duplex: tuple[str, ...]
    triplet: tuple[str, ...]
    av_action: tuple[str, ...] = ()
    source: str | None = field(default=None, compare=False, repr=False)
    """The file the lists were read from, named by errors about them."""
    _index: dict = field(default_factory=dict, compare=False, repr=False)

    def names(self, label_type: str) -> tuple[str, ...]:
        """Used class names of ``label_type`` (agent, action, loc, duplex, triplet, av_action)."""
        if label_type not in ALL_TYPES:
            raise KeyError(f"unknown label type {label_type!r}")
        return getattr(self, label_type)

    def num_classes(self, label_type: str) -> int:
        return len(self.names(label_type))

    def index(self, label_type: str, name: str) -> int:
        """Position of ``name`` in the used list of ``label_type``; -1 when it is not used."""
        key = (label_type, name)
        if key not in self._index:
            names = self.names(label_type)
            self._index[key] = names.index(name) if name in names else -1
        return self._index[key]

    @property
    def eval_size(self) -> tuple[int, int]:
        """(width, height) of the frame that submissions and the scorer use."""
        return EVAL_SIZES.get(self.dataset, EVAL_SIZES["road_waymo"])

    def duplex_children(self) -> np.ndarray:
        """(num_duplex, 2) int: agent and action index of each duplex class."""
        return self._children("duplex", ("agent", "action"))

    def triplet_children(self) -> np.ndarray:
        """(num_triplet, 3) int: agent, action and loc index of each triplet class."""
        return self._children("triplet", BOX_TYPES)

    def _children(self, label_type: str, parts: tuple[str, ...]) -> np.ndarray:
        rows = []
        for name in self.names(label_type):
            pieces = name.split("-")
            if len(pieces) != len(parts):
                raise UserError(f"{label_type} class {name!r} does not split into "
                                f"{len(parts)} parts", self.source)
            row = [self.index(part, piece) for part, piece in zip(parts, pieces, strict=True)]
            if min(row) < 0:
                raise UserError(f"{label_type} class {name!r} names a class missing from its "
                                "parts", self.source)
            rows.append(row)
        return np.asarray(rows, dtype=np.int64).reshape(-1, len(parts))

    def to_dict(self) -> dict:
        """Plain lists, as saved in run folders and checkpoints."""
        out = {"dataset": self.dataset}
        for label_type in ALL_TYPES:
            out[f"{label_type}_labels"] = list(self.names(label_type))
        return out

    @classmethod
    def from_dict(cls, data: dict, dataset: str | None = None,
                  source: str | Path | None = None) -> LabelSpace:
        """Build from a dict holding ``<type>_labels`` lists (an annotation file, a saved space)
        read from the file ``source``."""
        source = None if source is None else str(source)
        missing = [f"{t}_labels" for t in LABEL_TYPES if f"{t}_labels" not in data]
        if missing:
            raise UserError(f"missing label lists: {', '.join(missing)}", source)
        lists = {t: tuple(str(n) for n in data.get(f"{t}_labels", [])) for t in ALL_TYPES}
        return cls(dataset=dataset or data.get("dataset", "road_waymo"), source=source, **lists)


def roadpp() -> LabelSpace:
    """The built-in ROAD++ (ROAD-Waymo) label space: 10 agents, 22 actions, 16 locations,
    49 duplexes, 86 triplets and 6 AV actions."""
    text = resources.files("roadtrack.data").joinpath("roadpp_labels.json").read_text()
    return LabelSpace.from_dict(json.loads(text), dataset="road_waymo")


def name_mapping(all_names: list[str], used_names: tuple[str, ...]) -> np.ndarray:
    """(len(all_names),) int: used index of each ``all_*`` id, -1 for classes that are not used."""
    used = {name: i for i, name in enumerate(used_names)}
    return np.array([used.get(name, -1) for name in all_names], dtype=np.int64)
