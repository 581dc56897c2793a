"""`roadtrack eval road`: parity with a literal transcription of the official protocol, the
official ST-IoU quirks against the strict variant, run folders, JSON/plots and bad input."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.eval.road import evaluate_road, to_json
from roadtrack.eval.video_map import TubeSet, st_iou
from roadtrack.io.annotations import load_annotation
from roadtrack.io.artifacts import save_events, save_stage
from roadtrack.labels import roadpp

from .reference import road as road_ref
from .road_helpers import annotation, moving_object, write_json, write_pickle


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Three small synthetic videos with perturbed tubes and frame detections (both layouts)."""
    root = tmp_path_factory.mktemp("road")
    data = road_ref.make_annotation(3, seed=5, frames=(30, 50), objects=(4, 8),
                                    splits=("val", "train"))
    paths = {"anno": write_json(root / "anno.json", data),
             "pred": write_pickle(root / "sub.pkl", road_ref.make_submission(data, seed=6)),
             "stacked": write_pickle(root / "dets_s.pkl",
                                     road_ref.make_frame_dets(data, 7, top_k=2)),
             "lists": write_pickle(root / "dets_l.pkl",
                                   road_ref.make_frame_dets(data, 8, top_k=3, layout="lists"))}
    return paths


@pytest.mark.parametrize("layout,subset", [("stacked", None), ("lists", "val")])
def test_official_protocol_matches_literal_reference(synthetic, layout, subset):
    ours = to_json(evaluate_road(synthetic["anno"], pred=synthetic["pred"],
                                 frame_dets=synthetic[layout], subset=subset))
    ref = road_ref.reference_evaluate(synthetic["anno"], synthetic["pred"], synthetic[layout],
                                      subset)
    assert road_ref.max_difference(ours, ref) <= 1e-6
    # the sets are not trivial: some classes are found, some are missed
    aps = np.concatenate([v["ap"] for v in ours["frame_map"].values()])
    assert 0 < aps.max() and aps.min() < 100
    assert len(ours["video_map"]["triplet"]["0.2"]["ap"]) == 86
    assert len(ours["frame_map"]["agent_ness"]["ap"]) == 1


def test_parity_detects_a_wrong_number(synthetic):
    """The parity check would fail if one AP moved: the reference is not a copy of ours."""
    ours = to_json(evaluate_road(synthetic["anno"], pred=synthetic["pred"]))
    ref = road_ref.reference_evaluate(synthetic["anno"], synthetic["pred"], None)
    ref["video_map"]["agent"]["0.5"]["ap"][1] += 1e-3
    assert road_ref.max_difference(ours, ref) > 0.9e-3


def _tubes(items):
    out = TubeSet()
    for frames, boxes in items:
        out.add(0, 0, 1.0, frames, boxes)
    return out


def test_st_iou_official_quirks_and_strict_alignment():
    box = np.array([100.0, 100.0, 199.0, 199.0])
    shifted = box + [50, 0, 50, 0]
    # ground truth with a gap at frames 4-5: boxes of frames 1-3 then a moved box at 6-8
    gt_frames = [1, 2, 3, 6, 7, 8]
    gt_boxes = [box] * 3 + [shifted] * 3
    det_frames = list(range(1, 9))
    det_boxes = [box] * 3 + [box] * 2 + [shifted] * 3  # a correct detection of the same object
    det, gt = _tubes([(det_frames, det_boxes)]), _tubes([(gt_frames, gt_boxes)])
    pair = (np.array([0]), np.array([0]))
    strict = st_iou(det, gt, *pair, protocol="strict")[0]
    official = st_iou(det, gt, *pair, protocol="official")[0]
    assert strict == pytest.approx(1.0)  # aligned by frame number: every shared box is equal
    # official: 6 gt boxes against the detection's first 6 (frames 1-6): 3 equal, 2 misaligned
    plus_one = (150 - 100) * 100 / (2 * 100 * 100 - 50 * 100)  # IoU of box and shifted (+1 px)
    assert official == pytest.approx((3 + 2 * plus_one + 1) / 6)
    # the ground truth lacks the end frame of the shared span: official 0, strict not
    det2 = _tubes([([1, 2, 3, 4], [box] * 4)])
    assert st_iou(det2, gt, *pair, protocol="official")[0] == 0.0
    assert st_iou(det2, gt, *pair, protocol="strict")[0] == pytest.approx(4 / 8)
    # temporal IoU counts frames inclusively
    det3 = _tubes([([7, 8, 9, 10], [shifted] * 4)])
    assert st_iou(det3, gt, *pair, protocol="strict")[0] == pytest.approx(2 / 10)


