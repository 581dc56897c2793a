"""Reading torch checkpoint files safely: ``weights_only`` (no pickled code runs), every failure
one UserError line naming the file; network weights from others (torch files and Caffe2 pickles,
the latter through :mod:`.safe_pickle`). Imports torch: only code that already uses torch
imports it.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from . import safe_pickle

ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive...
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # ...or, before 1.6, a pickle stream


def read_torch_file(path: str | Path, what: str = "checkpoint", allow: tuple = ()):
    """``torch.load`` with ``weights_only``: tensors and plain containers only, no code runs
    (``allow``: further classes to admit). A missing, empty, truncated or foreign file, or one
    holding other objects, raises one UserError line naming ``path``."""
    path = Path(path)
    a = "an" if what[0] in "aeiou" else "a"
    if not path.is_file():
        raise UserError(f"no such {what}", path)
    with open(path, "rb") as f:
        head = f.read(len(LEGACY_MAGIC))
    if not head:
        raise UserError(f"empty file, not {a} {what}", path)
    if head.startswith(ZIP_MAGIC) and not zipfile.is_zipfile(path):
        raise UserError(f"truncated or damaged {what} (its zip archive has no end)", path)
    if not head.startswith(ZIP_MAGIC) and head != LEGACY_MAGIC:
        raise UserError(f"not {a} {what} (not a file written by torch.save)", path)
    try:
        with torch.serialization.safe_globals(list(allow)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found:
            raise UserError(f"refused: the {what} holds a {found.group(1)} object (only tensors "
                            "and plain containers are loaded, so no code runs)", path) from None
        raise UserError(f"not {a} {what}, or a damaged one (unreadable pickle)", path) from None
    except Exception as err:  # noqa: BLE001 - torch raises many types for a damaged file
        raise UserError(f"truncated or damaged {what} ({type(err).__name__} while reading)",
                        path) from None


def load_model_state(model: torch.nn.Module, state: dict, path: str | Path) -> None:
    """Load weights strictly; missing, unexpected or reshaped tensors raise one UserError line
    that counts each kind and names the first of each."""
    own = model.state_dict()
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError("checkpoint weights are not all tensors", path)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    reshaped = [k for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"{_count(missing, 'tensor')} missing (first: {missing[0]})")
    if unexpected:
        problems.append(f"{_count(unexpected, 'tensor')} the model lacks (first: "
                        f"{unexpected[0]})")
    if reshaped:
        k = reshaped[0]
        problems.append(f"{_count(reshaped, 'tensor')} of other shapes (first: {k} "
                        f"{list(state[k].shape)}, the model's {list(own[k].shape)})")
    if problems:
        raise UserError(f"checkpoint does not fit the model: {'; '.join(problems)}", path)
    model.load_state_dict(state)


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


# containers of a state dict: PySlowFast / pytorchvideo (model_state), roadtrack runs (model),
# Lightning and others (state_dict)
STATE_KEYS = ("model_state", "model", "state_dict")


def read_weights_file(path: str | Path, what: str = "pretrained weights") -> tuple[str, dict]:
    """Network weights of someone else's file: ("torch", name -> tensor) from a torch.save file
    (the state dict itself or one under ``model_state``/``model``/``state_dict``), or
    ("caffe2", blob name -> numpy array) from a Caffe2 pickle ``{"blobs": {...}}`` read as data
    (:mod:`roadtrack.io.safe_pickle`). Anything else is one UserError line naming ``path``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such {what} file", path)
    with open(path, "rb") as f:
        head = f.read(len(LEGACY_MAGIC))
    if head.startswith(ZIP_MAGIC) or head == LEGACY_MAGIC:
        return "torch", _torch_state(read_torch_file(path, what), path, what)
    return "caffe2", _caffe2_blobs(path, what)


def _torch_state(obj, path: Path, what: str) -> dict:
    if isinstance(obj, dict):
        for key in STATE_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj \
            or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"not {what}: no state dict of tensors in it (looked at the file and "
                        f"its {', '.join(STATE_KEYS)} entries)", path)
    return dict(obj)


def _caffe2_blobs(path: Path, what: str) -> dict:
    try:
        obj = safe_pickle.loads(path.read_bytes(), encoding="latin1")
    except safe_pickle.RefusedGlobal as err:
        raise UserError(f"refusing to load {err}: {what} hold arrays, never code", path) \
            from None
    except Exception:  # noqa: BLE001 - anything raised while decoding untrusted bytes
        raise UserError(f"not {what} (neither a torch.save file nor a readable Caffe2 pickle)",
                        path) from None
    blobs = obj.get("blobs") if isinstance(obj, dict) else None
    if not isinstance(blobs, dict) or not blobs:
        raise UserError(f"not {what}: a pickle without a Caffe2 'blobs' dict", path)
    arrays = {k: v for k, v in blobs.items() if isinstance(k, str) and isinstance(v, np.ndarray)}
    if not arrays:
        raise UserError(f"not {what}: its Caffe2 'blobs' hold no arrays", path)
    return arrays
