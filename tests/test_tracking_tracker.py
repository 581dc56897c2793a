import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from roadtrack.tracking.config import TrackerConfig, load_config
from roadtrack.tracking.tracker import Tracker, input_score_range, score_thresholds

SORT = load_config("sort")
BYTE = load_config("bytetrack")
DEEP = load_config("deepsort")


def _box(x, y, w=40.0, h=80.0):
    return [x, y, x + w, y + h]


def _run(tracker, frames):
    """frames: list of (boxes, scores[, features[, classes]]) -> list of id arrays."""
    out = []
    for args in frames:
        ids, _ = tracker.update(*[None if a is None else np.asarray(a) for a in args])
        out.append(ids)
    return out


def test_two_objects_keep_their_ids_and_rows_map_back():
    frames = [([_box(10 + 5 * t, 10), _box(300 - 5 * t, 200)], [0.9, 0.9]) for t in range(10)]
    frames[4] = (frames[4][0][::-1], [0.9, 0.9])  # rows given in the other order
    ids = _run(Tracker(SORT), frames)
    assert ids[0].tolist() == [1, 2]
    assert all(i.tolist() == [1, 2] for k, i in enumerate(ids) if k != 4)
    assert ids[4].tolist() == [2, 1]


def test_tentative_track_dies_at_its_first_miss():
    t = Tracker(SORT)
    t.update(np.array([_box(0, 0)]))
    t.update(np.zeros((0, 4)))
    assert len(t.tracks) == 0


def test_confirmed_track_lives_max_age_misses():
    cfg = SORT.replace(max_age=3)
    t = Tracker(cfg)
    for k in range(3):
        t.update(np.array([_box(10 + k, 10)]))
    assert t.tracks.confirmed.tolist() == [True]
    for _ in range(3):
        t.update(np.zeros((0, 4)))
    assert len(t.tracks) == 1
    t.update(np.zeros((0, 4)))
    assert len(t.tracks) == 0


def test_confirmed_flag_after_n_init_hits():
    t = Tracker(SORT)
    flags = [t.update(np.array([_box(10, 10)]))[1][0] for _ in range(4)]
    assert flags == [False, False, True, True]


def test_per_class_track_never_changes_class():
    cfg = SORT.replace(per_class=True)
    t = Tracker(cfg)
    for _ in range(3):
        ids, _ = t.update(np.array([_box(10, 10)]), None, None, np.array([1]))
    ids_other, _ = t.update(np.array([_box(10, 10)]), None, None, np.array([2]))
    assert ids_other[0] != ids[0]
    ids_any, _ = Tracker(SORT).update(np.array([_box(10, 10)]), None, None, np.array([2]))
    assert ids_any[0] == 1  # without per_class the classes are ignored


def test_low_score_detection_continues_a_track_only_with_the_second_round():
    frames = [([_box(10 + 4 * k, 10)], [0.9]) for k in range(4)] + [([_box(26, 10)], [0.3])]
    with_round = _run(Tracker(BYTE), frames)[-1]
    without = _run(Tracker(BYTE.replace(low_score=None)), frames)[-1]
    assert with_round[0] == 1 and without[0] == -1


def test_below_new_track_score_starts_no_track():
    ids, _ = Tracker(BYTE).update(np.array([_box(0, 0), _box(200, 0)]), np.array([0.55, 0.9]))
    assert ids.tolist() == [-1, 1]


def _identity(k, dim=16):
    v = np.zeros(dim)
    v[k] = 1.0
    return v


@pytest.mark.parametrize("gallery", ["budget", "ema"])
def test_appearance_cascade_recovers_a_track_after_misses(gallery):
    """DeepSORT preset: after 3 missed frames only appearance can re-attach a track."""
    def run(feature_back):
        t = Tracker(DEEP.replace(gallery=gallery), embedding_dim=16)
        for k in range(6):
            t.update(np.array([_box(10 + 2 * k, 10)]), np.ones(1), _identity(0)[None])
        for _ in range(3):
            t.update(np.zeros((0, 4)), np.ones(0), np.zeros((0, 16)))
        return t.update(np.array([_box(28, 10)]), np.ones(1), feature_back[None])[0][0]

    assert run(_identity(0)) == 1
    assert run(_identity(5)) != 1


def test_no_embeddings_runs_on_motion_and_iou():
    t = Tracker(DEEP, embedding_dim=0)
    ids = [t.update(np.array([_box(10 + 2 * k, 10)]))[0][0] for k in range(5)]
    assert ids == [1] * 5


def test_invalid_rows_get_no_track_and_do_not_disturb_the_rest():
    t = Tracker(SORT)
    bad = np.array([_box(10, 10), [np.nan, 0, 5, 5], [0, 0, np.inf, 5], [5, 5, 5, 9],
                    [9, 9, 3, 3]])
    for _ in range(3):
        ids, _ = t.update(bad, np.array([0.9, 0.9, 0.9, 0.9, np.nan]))
    assert ids.tolist() == [1, -1, -1, -1, -1]


