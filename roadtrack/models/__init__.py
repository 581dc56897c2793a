"""Video agent detector: SlowFast (or MC3-18) backbone + STMixer decoder.

Importing this package imports torch; the CLI imports it lazily inside the commands that need it.
"""
from .detector import Detector, build_detector, normalize_clip

__all__ = ["Detector", "build_detector", "normalize_clip"]