def _gap_dataset(tmp_path):
    """One video whose only object has an unlabelled gap; a perfect contiguous detection."""
    obj = moving_object("a", 1, 30, skip=range(10, 16), speed=0.01)
    anno = write_json(tmp_path / "anno.json", annotation({"v1": {"numf": 30, "objects": [obj]}}))
    frames = np.arange(1, 31)
    boxes = np.array([[0.1 + 0.01 * (n - 1), 0.2, 0.3 + 0.01 * (n - 1), 0.4]
                      for n in frames]) * [840, 600, 840, 600]
    space = roadpp()
    sub = {t: {"v1": [{"label_id": 0 if t != "agent" else space.index("agent", "Car"),
                       "score": 0.9, "frames": frames, "boxes": boxes}]}
           for t in ("agent",)}
    return anno, write_pickle(tmp_path / "sub.pkl", sub)


def test_strict_protocol_scores_a_gap_the_official_one_misaligns(tmp_path):
    anno, sub = _gap_dataset(tmp_path)
    official = to_json(evaluate_road(anno, pred=sub, thresholds=[0.9]))
    strict = to_json(evaluate_road(anno, pred=sub, thresholds=[0.9], protocol="strict"))
    car = roadpp().index("agent", "Car")
    assert strict["video_map"]["agent"]["0.9"]["ap"][car] == pytest.approx(100.0)
    assert official["video_map"]["agent"]["0.9"]["ap"][car] == 0.0
    ref = road_ref.reference_evaluate(anno, sub, None, thresholds=[0.9])
    assert road_ref.max_difference(official, ref) <= 1e-6


def _run_folder(tmp_path, anno_path):
    """A run whose detections, tracks and events are the ground truth in 1920x1280 pixels."""
    anno = load_annotation(anno_path)
    run = tmp_path / "run"
    space = anno.labels
    for name, video in anno.videos.items():
        boxes = video.boxes * [1920, 1280, 1920, 1280]
        n = video.num_boxes
        fields = {"frames": video.frames, "boxes": boxes.astype(np.float32),
                  "scores": np.full(n, 0.9, np.float32),
                  **{t: video.labels[t].astype(np.float32) for t in ("agent", "action", "loc")},
                  "embeddings": np.zeros((n, 0), np.float16), "width": 1920, "height": 1280,
                  "fps": 10.0}
        save_stage(run, "detections", name, **fields)
        save_stage(run, "tracks", name, **fields, track_ids=video.track_ids,
                   det_index=np.arange(n))
        tubes = {}
        for t in ("agent", "triplet"):
            tubes[t] = []
            for tube in video.tubes[t]:
                frames, b = video.tube_frames_boxes(tube)
                full = np.arange(frames[0], frames[-1] + 1)  # interpolate the gaps
                b = np.stack([np.interp(full, frames, b[:, k]) for k in range(4)], 1)
                tubes[t].append({"label_id": tube.label, "score": 0.8, "frames": full.tolist(),
                                 "scores": [0.8] * len(full),
                                 "boxes": (b * [1920, 1280, 1920, 1280]).tolist()})
        save_events(run, name, {"width": 1920, "height": 1280, "tubes": tubes})
    return run, space


@pytest.fixture()
def small_gt(tmp_path):
    objects = [moving_object("a", 1, 20), moving_object("b", 5, 25, x=0.5, agent="Ped",
                                                        action="Wait2X", loc="Pav", skip=[9])]
    data = annotation({"v1": {"numf": 25, "objects": objects, "unannotated": [3]},
                       "v2": {"numf": 12, "objects": [moving_object("c", 2, 12, agent="Bus",
                                                                    action="Stop",
                                                                    loc="BusStop")]}})
    return write_json(tmp_path / "anno.json", data)


