"""STMixer decoder pieces: adaptive 4-D sampling, adaptive mixing, decoder stages."""
from .mixing import AdaptiveMixing
from .sampling import (
                       FeatureLayout,
                       layout_features,
                       make_sample_points,
                       mhaq3d,
                       sample4d,
                       translate_to_linear_weight,
)

__all__ = ["AdaptiveMixing", "FeatureLayout", "layout_features", "make_sample_points", "mhaq3d",
           "sample4d", "translate_to_linear_weight"]
