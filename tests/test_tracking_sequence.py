import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadtrack.errors import UserError
from roadtrack.tracking.config import load_config
from roadtrack.tracking.sequence import track_sequence


def _scene(num_frames=30, seed=0):
    """Three objects moving right; object 2 is missing in frames 10-11."""
    rng = np.random.default_rng(seed)
    frames, boxes, truth = [], [], []
    for f in range(1, num_frames + 1):
        for obj in range(3):
            if obj == 2 and f in (10, 11):
                continue
            x, y = 20 + 4 * f + obj * 150, 50 + obj * 30
            frames.append(f)
            boxes.append([x, y, x + 40, y + 90] + rng.normal(0, 1, 4))
            truth.append(obj)
    return np.array(frames), np.array(boxes), np.array(truth)


def test_sequence_ids_follow_the_objects_and_det_index_points_back():
    frames, boxes, truth = _scene()
    r = track_sequence(frames, boxes, config=load_config("bytetrack"))
    assert r.num_frames == 30 and r.num_tracks == 3
    assert len(r.det_index) == len(frames)  # backfill: every detection is kept
    np.testing.assert_array_equal(frames[r.det_index], r.frames)
    pairs = set(zip(truth[r.det_index].tolist(), r.track_ids.tolist(), strict=True))
    assert len(pairs) == 3  # one id per object
    assert np.all(np.diff(r.frames) >= 0)


def test_frames_out_of_order_give_the_same_tracks():
    frames, boxes, _ = _scene()
    order = np.random.default_rng(1).permutation(len(frames))
    a = track_sequence(frames, boxes)
    b = track_sequence(frames[order], boxes[order])
    np.testing.assert_array_equal(order[b.det_index], a.det_index)
    np.testing.assert_array_equal(b.track_ids, a.track_ids)


def test_backfill_keeps_tentative_rows_of_confirmed_tracks():
    frames, boxes, _ = _scene()
    cfg = load_config("sort", max_age=5)  # object 2 misses 2 frames: kept
    with_fill = track_sequence(frames, boxes, config=cfg)
    without = track_sequence(frames, boxes, config=cfg.replace(backfill=False))
    assert len(with_fill.det_index) - len(without.det_index) == 3 * (cfg.n_init - 1)
    assert with_fill.frames.min() == 1 and without.frames.min() == cfg.n_init


def test_empty_frames_age_tracks():
    frames, boxes, _ = _scene(10)
    later = frames + np.where(frames > 5, 100, 0)  # a 100-frame gap: tracks are lost
    r = track_sequence(later, boxes, config=load_config("bytetrack"))
    assert r.num_frames == 110 and r.num_tracks == 6


def test_invalid_rows_are_skipped_with_one_warning():
    frames, boxes, _ = _scene(10)
    boxes[3] = np.nan
    boxes[5, 2] = boxes[5, 0]  # zero width
    with pytest.warns(UserWarning, match="skipped 2 rows"):
        r = track_sequence(frames, boxes, source="x.txt")
    assert 3 not in r.det_index and 5 not in r.det_index


def test_rows_with_broken_embeddings_are_skipped():
    frames, boxes, _ = _scene(10)
    feats = np.ones((len(frames), 4), dtype=np.float16)
    feats[2, 1] = np.inf
    with pytest.warns(UserWarning, match="skipped 1 rows"):
        r = track_sequence(frames, boxes, features=feats, config=load_config("deepsort"))
    assert 2 not in r.det_index


def test_bad_frame_numbers_raise_user_error():
    frames, boxes, _ = _scene(5)
    frames = frames.astype(float)
    frames[2] = 0.5
    with pytest.raises(UserError, match="x.npz: frame numbers"):
        track_sequence(frames, boxes, source="x.npz")


def test_no_detections():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = track_sequence(np.zeros(0, int), np.zeros((0, 4)))
    assert r.num_frames == 0 and r.num_tracks == 0 and len(r.det_index) == 0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 60), st.integers(1, 12), st.integers(0, 2**31 - 1),
       st.sampled_from(["sort", "bytetrack", "deepsort"]))
def test_random_sequences_give_consistent_rows(n, max_frame, seed, preset):
    rng = np.random.default_rng(seed)
    frames = rng.integers(1, max_frame + 1, n)
    xy = rng.uniform(0, 200, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(-5, 60, (n, 2))], axis=1)  # some without area
    boxes[rng.random(n) < 0.1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = track_sequence(frames, boxes, rng.uniform(0, 1, n), config=load_config(preset))
    assert len(set(r.det_index.tolist())) == len(r.det_index)  # each detection used once
    np.testing.assert_array_equal(frames[r.det_index], r.frames)
    assert np.all(np.isfinite(boxes[r.det_index]))
    pairs = set(zip(r.frames.tolist(), r.track_ids.tolist(), strict=True))
    assert len(pairs) == len(r.det_index)  # one row per track per frame
    if len(r.track_ids):
        assert set(r.track_ids.tolist()) == set(range(1, r.num_tracks + 1))
