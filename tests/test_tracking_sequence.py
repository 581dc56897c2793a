import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadtrack.errors import UserError
from roadtrack.tracking.config import load_config
from roadtrack.tracking.sequence import track_sequence
from roadtrack.tracking.tracker import Tracker


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


@pytest.mark.parametrize("preset", ["sort", "bytetrack", "deepsort"])
def test_frames_skipped_while_idle_give_the_same_tracks(preset, monkeypatch):
    """Runs of empty frames with no track alive are skipped, not stepped: the same tracks as
    stepping every frame, and a frame number near 2**31 costs no more than any other."""
    frames, boxes, _ = _scene(20)
    gapped = frames + np.where(frames > 8, 500, 0) + np.where(frames > 14, 3000, 0)
    rng = np.random.default_rng(3)
    features = rng.normal(size=(len(frames), 8))
    cfg = load_config(preset, output_box="kalman")
    skipped = track_sequence(gapped, boxes, features=features, config=cfg)
    steps = []
    step = Tracker.step
    monkeypatch.setattr(Tracker, "step", lambda self, *a: steps.append(1) or step(self, *a))
    monkeypatch.setattr(Tracker, "idle", property(lambda self: False))
    stepped = track_sequence(gapped, boxes, features=features, config=cfg)
    assert len(steps) == gapped.max() == stepped.num_frames == skipped.num_frames
    for field in ("det_index", "boxes", "track_ids", "frames"):
        np.testing.assert_array_equal(getattr(skipped, field), getattr(stepped, field))
    monkeypatch.undo()
    far = track_sequence(np.append(gapped, 2**31 - 1), np.vstack([boxes, boxes[:1]]),
                         config=cfg)
    assert far.num_frames == 2**31 - 1  # its lone detection starts a track never confirmed
    np.testing.assert_array_equal(far.det_index, skipped.det_index)


def test_kalman_boxes_are_written_and_lie_closer_to_the_path_than_the_detections():
    frames, boxes, truth = _scene(seed=3)
    x = 20 + 4 * frames + truth * 150.0
    y = 50 + truth * 30.0
    path = np.stack([x, y, x + 40, y + 90], axis=1)  # (N, 4) the noise-free boxes
    cfg = load_config("bytetrack")
    kalman = track_sequence(frames, boxes, config=cfg)
    plain = track_sequence(frames, boxes, config=cfg.replace(output_box="detection"))
    np.testing.assert_array_equal(plain.boxes, boxes[plain.det_index])
    np.testing.assert_array_equal(kalman.det_index, plain.det_index)  # the same rows
    assert not np.allclose(kalman.boxes, boxes[kalman.det_index])
    late = kalman.frames > 10  # the filter has settled
    err_kalman = np.abs(kalman.boxes - path[kalman.det_index])[late].mean()
    err_det = np.abs(boxes[kalman.det_index] - path[kalman.det_index])[late].mean()
    assert err_kalman < 0.8 * err_det


def test_a_track_is_written_only_in_frames_a_detection_updated_it():
    frames, boxes, truth = _scene()
    r = track_sequence(frames, boxes, config=load_config("bytetrack"))
    obj2 = r.track_ids[truth[r.det_index] == 2][0]
    assert not np.isin(r.frames[r.track_ids == obj2], [10, 11]).any()  # missed: no row
    assert (r.track_ids == obj2).sum() == (truth == 2).sum()


def test_thresholds_sit_in_the_detector_score_range_of_the_input():
    """Object A, scored 0.8, starts a track when the detector's scores span [0, 1]
    (new_track_score 0.7) but not when they span [0.5, 1] (0.7 of the way: 0.85)."""
    frames = np.repeat(np.arange(1, 6), 2)
    objects = zip(frames, [0, 1] * 5, strict=True)  # rows alternate: object A, object B
    boxes = np.array([[10 + 3 * f, 10, 50 + 3 * f, 90] if k == 0 else
                      [400, 10 + 2 * f, 440, 90 + 2 * f] for f, k in objects], dtype=float)
    a_rows = [0, 2, 4, 6, 8]
    cfg = load_config("bytetrack")
    for floor, tracked in ((0.5, False), (0.0, True)):
        scores = np.where(np.arange(10) % 2 == 0, 0.8, 0.95)
        scores[1] = floor  # object B's first detection: the lowest score in the input
        r = track_sequence(frames, boxes, scores, config=cfg)
        assert np.isin(a_rows, r.det_index).all() == tracked
        assert np.isin([3, 5, 7, 9], r.det_index).all()  # object B is tracked either way
    scores[1] = 0.5
    as_scores = track_sequence(frames, boxes, scores, config=cfg.replace(score_range="absolute"))
    assert np.isin(a_rows, as_scores.det_index).all()
