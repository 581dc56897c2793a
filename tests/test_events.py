from dataclasses import replace

import numpy as np
import pytest

from roadtrack.engine.colour import HUE_BINS
from roadtrack.errors import UserError
from roadtrack.events.config import EventsConfig
from roadtrack.events.features import GROUND_BUMPS, ground_point_code, series_features
from roadtrack.events.series import TrackSeries, absorb_short_runs, runs, smooth, track_series
from roadtrack.events.stage import TrainedHead, run_events
from roadtrack.events.train import fit_event_head
from roadtrack.events.tubes import TubeConfig, track_tubes
from roadtrack.io.annotations import load_annotation
from roadtrack.io.artifacts import load_events
from roadtrack.labels import roadpp

from .gt_runs import gt_tracks, make_gt_run


@pytest.fixture(scope="module")
def gt_run(tmp_path_factory, synth_anno_path):
    return make_gt_run(tmp_path_factory.mktemp("run"), load_annotation(synth_anno_path), 0)


def test_series_interpolates_gaps_and_keeps_detection_rows():
    tracks = dict(frames=np.array([3, 1, 5]), boxes=np.array([[2, 2, 12, 12], [0, 0, 10, 10],
                                                              [4, 4, 14, 14]], float),
                  scores=np.ones(3), agent=np.eye(3)[:, :2], action=np.ones((3, 1)),
                  loc=np.ones((3, 1)), track_ids=np.array([7, 7, 7]),
                  det_index=np.array([10, 11, 12]))
    (s,) = track_series(tracks)
    assert s.frames.tolist() == [1, 2, 3, 4, 5]
    assert s.observed.tolist() == [True, False, True, False, True]
    assert s.det_index.tolist() == [11, -1, 10, -1, 12]
    assert np.allclose(s.boxes[1], [1, 1, 11, 11])


def test_ground_point_code_peaks_where_the_agent_stands():
    # feet at x = 105 / 420 = 0.25 and y = 225 / 300 = 0.75, whatever the box's top
    boxes = np.array([[100.0, 150.0, 110.0, 225.0], [95.0, 200.0, 115.0, 225.0],
                      [300.0, 10.0, 340.0, 60.0]])
    code = ground_point_code(boxes, 420, 300)
    assert code.shape == (3, 2 * GROUND_BUMPS) and code.max() <= 1.0
    x_code, y_code = code[:, :GROUND_BUMPS], code[:, GROUND_BUMPS:]
    centres = (np.arange(GROUND_BUMPS) + 0.5) / GROUND_BUMPS
    assert abs(centres[x_code[0].argmax()] - 0.25) <= 0.5 / GROUND_BUMPS
    assert abs(centres[y_code[0].argmax()] - 0.75) <= 0.5 / GROUND_BUMPS
    np.testing.assert_allclose(code[0], code[1])  # same ground point, other box
    assert x_code[2].argmax() > x_code[0].argmax() and y_code[2].argmax() < y_code[0].argmax()


def test_runs_smoothing_and_short_runs():
    labels = np.array([0, 0, 0, 0, 1, 0, 0, 2, 2, 2, 2, 2])
    assert runs(labels)[:2] == [(0, 4, 0), (4, 5, 1)]
    assert runs(absorb_short_runs(labels, 3)) == [(0, 7, 0), (7, 12, 2)]
    assert np.allclose(smooth(np.array([[0.0], [3.0], [0.0]]), 3)[:, 0], [1.5, 1.0, 1.5])


def test_label_top_k_adds_tubes_for_runner_up_classes():
    labels = roadpp()
    n = 20
    action = np.full((n, len(labels.action)), 0.01)
    stop, moving_away = labels.action.index("Stop"), labels.action.index("MovAway")
    action[:, stop], action[:, moving_away] = 0.8, 0.4  # Stop best, MovAway runner-up throughout
    loc = np.full((n, len(labels.loc)), 0.01)
    loc[:, labels.loc.index("VehLane")] = 0.9
    agent = np.full((n, len(labels.agent)), 0.01)
    agent[:, labels.agent.index("Car")] = 0.9
    series = TrackSeries(track_id=3, frames=np.arange(1, n + 1), boxes=np.tile([10.0, 10, 50, 40],
                         (n, 1)), scores=np.full(n, 0.9), probs={"agent": agent, "action": action,
                         "loc": loc}, observed=np.ones(n, bool), det_index=np.arange(n), extra={})
    one = track_tubes(series, labels, TubeConfig(label_top_k=1))["action"]
    two = track_tubes(series, labels, TubeConfig(label_top_k=2))["action"]
    assert [t["label"] for t in one] == ["Stop"]
    assert [t["label"] for t in two] == ["Stop", "MovAway"]
    assert two[1]["score"] < two[0]["score"] and len(two[1]["frames"]) == n


def test_tubes_of_a_track_follow_its_labels(gt_run):
    run, anno = gt_run
    labels = anno.labels
    name = anno.split(None)[0]
    video = anno.videos[name]
    tracks = gt_tracks(video, np.random.default_rng(1), noise=0.05, drop=0.0)
    for series in track_series(tracks):
        rows = video.track_ids == series.track_id
        tubes = track_tubes(series, labels, TubeConfig(min_track_length=1))
        true_agent = int(np.flatnonzero(video.labels["agent"][rows][0])[0])
        assert tubes["agent"][0]["label_id"] == true_agent
        assert tubes["agent"][0]["frames"] == list(range(series.frames[0], series.frames[-1] + 1))
        for tube in tubes["triplet"]:
            assert labels.triplet[tube["label_id"]].startswith(labels.agent[true_agent] + "-")
            assert len(tube["frames"]) == len(tube["boxes"]) == len(tube["scores"])
        covered = sum(len(t["frames"]) for t in tubes["action"])
        assert covered == len(series)  # action tubes tile the track