def test_run_folder_scores_ground_truth_as_perfect(tmp_path, small_gt):
    run, space = _run_folder(tmp_path, small_gt)
    result = evaluate_road(small_gt, run=run)
    for classes in result.frame.values():  # every class with ground truth is perfect
        assert any(r.num_positives for r in classes)
        for r in classes:
            assert r.ap == (pytest.approx(100.0) if r.num_positives else 0.0)
    for label_type in ("agent", "triplet"):  # the types the events hold
        for r in result.video[label_type][0.5]:
            assert r.ap == (pytest.approx(100.0) if r.num_positives else 0.0)
    out = to_json(result)
    car = space.index("agent", "Car")
    assert out["frame_map"]["agent"]["ap"][car] == pytest.approx(100.0)
    assert out["video_map"]["agent"]["0.5"]["ap"][car] == pytest.approx(100.0)
    assert set(out["video_map"]) == {"agent", "action", "loc", "duplex", "triplet"}
    assert out["video_map"]["loc"]["0.5"]["mAP"] == 0.0  # the events hold no loc tubes
    # a detect-only run gets frame-mAP alone
    for p in (run / "events").iterdir():
        p.unlink()
    out = to_json(evaluate_road(small_gt, run=run))
    assert out["video_map"] == {} and "triplet" in out["frame_map"]


