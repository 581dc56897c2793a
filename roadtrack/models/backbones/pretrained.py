"""Published backbone weights into roadtrack's backbones: name mapping, shape check, a report.

SlowFast checkpoints come in four layouts, told apart by their tensor names:

- PySlowFast (``.pyth``, ``model_state``): ``s1.pathway0_stem.conv.weight``,
  ``s2.pathway1_res0.branch2.a_bn.running_mean``, ``s1_fuse.conv_f2s.weight``, ``head.*``;
- Caffe2 (the PySlowFast model zoo's ``.pkl``): ``conv1_w``, ``res_conv1_bn_s``,
  ``t_res2_0_branch2a_w``, ``t_pool1_subsample_bn_riv``: renamed to PySlowFast's first;
- pytorchvideo (``slowfast_r50``): ``blocks.1.multipathway_blocks.0.res_blocks.0.branch2.conv_a``;
- roadtrack's own: a run checkpoint (``backbone.body.*``) or a backbone body's state dict.

torchvision's video models keep torchvision's names (their ``fc``/``head`` is the classifier).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...errors import UserError
from ...io.checkpoints import read_weights_file
from .slowfast import SlowFast

HEAD = "classification head"
NOT_BACKBONE = "not the backbone body (decoder, heads, projections)"
PATHWAYS = ("slow", "fast")

# Caffe2 blob name -> PySlowFast name, applied in order (the Caffe2 model zoo's conventions)
_C2_RULES = [
    (r"^t_pool1_subsample_bn_", "s1_fuse.bn."),
    (r"^t_pool1_subsample_", "s1_fuse.conv_f2s."),
    (r"^t_res(\d+)_\d+_branch2c_bn_subsample_bn_", r"s\1_fuse.bn."),
    (r"^t_res(\d+)_\d+_branch2c_bn_subsample_", r"s\1_fuse.conv_f2s."),
    (r"^(t_)?res(\d+)_(\d+)_branch(\d)([a-z])_", r"\1s\2.pathway0_res\3.branch\4.\5_"),
    (r"^(t_)?res(\d+)_(\d+)_branch(\d)_", r"\1s\2.pathway0_res\3.branch\4_"),
    (r"^(t_)?res_conv1_bn_", r"\1s1.pathway0_stem.bn."),
    (r"^(t_)?conv1_", r"\1s1.pathway0_stem.conv."),
    (r"^t_(s\d+\.)pathway0", r"\1pathway1"),  # t_ marks the fast pathway
    (r"^pred_", "head.projection."),
    (r"bn[._]s$", "bn.weight"), (r"bn[._]b$", "bn.bias"),
    (r"bn[._]rm$", "bn.running_mean"), (r"bn[._]riv$", "bn.running_var"),
    (r"[._]w$", ".weight"), (r"[._]b$", ".bias"),
]
_C2_SKIP = re.compile(r"(momentum|^lr$|^model_iter$)")

_PYSLOWFAST = [  # PySlowFast name -> roadtrack SlowFast name
    (r"^s1\.pathway(\d)_stem\.conv\.", lambda m: f"{PATHWAYS[int(m[1])]}_stem.0."),
    (r"^s1\.pathway(\d)_stem\.bn\.", lambda m: f"{PATHWAYS[int(m[1])]}_stem.1."),
    (r"^s(\d)_fuse\.conv_f2s\.", lambda m: f"laterals.{int(m[1]) - 1}.0."),
    (r"^s(\d)_fuse\.bn\.", lambda m: f"laterals.{int(m[1]) - 1}.1."),
    (r"^s(\d)\.pathway(\d)_res(\d+)\.branch1\.",
     lambda m: f"{PATHWAYS[int(m[2])]}_stages.{int(m[1]) - 2}.{m[3]}.downsample.0."),
    (r"^s(\d)\.pathway(\d)_res(\d+)\.branch1_bn\.",
     lambda m: f"{PATHWAYS[int(m[2])]}_stages.{int(m[1]) - 2}.{m[3]}.downsample.1."),
    (r"^s(\d)\.pathway(\d)_res(\d+)\.branch2\.([abc])(_bn)?\.",
     lambda m: f"{PATHWAYS[int(m[2])]}_stages.{int(m[1]) - 2}.{m[3]}."
               f"{'bn' if m[5] else 'conv'}{'abc'.index(m[4]) + 1}."),
]
_PYTORCHVIDEO = [  # pytorchvideo name -> roadtrack SlowFast name
    (r"^blocks\.0\.multipathway_blocks\.(\d)\.conv\.",
     lambda m: f"{PATHWAYS[int(m[1])]}_stem.0."),
    (r"^blocks\.0\.multipathway_blocks\.(\d)\.norm\.",
     lambda m: f"{PATHWAYS[int(m[1])]}_stem.1."),
    (r"^blocks\.(\d)\.multipathway_fusion\.conv_fast_to_slow\.", lambda m: f"laterals.{m[1]}.0."),
    (r"^blocks\.(\d)\.multipathway_fusion\.norm\.", lambda m: f"laterals.{m[1]}.1."),
    (r"^blocks\.(\d)\.multipathway_blocks\.(\d)\.res_blocks\.(\d+)\.branch1_(conv|norm)\.",
     lambda m: f"{PATHWAYS[int(m[2])]}_stages.{int(m[1]) - 1}.{m[3]}.downsample."
               f"{0 if m[4] == 'conv' else 1}."),
    (r"^blocks\.(\d)\.multipathway_blocks\.(\d)\.res_blocks\.(\d+)\.branch2\.(conv|norm)_([abc])\.",
     lambda m: f"{PATHWAYS[int(m[2])]}_stages.{int(m[1]) - 1}.{m[3]}."
               f"{'conv' if m[4] == 'conv' else 'bn'}{'abc'.index(m[5]) + 1}."),
]
_LAYOUTS: dict[str, tuple[re.Pattern, list, re.Pattern]] = {  # marker, rules, head
    "PySlowFast": (re.compile(r"^s1\.pathway0_stem\."), _PYSLOWFAST, re.compile(r"^head\.")),
    "pytorchvideo": (re.compile(r"^blocks\.0\.multipathway_blocks\."), _PYTORCHVIDEO,
                     re.compile(r"^blocks\.[5-9]\.")),
}


def caffe2_to_pyslowfast(name: str) -> str:
    """A Caffe2 blob name in PySlowFast's naming (``t_res2_0_branch2a_w`` ->
    ``s2.pathway1_res0.branch2.a.weight``)."""
    for pattern, repl in _C2_RULES:
        name = re.sub(pattern, repl, name)
    return name


def _apply(rules, name: str) -> str | None:
    for pattern, repl in rules:
        m = re.match(pattern, name)
        if m:
            return repl(m) + name[m.end():]
    return None


@dataclass
class Mapping:
    """What a checkpoint's tensors become: ``pairs`` (source name, model name, tensor) and
    ``skipped`` (source name, why)."""

    layout: str
    pairs: list[tuple[str, str, torch.Tensor]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _own_name(name: str, whole_model: bool) -> tuple[str | None, str]:
    """A roadtrack checkpoint name on the body (None, why when it is something else): a whole
    model's (``backbone.body.*``) or a body's own state dict."""
    for prefix in ("backbone.body.", "body."):
        if name.startswith(prefix):
            return name[len(prefix):], ""
    return (None, NOT_BACKBONE) if whole_model else (name, "")


def map_state(body: nn.Module, kind: str, state: dict) -> Mapping:
    """Map a file's tensors (``kind`` "torch" or "caffe2", see
    :func:`roadtrack.io.checkpoints.read_weights_file`) onto ``body``'s names."""
    state = {re.sub(r"^module\.", "", k): v for k, v in state.items()}  # a DDP-wrapped model
    own = set(body.state_dict())
    if kind == "caffe2":
        renamed = {}
        skipped = []
        for name, array in state.items():
            if _C2_SKIP.search(name):
                skipped.append((name, "optimiser state"))
            else:
                renamed[caffe2_to_pyslowfast(name)] = torch.from_numpy(np.array(array))
        mapping = _map_named(renamed, own, isinstance(body, SlowFast), "Caffe2 (PySlowFast)")
        mapping.skipped[:0] = skipped
        return mapping
    return _map_named(state, own, isinstance(body, SlowFast), None)


