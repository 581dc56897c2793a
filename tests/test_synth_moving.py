"""Moving-camera synthetic data and the AV action read from the camera motion."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.errors import UserError
from roadtrack.eval.av_action import av_action_ap, av_action_truth
from roadtrack.events.av_action import AV_ACTIONS, av_actions, classify, motion_features
from roadtrack.io.annotations import load_annotation
from roadtrack.labels import roadpp
from roadtrack.synth import ego
from roadtrack.synth.dataset import ANNOTATION_NAME
from roadtrack.synth.layout import draw_background
from roadtrack.synth.simulate import render_frame, simulate_video

W, H = 420, 300


def _synth(tmp_path, camera):
    out = tmp_path / camera
    res = CliRunner().invoke(main, ["synth", "--out", str(out), "--num-videos", "2", "--frames",
                                    "40", "--size", "168x120", "--seed", "5", "--camera", camera])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def moving_root(tmp_path_factory):
    return _synth(tmp_path_factory.mktemp("synth"), "moving")


def _frame_to_frame(cameras):
    """World -> frame affines (F, 2, 3) -> frame n-1 -> frame n (F, 2, 3), identity first."""
    full = np.concatenate([cameras, np.tile([[[0.0, 0, 1]]], (len(cameras), 1, 1))], axis=1)
    return np.concatenate([np.eye(2, 3)[None], (full[1:] @ np.linalg.inv(full[:-1]))[:, :2]])


def test_av_action_names_are_the_roadpp_labels():
    assert ego.AV_ACTIONS == AV_ACTIONS == roadpp().names("av_action")


def test_moving_camera_labels_every_frame_and_keeps_the_scene(tmp_path, moving_root):
    static, moving = _synth(tmp_path, "static"), moving_root
    s_raw = json.loads((static / ANNOTATION_NAME).read_text())
    m_raw = json.loads((moving / ANNOTATION_NAME).read_text())
    for raw, camera in ((s_raw, "static"), (m_raw, "moving")):
        names = raw["all_av_action_labels"]
        seen = set()
        for video in raw["db"].values():
            for n in range(1, video["numf"] + 1):
                ids = video["frames"][str(n)]["av_action_ids"]
                assert len(ids) == 1
                seen.add(names[ids[0]])
        assert seen <= set(AV_ACTIONS)
        assert (seen == {"AV-Stop"}) == (camera == "static")
    # the same agents doing the same things: a moving camera sees a subset of them
    s_anno, m_anno = (load_annotation(p / ANNOTATION_NAME) for p in (static, moving))
    for name, mv in m_anno.videos.items():
        sv = s_anno.videos[name]
        assert set(mv.uids) <= set(sv.uids)
        key = {(sv.uids[t], f): k
               for k, (t, f) in enumerate(zip(sv.track_ids, sv.frames, strict=True))}
        for k, (t, f) in enumerate(zip(mv.track_ids, mv.frames, strict=True)):
            j = key.get((mv.uids[t], f))
            if j is not None:
                for label_type in ("agent", "action", "loc"):
                    assert (mv.labels[label_type][k] == sv.labels[label_type][j]).all()


def test_boxes_move_with_the_camera():
    rng = np.random.default_rng(3)
    agents = simulate_video(rng, 80)
    background = draw_background(W, H, rng)
    actions, cameras = ego.ego_motion(np.random.default_rng(4), 80, W, H)
    assert len(set(actions)) > 2
    checked = 0
    for index in range(0, 80, 7):
        _, fixed = render_frame(background, agents, index, 1.0)
        _, seen = render_frame(background, agents, index, 1.0, camera=cameras[index])
        fixed_by_uid = {r.uid: np.array(r.box) for r in fixed}
        for record in seen:
            box = fixed_by_uid.get(record.uid)
            inner = np.array(record.box)
            if box is None or inner[0] < 2 or inner[1] < 2 or inner[2] > W - 2 \
                    or inner[3] > H - 2 or box[0] < 1 or box[1] < 1 or box[2] > W - 1 \
                    or box[3] > H - 1:
                continue  # clipped on either side
            corners = box[[[0, 1], [2, 1], [2, 3], [0, 3]]] @ cameras[index][:, :2].T \
                + cameras[index][:, 2]
            expected = np.concatenate([corners.min(0), corners.max(0)])
            assert np.allclose(inner, expected, atol=1e-6)
            checked += 1
    assert checked > 20


def test_ego_motion_stays_in_bounds_and_matches_its_labels():
    for seed in range(5):
        actions, cameras = ego.ego_motion(np.random.default_rng(seed), 300, W, H)
        assert len(actions) == len(cameras) == 300
        step = _frame_to_frame(cameras)
        scale = np.sqrt(np.abs(np.linalg.det(cameras[:, :, :2])))
        assert scale.min() >= 1 - 1e-9 and scale.max() <= 1.5 + 1e-9
        stopped = np.array(actions[1:]) == "AV-Stop"
        assert np.allclose(step[1:][stopped], np.eye(2, 3))  # a stop moves nothing
        assert not np.allclose(step[1:][~stopped], np.eye(2, 3), atol=1e-4)


def test_av_action_classifier_reads_the_ego_motion():
    hits = total = 0
    for seed in range(6):
        actions, cameras = ego.ego_motion(np.random.default_rng(seed), 200, W, H)
        scores = classify(motion_features(_frame_to_frame(cameras), W, H))
        assert np.allclose(scores.sum(axis=1), 1) and (scores >= 0).all()
        truth = np.array([AV_ACTIONS.index(a) for a in actions])
        # away from segment ends, where the smoothing window straddles two actions
        steady = np.ones(len(truth), dtype=bool)
        for shift in range(-3, 4):
            steady &= np.roll(truth, shift) == truth
        steady[:4] = steady[-4:] = False
        hits += int((scores.argmax(axis=1)[steady] == truth[steady]).sum())
        total += int(steady.sum())
    assert hits / total > 0.95


def test_av_action_frame_map_scores_the_events_part(moving_root):
    anno = load_annotation(moving_root / ANNOTATION_NAME)
    videos = anno.split(None)
    truth = av_action_truth(anno.path, videos, anno.labels)
    assert truth is not None
    assert all(t.sum(axis=1).tolist() == [1] * len(t) for t in truth.values())
    perfect = {v: t.astype(float) for v, t in truth.items()}
    present = np.any(np.concatenate(list(truth.values())), axis=0)
    ap = [r.ap for r in av_action_ap(truth, perfect)]
    assert np.allclose(np.array(ap)[present], 100) and np.allclose(np.array(ap)[~present], 0)
    flipped = {v: 1 - t for v, t in perfect.items()}
    assert all(r.ap < 100 for r, p in zip(av_action_ap(truth, flipped), present, strict=True) if p)
    part = av_actions(np.tile(np.eye(2, 3), (5, 1, 1)), W, H)  # a still camera
    assert part["labels"] == ["AV-Stop"] * 5 and part["classes"] == list(AV_ACTIONS)


def test_av_action_truth_reads_the_labels_as_json_has_them(moving_root, tmp_path):
    path = moving_root / ANNOTATION_NAME
    doc = json.loads(path.read_text())
    video = next(iter(doc["db"]))
    names = doc["all_av_action_labels"]
    used = list(roadpp().names("av_action"))
    truth = av_action_truth(path, [video], roadpp())[video]
    for key, frame in doc["db"][video]["frames"].items():
        want = {used.index(names[i]) for i in frame.get("av_action_ids", [])
                if frame.get("annotated", 0) and names[i] in used}
        assert set(np.flatnonzero(truth[int(key) - 1])) == want
    del doc["all_av_action_labels"]
    (tmp_path / "none.json").write_text(json.dumps(doc))
    assert av_action_truth(tmp_path / "none.json", [video], roadpp()) is None


@pytest.mark.parametrize("text", ["", "{", '{"db": []}', '{"db": {"v": {"numf": "x"}}}'])
def test_av_action_truth_refuses_a_broken_file_in_one_line(tmp_path, text):
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    with pytest.raises(UserError, match="cannot read the AV actions") as err:
        av_action_truth(bad, ["v"], roadpp())
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_synth_refuses_an_unknown_camera(tmp_path):
    res = CliRunner().invoke(main, ["synth", "--out", str(tmp_path / "x"), "--camera", "bogus"])
    assert res.exit_code == 2 and "--camera" in res.output


def test_events_carry_the_av_action_and_eval_road_scores_it(tmp_path, moving_root):
    from roadtrack.eval.road import evaluate_road, format_report, to_json
    from roadtrack.events.config import EventsConfig
    from roadtrack.events.stage import run_events
    from roadtrack.io.artifacts import CAMERA_MOTION, load_events, load_stage, save_stage
    from roadtrack.io.video import FrameFolder, grey_frames
    from roadtrack.tracking.cmc import estimate_motion
    from tests.gt_runs import gt_tracks

    anno = load_annotation(moving_root / ANNOTATION_NAME)
    run = tmp_path / "run"
    rng = np.random.default_rng(0)
    for name, video in anno.videos.items():
        frames = [g for _, g in grey_frames(FrameFolder(moving_root / "rgb-images" / name))]
        motion = estimate_motion(frames, "sparse-flow")
        save_stage(run, "tracks", name, **gt_tracks(video, rng), **{CAMERA_MOTION: motion})
        assert load_stage(run, "tracks", name)[CAMERA_MOTION].shape == (video.numf, 2, 3)
        run_events(run, name, anno.labels, EventsConfig())
        part = load_events(run, name)["av_action"]
        assert len(part["labels"]) == len(part["scores"]) == video.numf
    result = evaluate_road(anno, run=run)
    assert len(result.frame["av_action"]) == len(AV_ACTIONS)
    assert to_json(result)["frame_map"]["av_action"]["mAP"] > 30
    assert "av_action (6 classes)" in format_report(result)