def test_cli_json_and_table(tmp_path, synthetic):
    out_json = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["eval", "road", "--anno", str(synthetic["anno"]),
                                       "--pred", str(synthetic["pred"]), "--frame-dets",
                                       str(synthetic["stacked"]), "--iou", "0.1,0.2,0.5",
                                       "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text())
    assert set(data["video_map"]["agent"]) == {"0.1", "0.2", "0.5"}
    assert set(data["frame_map"]) == {"agent_ness", "agent", "action", "loc", "duplex", "triplet"}
    agent = [data["video_map"]["agent"][t]["mAP"] for t in ("0.1", "0.2", "0.5")]
    assert data["challenge"]["agent"] == pytest.approx(np.mean(agent))
    for per in data["video_map"].values():
        for entry in per.values():
            assert entry["mAP"] == pytest.approx(np.mean(entry["ap"]))
    assert "Car" in result.output and "challenge score" in result.output


def test_cli_plots(tmp_path, small_gt):
    run, _ = _run_folder(tmp_path, small_gt)
    for p in (run / "detections").iterdir():
        p.unlink()
    plots = tmp_path / "plots"
    (run / "events" / "v1.json").rename(tmp_path / "v1.json")
    result = CliRunner().invoke(main, ["eval", "road", "--anno", str(small_gt), "--run",
                                       str(run), "--iou", "0.5", "--plots", str(plots)])
    assert result.exit_code == 2 and "no events for 1 video(s), e.g. v1" in result.output
    (run / "events" / "v2.json").rename(tmp_path / "v2.json")
    result = CliRunner().invoke(main, ["eval", "road", "--anno", str(small_gt), "--run",
                                       str(run), "--iou", "0.5", "--plots", str(plots)])
    assert result.exit_code == 2 and "neither detections/ nor events/" in result.output
    assert not plots.exists()
    sub = {"agent": {}}
    for video in ("v1", "v2"):
        events = json.loads((tmp_path / f"{video}.json").read_text())
        sub["agent"][video] = [{**t, "boxes": np.array(t["boxes"]) * ([840 / 1920, 600 / 1280] * 2)}
                               for t in events["tubes"]["agent"]]
    result = CliRunner().invoke(main, ["eval", "road", "--anno", str(small_gt), "--pred",
                                       str(write_pickle(tmp_path / "s.pkl", sub)), "--iou", "0.5",
                                       "--plots", str(plots)])
    assert result.exit_code == 0, result.output
    pngs = sorted(p.name for p in plots.iterdir())
    assert pngs == ["video_agent_0.5_ap.png", "video_agent_0.5_pr.png"]
    assert all((plots / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_cli_refuses_what_the_official_scorer_fails_on_in_one_line(tmp_path, synthetic):
    data = json.loads(synthetic["anno"].read_text())
    sub = road_ref.make_submission(data, seed=6, types=["agent"])
    videos = sorted(sub["agent"])
    del sub["agent"][videos[0]]
    tube = sub["agent"][videos[1]][0]
    tube["boxes"] = tube["boxes"].copy()
    tube["boxes"][0, 0] = np.nan
    sub["agent"][videos[1]][1]["label_id"] = "car"  # the scorer ignores it: not a failure
    bad = write_pickle(tmp_path / "bad.pkl", sub)
    result = CliRunner().invoke(main, ["eval", "road", "--anno", str(synthetic["anno"]),
                                       "--pred", str(bad), "--json", str(tmp_path / "x.json")])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        (f"roadtrack: error: {bad}: the official scorer fails on this submission (2 problems, "
        f"first: agent: 1 videos missing: {videos[0]}); `roadtrack validate` lists them all")]
    assert not (tmp_path / "x.json").exists()
    result = CliRunner().invoke(main, ["eval", "road", "--anno", str(synthetic["anno"]),
                                       "--pred", str(write_pickle(tmp_path / "none.pkl", None))])
    assert result.exit_code == 2 and "top level is a NoneType" in result.output


def _perturbed(data: dict) -> dict:
    """A submission with everything the official scorer scores although validate objects."""
    sub = road_ref.make_submission(data, seed=6)
    videos = sorted(sub["agent"])
    agent = [t for v in videos for t in sub["agent"][v]]
    for i, tube in enumerate(agent):
        tube["boxes"] = tube["boxes"].copy()
        if i % 3 == 0:  # a few pixels outside the frame, as real detectors give
            tube["boxes"][:, 1] -= 3
            tube["boxes"][:, 2] += 5
        elif i % 3 == 1:
            tube["boxes"][0] = [100, -3, 845, 200]
            tube["boxes"][-1, 2] = 840.4
        else:  # wholly outside (empty once clipped), and flipped
            tube["boxes"][0] = [845, 10, 900, 50]
            tube["boxes"][-1] = tube["boxes"][-1, [2, 1, 0, 3]]
    loc = sub["loc"][videos[1]]
    loc[0]["label_id"] = 99  # no class: ignored
    loc[1]["label_id"] = "car"
    loc[2]["label_id"] = 2.5
    loc[3]["label_id"] = float(loc[3]["label_id"])  # 4.0 is class 4
    loc[4]["score"] = float("nan")  # ranked last
    trip = sorted(sub["triplet"][videos[2]], key=lambda t: -len(t["frames"]))
    keep = np.r_[0:3, 5:len(trip[0]["frames"])]  # a gap: boxes compared by position
    trip[0]["frames"], trip[0]["boxes"] = trip[0]["frames"][keep], trip[0]["boxes"][keep]
    trip[0]["scores"] = trip[0]["scores"][keep][:-1]  # per-frame scores: not used
    trip[1]["frames"] = trip[1]["frames"] - trip[1]["frames"][0]  # starts at frame 0
    numf = data["db"][videos[2]]["numf"]
    span = np.arange(numf - 4, numf + 3)  # past the last frame
    trip[2].update(frames=span, boxes=np.tile([100.0, 100, 200, 200], (len(span), 1)))
    trip[2].pop("scores")
    trip[3]["label_id"] = np.int8(trip[3]["label_id"])
    sub["Agent"] = {}  # not a label type: not scored
    return sub


def test_scores_what_the_official_scorer_scores_with_its_numbers(tmp_path, synthetic):
    data = json.loads(synthetic["anno"].read_text())
    pred = write_pickle(tmp_path / "odd.pkl", _perturbed(data))
    result = evaluate_road(synthetic["anno"], pred=pred)
    ref = road_ref.reference_evaluate(synthetic["anno"], pred, None)
    assert road_ref.max_difference(to_json(result), ref) <= 1e-6
    text = "\n".join(result.warnings)
    for kind in ("partly outside the 840x600 frame (scored unclipped", "wholly outside",
                 "without x1 < x2", ("label_id 99 is no class 0..15: the scorer ignores the tube; "
                 "and 2 more like it"),
                 "label_id 4.0 is not an integer (scored as class 4)", "score nan",
                 "frame 0 is not 1-based", "gap after frame", "per-frame scores",
                 "past the video's last frame", "unknown label type 'Agent'"):
        assert kind in text, kind
    assert all(w.startswith(f"{pred}: ") for w in result.warnings)
    cli = CliRunner().invoke(main, ["eval", "road", "--anno", str(synthetic["anno"]), "--pred",
                                    str(pred)])
    assert cli.exit_code == 0, cli.output
    assert sum(ln.startswith(f"roadtrack: warning: {pred}: ") for ln in
               cli.output.splitlines()) == len(result.warnings)
    valid = CliRunner().invoke(main, ["validate", str(pred), "--anno", str(synthetic["anno"])])
    assert valid.exit_code == 1 and "the official scorer fails on 0, mis-scores 11" in valid.output
    assert "label_id 'car' is no class" in valid.output and "label_id 2.5 is no" in valid.output


def test_boxes_out_of_the_frame_are_scored_as_given(tmp_path, synthetic):
    """Only boxes a few pixels outside: every AP as the official code gives, validate passes."""
    data = json.loads(synthetic["anno"].read_text())
    sub = road_ref.make_submission(data, seed=6, types=["agent"])
    for tubes in sub["agent"].values():
        for tube in tubes:
            tube["boxes"] = tube["boxes"] + [-3.0, -2.0, 4.5, 0.4]
            tube["boxes"][0] = [100, -3, 845, 200]  # the examples
            tube["boxes"][-1, 2] = 840.4
    pred = write_pickle(tmp_path / "out.pkl", sub)
    ours = to_json(evaluate_road(synthetic["anno"], pred=pred))
    ref = road_ref.reference_evaluate(synthetic["anno"], pred, None)
    assert road_ref.max_difference(ours, ref) <= 1e-6
    result = CliRunner().invoke(main, ["validate", str(pred), "--anno", str(synthetic["anno"])])
    assert result.exit_code == 0, result.output
    assert "partly outside the 840x600 frame" in result.output
    # not clipped: a box reaching 40 px left of the frame has ST-IoU 169/209 with its truth
    anno = write_json(tmp_path / "a.json", annotation({"v1": {"numf": 3, "objects": [
        moving_object("a", 1, 3, x=0.0, speed=0.0)]}}))
    car = roadpp().index("agent", "Car")
    for x1, ap in ((-40.0, 0.0), (0.0, 100.0)):
        tube = {"label_id": car, "score": 0.9, "frames": [1, 2, 3],
                "boxes": np.tile([x1, 120.0, 168.0, 240.0], (3, 1))}
        one = write_pickle(tmp_path / "one.pkl", {"agent": {"v1": [tube]}})
        out = to_json(evaluate_road(anno, pred=one, thresholds=[0.8, 0.9]))
        assert out["video_map"]["agent"]["0.8"]["ap"][car] == pytest.approx(100.0)
        assert out["video_map"]["agent"]["0.9"]["ap"][car] == pytest.approx(ap)
        ref = road_ref.reference_evaluate(anno, one, None, None, [0.8, 0.9])
        assert road_ref.max_difference(out, ref) <= 1e-6


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_zip_uses_its_one_pickle_and_names_the_rest(tmp_path, synthetic):
    import pickle

    sub = synthetic["pred"].read_bytes()
    good = _zip(tmp_path / "s.zip", {"README.md": b"team x", "__MACOSX/._submission.pkl": b"x",
                                     "submission.pkl": sub})
    runner = CliRunner()
    result = runner.invoke(main, ["eval", "road", "--anno", str(synthetic["anno"]), "--pred",
                                  str(good), "--json", str(tmp_path / "z.json")])
    assert result.exit_code == 0, result.output
    assert (f"roadtrack: warning: {good}: zip also holds 2 other entries, ignored: README.md, "
            "__MACOSX/._submission.pkl") in result.output
    direct = to_json(evaluate_road(synthetic["anno"], pred=synthetic["pred"]))
    assert json.loads((tmp_path / "z.json").read_text())["video_map"] == \
        json.loads(json.dumps(direct["video_map"]))
    dets = _zip(tmp_path / "d.zip", {"dets.pkl": synthetic["stacked"].read_bytes(),
                                     "notes.txt": b""})
    result = runner.invoke(main, ["eval", "road", "--anno", str(synthetic["anno"]),
                                  "--frame-dets", str(dets)])
    assert result.exit_code == 0 and "ignored: notes.txt" in result.output
    two = _zip(tmp_path / "two.zip", {"a.pkl": sub, "b/b.pkl": pickle.dumps({})})
    result = runner.invoke(main, ["validate", str(two), "--anno", str(synthetic["anno"])])
    assert result.exit_code == 2
    assert result.output == (f"roadtrack: error: {two}: zip holds 2 pickles (a.pkl, b/b.pkl): "
                             "keep one\n")


@pytest.mark.parametrize("content,message", [
    (b"not a pickle", "not a readable pickle"),
    (None, "refusing to load"),
])
def test_cli_unreadable_or_unsafe_pickles(tmp_path, synthetic, content, message):
    path = tmp_path / "x.pkl"
    if content is None:
        import os
        import pickle

        class Evil:
            def __reduce__(self):
                return os.system, ("echo hacked",)
        content = pickle.dumps(Evil())
    path.write_bytes(content)
    result = CliRunner().invoke(main, ["eval", "road", "--anno", str(synthetic["anno"]),
                                       "--pred", str(path)])
    assert result.exit_code == 2 and message in result.output and "hacked" not in result.output


def test_cli_annotation_of_another_dataset(tmp_path, synthetic):
    coco = write_json(tmp_path / "instances.json", {"images": [], "annotations": [],
                                                     "categories": []})
    result = CliRunner().invoke(main, ["eval", "road", "--anno", str(coco),
                                       "--pred", str(synthetic["pred"])])
    assert result.exit_code == 2 and "instances.json" in result.output
    assert "missing key" in result.output and "Traceback" not in result.output


def test_cli_bad_frame_dets_and_options(tmp_path, synthetic):
    data = json.loads(synthetic["anno"].read_text())
    dets = road_ref.make_frame_dets(data, 7, top_k=1, layout="lists")
    key = next(iter(dets["agent"]))
    dets["agent"][key] = dets["agent"][key][:3]  # too few classes
    bad = write_pickle(tmp_path / "dets.pkl", dets)
    runner = CliRunner()
    result = runner.invoke(main, ["eval", "road", "--anno", str(synthetic["anno"]), "--pred",
                                  str(synthetic["pred"]), "--frame-dets", str(bad)])
    assert result.exit_code == 2 and "is not 10 (k, 5) arrays" in result.output
    result = runner.invoke(main, ["eval", "road", "--anno", str(synthetic["anno"]), "--pred",
                                  str(synthetic["pred"]), "--iou", "0.2,x"])
    assert result.exit_code == 2 and "'0.2,x' is not a comma-separated list" in result.output
    result = runner.invoke(main, ["eval", "road", "--anno", str(synthetic["anno"]),
                                  "--split", "test", "--pred", str(synthetic["pred"])])
    assert result.exit_code == 2 and "no videos of split 'test'" in result.output


def test_end_to_end_run_submit_validate_eval(tmp_path, synth_anno_path):
    """Synthetic dataset -> tracks and events from ground truth -> submit -> validate -> eval."""
    from roadtrack.events.config import EventsConfig
    from roadtrack.events.stage import run_events

    anno = load_annotation(synth_anno_path)
    run = tmp_path / "run"
    rng = np.random.default_rng(3)
    for name, video in anno.videos.items():
        keep = rng.random(video.num_boxes) > 0.1  # tracks with gaps, exact boxes
        n = int(keep.sum())
        w, h = video.width, video.height
        save_stage(run, "tracks", name, frames=video.frames[keep],
                   boxes=(video.boxes[keep] * [w, h, w, h]).astype(np.float32),
                   scores=np.full(n, 0.9, np.float32),
                   **{t: video.labels[t][keep].astype(np.float32) * 0.9 + 0.05
                      for t in ("agent", "action", "loc")},
                   embeddings=np.zeros((n, 0), np.float16), width=w, height=h, fps=10.0,
                   track_ids=video.track_ids[keep], det_index=np.arange(n))
        run_events(run, name, anno.labels, EventsConfig())
    runner = CliRunner()
    mot_json, road_json, sub = tmp_path / "mot.json", tmp_path / "road.json", tmp_path / "s.pkl"
    result = runner.invoke(main, ["eval", "mot", "--anno", str(synth_anno_path), "--run",
                                  str(run), "--json", str(mot_json)])
    assert result.exit_code == 0, result.output
    mot = json.loads(mot_json.read_text())
    assert set(mot["sequences"]) == set(anno.videos)
    assert mot["overall"]["mota"] > 0.5 and mot["overall"]["idf1"] > 0.5
    result = runner.invoke(main, ["submit", "--run", str(run), "--out", str(sub), "--zip"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["validate", str(sub) + ".zip", "--anno", str(synth_anno_path)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["validate", str(sub), "--anno", str(synth_anno_path)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["eval", "road", "--anno", str(synth_anno_path), "--run",
                                  str(run), "--json", str(road_json)])
    assert result.exit_code == 0, result.output
    from_run = json.loads(road_json.read_text())
    assert from_run["frame_map"] == {}  # tracks and events, but no detections
    assert from_run["challenge"]["agent"] > 10
    result = runner.invoke(main, ["eval", "road", "--anno", str(synth_anno_path), "--pred",
                                  str(sub), "--json", str(road_json)])
    assert result.exit_code == 0, result.output
    assert json.loads(road_json.read_text())["video_map"] == from_run["video_map"]


def test_eval_road_process_never_imports_torch(tmp_path, small_gt):
    run, _ = _run_folder(tmp_path, small_gt)
    code = ("import sys; from roadtrack.cli import main; "
            f"main(['eval', 'road', '--anno', {str(small_gt)!r}, '--run', {str(run)!r}], "
            "standalone_mode=False); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    assert out.stdout.strip().endswith("False")


def test_frame_detections_alone_and_conflicting_inputs(synthetic, tmp_path):
    out = to_json(evaluate_road(synthetic["anno"], frame_dets=synthetic["stacked"]))
    assert out["video_map"] == {} and out["challenge"] == {"agent": None, "triplet": None}
    assert len(out["frame_map"]["duplex"]["ap"]) == 49
    runner = CliRunner()
    result = runner.invoke(main, ["eval", "road", "--anno", str(synthetic["anno"]), "--run",
                                  str(tmp_path), "--frame-dets", str(synthetic["stacked"])])
    assert result.exit_code == 2 and "--run brings its own" in result.output
    result = runner.invoke(main, ["eval", "road", "--anno", str(synthetic["anno"])])
    assert result.exit_code == 2 and "give --pred" in result.output


def test_top_per_frame_keeps_the_best_of_each_frame_and_class():
    from roadtrack.eval.inputs import top_per_frame

    frame = np.array([0, 0, 0, 1, 1])
    scores = np.array([[0.9, 0.1], [0.5, 0.8], [0.7, 0.005], [0.2, 0.3], [0.6, 0.3]])
    keep = top_per_frame(frame, scores, top_k=2, min_score=0.01)
    assert keep.tolist() == [[True, True], [False, True], [True, False], [True, True],
                             [True, True]]
    assert top_per_frame(frame, scores, 1, 0.0)[:, 0].tolist() == [True, False, False, False, True]
    assert top_per_frame(frame, scores, 0, 0.25).sum() == 7
