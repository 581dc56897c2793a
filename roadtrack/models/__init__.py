"""Video agent detector: SlowFast (or MC3-18) backbone + STMixer decoder.

``roadtrack.models.config`` (the settings) imports no torch; the model names below import torch
when first used, so that reading a run config stays light.
"""
from __future__ import annotations

import importlib

__all__ = ["Detector", "build_detector", "normalize_clip"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(".detector", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