def _map_named(state: dict, own: set[str], slowfast: bool, layout: str | None) -> Mapping:
    rename: Callable[[str], tuple[str | None, str]]
    found = next((name for name, (marker, _, _) in _LAYOUTS.items()
                  if slowfast and any(marker.match(k) for k in state)), None)
    if found is not None:
        _, rules, head = _LAYOUTS[found]

        def rename(name: str) -> tuple[str | None, str]:
            if head.match(name):
                return None, HEAD
            target = _apply(rules, name)
            return (target, "") if target is not None else (None, "no such layer in roadtrack")
    elif any(k.startswith("backbone.body.") for k in state) \
            or (slowfast and any(k.startswith("body.") or k in own for k in state)):
        found = "roadtrack"
        whole = any(k.startswith("backbone.body.") for k in state)

        def rename(name: str) -> tuple[str | None, str]:
            return _own_name(name, whole)
    else:
        found = "torchvision"

        def rename(name: str) -> tuple[str | None, str]:
            if name.startswith(("fc.", "head.")):
                return None, HEAD
            return re.sub(r"^layer(\d)\.", lambda m: f"stages.{int(m[1]) - 1}.", name), ""
    mapping = Mapping(layout or found)
    for name, tensor in state.items():
        target, why = rename(name)
        if target is None:
            mapping.skipped.append((name, why))
        elif target.endswith("num_batches_tracked") and target not in own:
            mapping.skipped.append((name, "BatchNorm counter (frozen BatchNorm keeps none)"))
        else:
            mapping.pairs.append((name, target, tensor))
    return mapping