def test_filterpy_path_tracks_the_same_as_the_batched_path():
    rng = np.random.default_rng(3)
    starts = rng.uniform(0, 500, (6, 2))
    frames = []
    for k in range(40):
        keep = rng.random(6) > 0.15
        xy = starts[keep] + k * 3 + rng.normal(0, 2, (keep.sum(), 2))
        frames.append((np.array([_box(x, y) for x, y in xy]).reshape(-1, 4),
                       rng.uniform(0.2, 1.0, keep.sum())))
    a = _run(Tracker(BYTE), frames)
    b = _run(Tracker(BYTE.replace(kalman="filterpy")), frames)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


finite = st.floats(-1e4, 1e4, allow_nan=False)
anything = st.one_of(finite, st.just(np.nan), st.just(np.inf), st.just(-np.inf))


@settings(max_examples=60, deadline=None)
@given(st.lists(arrays(np.float64, st.tuples(st.integers(0, 8), st.just(5)), elements=anything),
                min_size=1, max_size=12),
       st.sampled_from(["sort", "bytetrack", "deepsort"]), st.booleans())
def test_random_boxes_never_break_the_tracker(frames, preset, with_features):
    cfg = load_config(preset)
    dim = 8 if with_features else 0
    t = Tracker(cfg, embedding_dim=dim)
    rng = np.random.default_rng(0)
    for rows in frames:
        boxes, scores = rows[:, :4], np.abs(rows[:, 4]) / 1e4
        feats = rng.normal(size=(len(rows), dim)) if with_features else None
        if with_features and len(rows):
            feats[0, 0] = np.nan  # a broken embedding makes its row unusable
        ids, confirmed = t.update(boxes, scores, feats)
        assert ids.shape == (len(rows),) and confirmed.shape == (len(rows),)
        matched = ids[ids >= 0]
        assert len(set(matched.tolist())) == len(matched)  # one detection per track per frame
        assert not np.any(confirmed & (ids < 0))
        with np.errstate(invalid="ignore"):
            unusable = ~(np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > boxes[:, 0])
                         & (boxes[:, 3] > boxes[:, 1]) & (scores >= cfg.min_score))
        if with_features and len(rows) and cfg.appearance:
            assert ids[0] == -1
        assert np.all(ids[unusable] == -1)
        assert np.isfinite(t.tracks.mean).all()


def test_default_config_is_the_bytetrack_preset():
    assert TrackerConfig() == load_config(None)
    assert load_config(None).name == "bytetrack"


def test_score_thresholds_scale_into_the_given_range():
    t = score_thresholds(BYTE, (0.5, 1.0))
    assert (t.min, t.high, t.low, t.new_track) == pytest.approx((0.55, 0.8, 0.55, 0.85))
    assert score_thresholds(BYTE) == score_thresholds(BYTE, (0.0, 1.0))  # online: as scores
    assert score_thresholds(BYTE.replace(score_range="absolute"), (0.5, 1.0)).high == 0.6
    assert input_score_range(np.array([0.7, np.nan, 0.3, 0.9])) == (0.3, 1.0)
    assert input_score_range(np.array([0.97, 0.95])) == (0.5, 1.0)  # no weak detections seen
    assert input_score_range(np.array([-2.0, 3.0])) == (-2.0, 3.0)  # unnormalised scores
    assert input_score_range(np.zeros(0)) is None


def test_last_boxes_report_the_kalman_estimate_of_matched_detections():
    cfg = BYTE.replace(n_init=1)
    t, plain = Tracker(cfg), Tracker(cfg.replace(output_box="detection"))
    for k in range(5):
        for tracker in (t, plain):
            tracker.update(np.array([_box(10 + 5 * k, 10)]), np.array([0.9]))
    jittered = np.array([_box(38, 13)])  # 3 px off the path in x and y
    ids, _ = t.update(jittered, np.array([0.9]))
    plain.update(jittered, np.array([0.9]))
    assert ids[0] == 1
    np.testing.assert_array_equal(plain.last_boxes, jittered)
    assert 35 < t.last_boxes[0, 0] < 38 and 10 < t.last_boxes[0, 1] < 13  # pulled to the path


def test_last_boxes_keep_rows_of_ignored_detections():
    t = Tracker(BYTE)
    boxes = np.array([_box(10, 10), [np.nan, 0, 1, 1], _box(200, 10)])
    t.update(boxes, np.array([0.9, 0.9, 0.05]))
    assert t.last_boxes.shape == (3, 4)
    np.testing.assert_array_equal(t.last_boxes[[0, 2]], boxes[[0, 2]])


def test_lost_tracks_keep_their_height_only_with_freeze_lost_height():
    heights = {}
    for freeze in (True, False):
        t = Tracker(SORT.replace(max_age=10, freeze_lost_height=freeze))
        for k in range(6):  # growing by 4 px a frame
            t.update(np.array([[10, 10, 50, 90 + 4 * k]]))
        for _ in range(4):
            t.update(np.zeros((0, 4)))
        heights[freeze] = t.tracks.mean[0, 3]
    assert heights[False] > heights[True] + 8  # the unfrozen box keeps growing while lost
    assert 90 < heights[True] < 90 + 4 * 5 + 8  # the frozen one stops after one frame
