"""DeepSORT-style multi-object tracking in numpy (no torch): Kalman motion, lap assignment,
appearance galleries, ByteTrack's low-score round.

    from roadtrack.tracking import Tracker, load_config, track_sequence
"""
from .config import TrackerConfig, load_config
from .sequence import SequenceTracks, track_sequence
from .tracker import Tracker

__all__ = ["SequenceTracks", "Tracker", "TrackerConfig", "load_config", "track_sequence"]
