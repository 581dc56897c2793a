"""Run folders made from ground truth, for testing the stages after detection."""
import numpy as np


def gt_tracks(video, rng, noise=0.15, drop=0.1):
    """A tracks artifact made from ground truth: jittered boxes, noisy label probabilities,
    some rows dropped (gaps that the event stage interpolates)."""
    keep = rng.random(video.num_boxes) >= drop
    n = int(keep.sum())
    w, h = video.width, video.height
    boxes = video.boxes[keep] * np.array([w, h, w, h]) + rng.normal(0, 1.0, (n, 4))

    def probs(t):
        p = video.labels[t][keep].astype(np.float32) * (1 - noise)
        return np.clip(p + rng.uniform(0, noise, p.shape), 0, 1).astype(np.float32)

    return dict(frames=video.frames[keep], boxes=boxes.astype(np.float32),
                scores=rng.uniform(0.6, 1.0, n).astype(np.float32), agent=probs("agent"),
                action=probs("action"), loc=probs("loc"),
                embeddings=np.zeros((n, 0), np.float16), width=w, height=h, fps=10.0,
                track_ids=video.track_ids[keep], det_index=np.arange(n))


def make_gt_run(run, anno, seed, with_events=False):
    """Write tracks (and optionally events) made from ``anno``'s ground truth into ``run``."""
    from roadtrack.events.config import EventsConfig
    from roadtrack.events.stage import run_events
    from roadtrack.io.artifacts import save_stage

    rng = np.random.default_rng(seed)
    for name, video in anno.videos.items():
        save_stage(run, "tracks", name, **gt_tracks(video, rng))
        if with_events:
            run_events(run, name, anno.labels, EventsConfig())
    return run, anno
