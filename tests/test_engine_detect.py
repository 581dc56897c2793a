"""The detect stage on a toy contract detector: every frame, artifacts, resume, bad input."""
import numpy as np
import pytest
import torch

from roadtrack.engine.config import DetectConfig, run_config_from_dict
from roadtrack.engine.detect import detect_videos, load_detector, postprocess
from roadtrack.engine.train import train
from roadtrack.errors import UserError
from roadtrack.io.annotations import load_annotation
from roadtrack.io.artifacts import load_stage
from roadtrack.synth.dataset import ANNOTATION_NAME

from .train_helpers import copy_dataset, halfway_broken_copy, toy_builder


@pytest.fixture(scope="module")
def toy_run(synth_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("toy") / "run"
    cfg = run_config_from_dict({"model": {}, "data": {"input_size": [64, 64], "workers": 0},
                          "train": {"max_steps": 3, "warmup_steps": 1, "batch_size": 4},
                          "detect": {"score_threshold": 0.0, "batch_size": 5}})
    train(cfg, synth_root, run, builder=toy_builder(), progress=False)
    return run


def test_every_frame_of_every_video_gets_detections(synth_root, toy_run, tmp_path):
    detector = load_detector(run=toy_run, builder=toy_builder())
    summary = detect_videos(detector, synth_root, tmp_path / "out", progress=False)
    ann = load_annotation(synth_root / ANNOTATION_NAME)
    assert summary.videos == len(ann.videos) and summary.skipped == 0
    assert summary.frames == sum(v.numf for v in ann.videos.values())
    total = 0
    for name, video in ann.videos.items():
        det = load_stage(tmp_path / "out", "detections", name)
        assert set(det["frames"].tolist()) == set(range(1, video.numf + 1))
        assert det["agent"].shape[1] == 10 and det["embeddings"].dtype == np.float16
        assert int(det["width"]) == video.width and det["boxes"][:, 2].max() <= video.width
        total += len(det["frames"])
    assert summary.detections == total
    assert (tmp_path / "out" / "run.yaml").is_file()
    # a second run skips what is done
    again = detect_videos(detector, synth_root, tmp_path / "out", progress=False)
    assert again.videos == 0 and again.skipped == len(ann.videos)


def test_frame_folders_and_video_files_give_the_same_frames(synth_root, toy_run, tmp_path):
    videos_only = copy_dataset(synth_root, tmp_path / "v", frames=False)
    detector = load_detector(run=toy_run, builder=toy_builder())
    name = load_annotation(synth_root / ANNOTATION_NAME).split(None)[0]
    detect_videos(detector, videos_only / "videos", tmp_path / "a", names=[name], progress=False)
    detect_videos(detector, synth_root / "rgb-images", tmp_path / "b", names=[name],
                  progress=False)
    a, b = (load_stage(tmp_path / x, "detections", name) for x in "ab")
    assert np.array_equal(a["frames"], b["frames"])


def test_postprocess_thresholds_and_suppresses_per_class():
    boxes = torch.tensor([[[0.1, 0.1, 0.5, 0.5], [0.11, 0.1, 0.5, 0.5], [0.1, 0.1, 0.5, 0.5],
                           [0.6, 0.6, 0.9, 0.9]]])
    agent = torch.tensor([[[0.9, 0.1], [0.8, 0.1], [0.1, 0.9], [0.9, 0.1]]])
    out = {"boxes": boxes, "scores": torch.tensor([[0.9, 0.8, 0.7, 0.01]]), "agent": agent,
           "action": torch.zeros(1, 4, 3), "loc": torch.zeros(1, 4, 2),
           "embeddings": torch.zeros(1, 4, 5)}
    got = postprocess(out, [(100, 200)], DetectConfig(score_threshold=0.05, nms_iou=0.5))[0]
    # query 1 overlaps query 0 of the same class: gone; query 2 is another class: kept;
    # query 3 is below the threshold
    assert got["scores"].tolist() == pytest.approx([0.9, 0.7])
    assert got["boxes"][0].tolist() == pytest.approx([10, 20, 50, 100])
    assert got["agent"].shape == (2, 2) and got["embeddings"].shape == (2, 5)


def test_bad_weights_and_label_space_are_clear_errors(synth_root, toy_run, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    cfg = run_config_from_dict({"model": {}, "data": {"input_size": [64, 64]}})
    with pytest.raises(UserError, match=r"not a checkpoint \(not a file written by torch.save\)"):
        load_detector(weights=bad, config=cfg, builder=toy_builder())
    weights = toy_run / "checkpoints" / "last.pt"
    with pytest.raises(UserError, match="label space does not match the checkpoint"):
        load_detector(weights=weights,
                      config=run_config_from_dict({"model": {"classes": {"agent": 3}}}),
                      builder=toy_builder())
    with pytest.raises(UserError, match="no videos"):
        detect_videos(load_detector(weights=weights, config=cfg, builder=toy_builder()),
                      tmp_path, tmp_path / "out", progress=False)


def test_a_config_beside_a_run_gives_the_detect_settings_and_must_match_its_model(toy_run):
    mine = run_config_from_dict({
        "model": {"loss": {"weight_l1": 1.0}},  # loss settings do not change a trained model
        "data": {"input_size": [96, 96]},
        "detect": {"score_threshold": 0.3, "checkpoint": "last", "batch_size": 2}})
    detector = load_detector(run=toy_run, config=mine, config_path="mine.yaml",
                             builder=toy_builder())
    assert detector.config.detect.score_threshold == 0.3 and detector.config.detect.batch_size == 2
    assert detector.weights.name == "last.pt"
    assert detector.config.data.input_size == [64, 64]  # what the model was trained on
    assert "model and data settings of" in detector.note and "detect settings of mine.yaml" \
        in detector.note
    with pytest.raises(UserError, match=r"^mine.yaml: model.num_frames: 4 here but 32 in the "
                                        r"run's .*run.yaml\) model section"):
        load_detector(run=toy_run, config=run_config_from_dict({"model": {"num_frames": 4}}),
                      config_path="mine.yaml",
                      builder=toy_builder())
    weights = toy_run / "checkpoints" / "last.pt"
    with pytest.raises(UserError, match=r"^mine.yaml: model.decoder.num_stages: 2 here but 6 in "
                                        r"the checkpoint's"):
        load_detector(weights=weights,
                      config=run_config_from_dict({"model": {"decoder": {"num_stages": 2}}}),
                      config_path="mine.yaml", builder=toy_builder())


def _failed(run):
    import yaml

    return [(f["video"], f["frame"] is None) for f in
            yaml.safe_load((run / "run.yaml").read_text()).get("failed", [])]


def test_broken_videos_are_listed_and_the_others_done(synth_root, toy_run, tmp_path):
    import shutil

    from roadtrack.io.artifacts import finished_videos
    from roadtrack.io.video import VideoReadError

    folder = tmp_path / "videos"
    shutil.copytree(synth_root / "videos", folder)
    (folder / "a_garbage.mp4").write_bytes(b"not a video")
    halfway_broken_copy(folder / "train_00001.mp4", folder / "b_cut.mkv")
    detector = load_detector(run=toy_run, builder=toy_builder())
    out = tmp_path / "out"
    summary = detect_videos(detector, folder, out, progress=False)
    assert finished_videos(out, "detections") == ["train_00000", "train_00001", "train_00002"]
    rows = {f.video: f for f in summary.failures}
    assert sorted(rows) == ["a_garbage", "b_cut"] and summary.videos == 3
    assert rows["a_garbage"].frame is None and "cannot open" in rows["a_garbage"].reason
    assert 1 < rows["b_cut"].frame < 30 and rows["b_cut"].path == str(folder / "b_cut.mkv")
    assert _failed(out) == [("a_garbage", True), ("b_cut", False)]
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # nothing half-written
    # a rerun retries only the failed two; once one is mended it is done and off the list
    again = detect_videos(detector, folder, out, progress=False)
    assert (again.videos, again.skipped, len(again.failures)) == (0, 3, 2)
    shutil.copy(folder / "train_00001.mp4", folder / "b_cut.mkv")
    again = detect_videos(detector, folder, out, progress=False)
    assert (again.videos, again.skipped, len(again.failures)) == (1, 3, 1)
    assert _failed(out) == [("a_garbage", True)]
    with pytest.raises(VideoReadError, match="a_garbage.mp4: cannot open video"):
        detect_videos(detector, folder, tmp_path / "strict", progress=False, strict=True)


def test_gapped_frame_folder_keeps_its_frame_numbers(synth_root, toy_run, tmp_path):
    import shutil

    name = "train_00002"
    folder = tmp_path / "frames" / name
    shutil.copytree(synth_root / "rgb-images" / name, folder)
    (folder / "00005.jpg").unlink()
    detector = load_detector(run=toy_run, builder=toy_builder())
    with pytest.warns(UserWarning, match="1 of frames 1-30 have no image"):
        detect_videos(detector, folder.parent, tmp_path / "gapped", progress=False)
    detect_videos(detector, synth_root / "rgb-images", tmp_path / "full", names=[name],
                  progress=False)
    gapped, full = (load_stage(tmp_path / x, "detections", name) for x in ("gapped", "full"))
    assert sorted(set(gapped["frames"].tolist())) == [n for n in range(1, 31) if n != 5]
    for n in (3, 10, 30):  # frames whose clips hold no missing frame: the same detections
        # (to float32 rounding: the two runs batch their clips differently, and torch 2.14's
        # CPU kernels round differently by batch size)
        np.testing.assert_allclose(gapped["boxes"][gapped["frames"] == n],
                                   full["boxes"][full["frames"] == n], rtol=1e-5, atol=1e-3)