def test_event_stage_writes_documents(gt_run):
    run, anno = gt_run
    name = anno.split(None)[0]
    events = run_events(run, name, anno.labels, EventsConfig())
    assert load_events(run, name) == events
    assert events["tubes"]["agent"] and events["tubes"]["triplet"]
    assert {t["track_id"] for t in events["tracks"]} <= set(
        int(i) for i in np.unique(anno.videos[name].track_ids))


def test_event_head_learns_and_applies(gt_run, tmp_path, synth_root):
    run, anno = gt_run
    config = EventsConfig.from_dict({"fit": {"steps": 60, "batch_size": 8, "window": 16},
                                     "head": {"hidden": 32, "layers": 2}})
    summary = fit_event_head(synth_root, run, tmp_path, config, progress=False)
    assert summary["last_loss"] < summary["first_loss"]
    head = TrainedHead(tmp_path / "event_head.pt")
    name = anno.split(None)[0]
    events = run_events(run, name, anno.labels, config, head)
    assert events["tubes"]["agent"]


def test_bad_event_config_and_checkpoint(tmp_path):
    with pytest.raises(UserError, match="events.fit.stepz"):
        EventsConfig.from_dict({"fit": {"stepz": 3}})
    with pytest.raises(UserError, match="events.tubes.label_top_k: must be an integer >= 1") as err:
        EventsConfig.from_dict({"tubes": {"label_top_k": 0}}, tmp_path / "run.yaml")
    assert str(tmp_path / "run.yaml") in str(err.value)
    bad = tmp_path / "event_head.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not an event head checkpoint"):
        TrainedHead(bad)
    assert roadpp().num_classes("triplet") == 86


def test_head_inputs_take_the_colour_descriptor_and_its_flicker():
    labels = roadpp()
    n = 12
    probs = {t: np.full((n, len(getattr(labels, t))), 0.1) for t in ("agent", "action", "loc")}
    colour = np.zeros((n, 2 * HUE_BINS), np.float16)
    colour[(np.arange(n) // 3) % 2 == 0, 1] = 0.05  # amber in the left half, 3 frames on, 3 off
    colour[:, HUE_BINS] = 0.4  # red paint on the right half, steady
    plain = TrackSeries(track_id=1, frames=np.arange(1, n + 1),
                        boxes=np.tile([10.0, 10, 50, 40], (n, 1)), scores=np.full(n, 0.9),
                        probs=probs, observed=np.ones(n, bool), det_index=np.arange(n), extra={})
    lit = replace(plain, extra={"colour": colour})
    without, with_colour = series_features(plain, 100, 80), series_features(lit, 100, 80)
    assert with_colour.shape == (n, without.shape[1] + 4 * HUE_BINS)
    shares, flicker = with_colour[:, -4 * HUE_BINS:-2 * HUE_BINS], with_colour[:, -2 * HUE_BINS:]
    np.testing.assert_array_equal(shares, colour.astype(np.float32))
    assert flicker[:, 1].min() > 0.01  # the blinking lamp flickers everywhere along the track
    assert np.abs(flicker[:, HUE_BINS]).max() < 1e-6  # steady paint does not
    assert np.abs(flicker[:, 2:HUE_BINS]).max() == 0


def test_a_label_that_comes_back_makes_one_tube_over_the_gap():
    labels = roadpp()
    n = 30
    action = np.full((n, len(labels.action)), 0.01)
    stop, moving_away = labels.action.index("Stop"), labels.action.index("MovAway")
    action[:10, stop] = action[20:, stop] = 0.9  # Stop, then MovAway, then Stop again
    action[10:20, moving_away] = 0.9
    probs = {"agent": np.full((n, len(labels.agent)), 0.5), "action": action,
             "loc": np.full((n, len(labels.loc)), 0.5)}
    series = TrackSeries(track_id=4, frames=np.arange(1, n + 1),
                         boxes=np.tile([10.0, 10, 50, 40], (n, 1)), scores=np.full(n, 0.9),
                         probs=probs, observed=np.ones(n, bool), det_index=np.arange(n), extra={})
    bridged = track_tubes(series, labels, TubeConfig(smooth_window=1))["action"]
    apart = track_tubes(series, labels, TubeConfig(smooth_window=1, bridge_gaps=False))["action"]
    assert [(t["label"], t["frames"][0], t["frames"][-1]) for t in bridged] == [
        ("Stop", 1, 30), ("MovAway", 11, 20)]
    assert [(t["label"], t["frames"][0], t["frames"][-1]) for t in apart] == [
        ("Stop", 1, 10), ("MovAway", 11, 20), ("Stop", 21, 30)]
    assert bridged[0]["score"] < apart[0]["score"]  # the gap's frames score the label low


def test_event_head_fits_on_a_road_data_folder(gt_run, tmp_path, synth_anno_path):
    """A ROAD root names its annotation road_trainval_v1.0.json (ROAD++: road_waymo_...)."""
    run, _ = gt_run
    road = tmp_path / "road"
    road.mkdir()
    (road / "road_trainval_v1.0.json").write_bytes(synth_anno_path.read_bytes())
    config = EventsConfig.from_dict({"fit": {"steps": 2, "batch_size": 2, "window": 8},
                                     "head": {"hidden": 8, "layers": 1}})
    summary = fit_event_head(road, run, tmp_path / "head", config, progress=False)
    assert summary["tracks"] > 0
    assert TrainedHead(tmp_path / "head" / "event_head.pt").labels == load_annotation(
        road / "road_trainval_v1.0.json").labels
