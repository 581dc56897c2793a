"""Checkpoints: written atomically, read with ``weights_only`` and checked before use.

A checkpoint is a dict (see the detector contract): ``model`` (state dict), ``config`` (the full
resolved config), ``labels`` (``LabelSpace.to_dict()``), ``epoch``, ``step``, ``batch``
(batches done in that epoch), ``optimizer``, ``scheduler``, ``scaler``, ``rng`` (one entry per
rank), ``best`` and ``elapsed_s``. Every value is a tensor or a plain container, so loading needs
no pickled code.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..io.atomic import atomic_path
from ..io.checkpoints import read_torch_file

REQUIRED_KEYS = ("model", "config", "labels")


def save_checkpoint(path: str | Path, state: dict) -> None:
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint on the CPU; a missing, corrupt or foreign file raises UserError."""
    state = read_torch_file(path)
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        raise UserError(f"not a roadtrack checkpoint (needs keys {', '.join(REQUIRED_KEYS)})", path)
    for key in ("model", "config", "labels"):
        if not isinstance(state[key], dict):
            raise UserError(f"not a roadtrack checkpoint ('{key}' is not a mapping)", path)
    return state


def check_labels(saved: dict, labels: dict, path: str | Path, what: str = "the data") -> None:
    """Raise UserError when the label lists a checkpoint was trained on differ from ``labels``."""
    for key in ("agent_labels", "action_labels", "loc_labels"):
        if list(saved.get(key, [])) != list(labels.get(key, [])):
            kind = key.split("_")[0]
            raise UserError(f"label space does not match {what}: checkpoint has "
                            f"{len(saved.get(key, []))} {kind} classes "
                            f"{list(saved.get(key, []))[:4]}..., {what} has "
                            f"{len(labels.get(key, []))} {list(labels.get(key, []))[:4]}...", path)


def rng_state() -> dict:
    """The state of every random number generator this process uses, as tensors and lists."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)},
             "python": list(random.getstate()[1]) + [random.getstate()[2]]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    *internal, gauss = state["python"]
    random.setstate((3, tuple(int(v) for v in internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
