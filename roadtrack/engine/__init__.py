"""Training and inference engines: clip datasets, augmentations, samplers, DDP, train, detect.

Import the submodules directly (``roadtrack.engine.train``); this package imports nothing heavy.
"""