def _examples(names: list[str], limit: int = 2) -> str:
    shown = ", ".join(names[:limit])
    return shown + (", ..." if len(names) > limit else "")


def load_pretrained(body: nn.Module, path: str | Path) -> list[str]:
    """Load the weights at ``path`` into ``body`` (a backbone body: SlowFast or a torchvision
    one); returns the report's lines (loaded / skipped, with why / missing). A file that is not
    a checkpoint, one of another architecture, or tensors of other shapes raise one UserError
    line naming ``path``; nothing is loaded then."""
    kind, state = read_weights_file(path)
    mapping = map_state(body, kind, state)
    own = body.state_dict()
    fits, unplaced, reshaped = {}, [], []
    for source, target, tensor in mapping.pairs:
        if target not in own:
            unplaced.append(source)
        elif tuple(tensor.shape) != tuple(own[target].shape):
            reshaped.append((source, target, tensor))
        else:
            fits[target] = tensor
    missing = [k for k in own if k not in fits and not k.endswith("num_batches_tracked")]
    lines = [f"pretrained backbone weights {path} ({mapping.layout} layout):",
             f"  loaded   {len(fits):5d} tensors  {_examples(list(fits))}"]
    reasons: dict[str, list[str]] = {}
    for source, why in mapping.skipped:
        reasons.setdefault(why, []).append(source)
    for why, names in reasons.items():
        lines.append(f"  skipped  {len(names):5d} tensors  {why} ({_examples(names)})")
    lines.append(f"  missing  {len(missing):5d} tensors  {_examples(missing)}".rstrip())
    name = type(body).__name__
    if not fits:
        first = mapping.pairs[0][0] if mapping.pairs else next(iter(state))
        raise UserError(f"not weights of this {name}: none of the file's {len(state)} tensors "
                        f"fit it (first: {first})", path)
    if reshaped:
        source, target, tensor = reshaped[0]
        raise UserError(f"{len(reshaped)} tensors do not fit this {name} (first: {source} "
                        f"{list(tensor.shape)}, the model's {target} {list(own[target].shape)})",
                        path)
    if unplaced or missing:
        parts = [f"{len(unplaced)} of its tensors have no place (first: {unplaced[0]})"] \
            if unplaced else []
        parts += [f"{len(missing)} of the model's are missing (first: {missing[0]})"] \
            if missing else []
        raise UserError(f"weights of another architecture than this {name}: "
                        f"{'; '.join(parts)}", path)
    with torch.no_grad():
        for target, tensor in fits.items():
            own[target].copy_(tensor)
    return lines


def load_backbone_weights(body: nn.Module, cfg) -> list[str]:
    """:func:`load_pretrained` of ``cfg.pretrained`` (``cfg``: a BackboneConfig): a file, or
    for torchvision backbones a weights name (KINETICS400_V1) read from torch's hub cache."""
    spec = cfg.pretrained
    if cfg.name != "slowfast":
        from .torchvision_video import hub_weights_file, is_weights_name  # lazy: torchvision

        if is_weights_name(cfg.name, spec):
            return load_pretrained(body, hub_weights_file(cfg.name, spec))
    return load_pretrained(body, spec)
