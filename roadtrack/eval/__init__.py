"""Evaluators: MOT metrics (``mot``), ROAD++ frame-/video-mAP (``road``: ``ap``, ``frame_map``,
``video_map``, ``inputs``), submission rules (``submission``, ``validate``) and ``plots``.

Nothing here imports torch: the evaluation commands start fast.
"""
