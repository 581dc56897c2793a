"""Detect's data path: frames decoded ahead, pushed once into a device ring, clips gathered from
it, batched post-processing; the same detections as the former per-clip CPU path."""
import shutil

import cv2
import numpy as np
import pytest
import torch

from roadtrack.engine.checkpoint import save_checkpoint
from roadtrack.engine.config import load_run_config
from roadtrack.engine.detect import detect_videos, load_detector
from roadtrack.engine.frames import (
    FrameRing,
    clip_positions,
    prefetch,
    reduced_factor,
    ring_capacity,
)
from roadtrack.io.artifacts import load_stage
from roadtrack.io.video import FrameFolder, VideoFile, VideoReadError, iter_clips, open_video
from roadtrack.labels import roadpp
from roadtrack.models import build_detector, normalize_clip

from .reference.detect import ResizedSource, detect_video_ref


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory):
    """The tiny config's real detector (RoI features included) at 64x64, 4 frames 2 apart."""
    cfg = load_run_config("synthetic_tiny")
    cfg = cfg.with_values("data", input_size=[64, 64], frame_step=2)
    cfg = cfg.with_values("detect", batch_size=3, score_threshold=0.0, reduced_decode=False)
    cfg = cfg.with_values("model", num_frames=4)
    torch.manual_seed(0)
    model = build_detector(cfg.model)
    path = tmp_path_factory.mktemp("w") / "fresh.pt"
    save_checkpoint(path, {"model": model.state_dict(), "config": cfg.to_dict(),
                           "labels": roadpp().to_dict()})
    return load_detector(weights=path, config=cfg, config_path="tiny")


def _compare(artifact, reference):
    for key, found in reference.items():
        rows = artifact["frames"] == key
        for field, value in found.items():
            np.testing.assert_allclose(artifact[field][rows].astype(np.float32),
                                       value.astype(np.float32), rtol=2e-3, atol=1e-3,  # fp16
                                       err_msg=f"{field} of frame {key}")


@pytest.mark.parametrize("kind", ["video", "gapped folder"])
def test_ring_path_gives_the_former_detections(synth_root, tiny_detector, tmp_path, kind):
    name = "train_00002"
    if kind == "video":
        source = VideoFile(next((synth_root / "videos").glob(f"{name}.*")), name=name)
        videos = source.info.path
    else:
        folder = tmp_path / "frames" / name
        shutil.copytree(synth_root / "rgb-images" / name, folder)
        for n in (1, 5, 6, 17):
            (folder / f"{n:05d}.jpg").unlink()
        with pytest.warns(UserWarning):
            source = FrameFolder(folder)
        videos = folder.parent
    cfg = tiny_detector.config
    reference = detect_video_ref(tiny_detector.model.eval(), tiny_detector.normalize, source,
                                 cfg.detect_size, 4, 2, cfg.detect)
    with pytest.warns() if kind != "video" else _nothing():
        detect_videos(tiny_detector, videos, tmp_path / "out", progress=False, device="cpu")
    artifact = load_stage(tmp_path / "out", "detections", name)
    assert sorted(set(artifact["frames"].tolist())) == sorted(reference)
    assert "roi_features" in artifact and "colour" in artifact
    assert sum(len(r["scores"]) for r in reference.values()) == len(artifact["frames"])
    _compare(artifact, reference)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False


def _squares(frames):  # a normaliser that is not affine: the ring calls it as it is
    return normalize_clip(frames) ** 2


@pytest.mark.parametrize("normalize", [normalize_clip, _squares])
@pytest.mark.parametrize("channels_last", [False, True])
def test_ring_gathers_the_clips_iter_clips_builds(synth_root, channels_last, normalize):
    source = open_video(synth_root / "rgb-images" / "train_00001")
    size, length, stride, batch = (64, 32), 5, 3, 4
    positions = clip_positions(source.numbers(), source.info.num_frames, length, stride)
    capacity = ring_capacity(positions, batch)
    assert capacity < len(positions)  # a window, not the video
    ring = FrameRing(capacity, size, torch.device("cpu"), torch.float32, normalize,
                     channels_last)
    assert (ring.affine is None) == (normalize is _squares)
    frames = prefetch(source, size, depth=3, reduce=False)
    expected = [clip for _, clip in iter_clips(ResizedSource(source, size), length, stride)]
    for start in range(0, len(positions), batch):
        part = positions[start: start + batch]
        chunk = [next(frames)[1] for _ in range(ring.pushed, part.max() + 1)]
        if chunk:
            ring.push(np.stack(chunk))  # runs that wrap round the ring's end
        got = ring.gather(part)  # (b, 3, T, H, W)
        want = normalize(torch.from_numpy(np.stack(expected[start: start + batch])))
        assert got.is_contiguous() != channels_last
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="outside the ring"):
        ring.gather(positions[:1])  # overwritten long ago


def test_prefetch_raises_a_read_error_at_its_frame(synth_root, tmp_path):
    folder = tmp_path / "v"
    shutil.copytree(synth_root / "rgb-images" / "train_00001", folder)
    (folder / "00007.jpg").write_bytes(b"not a jpeg")
    got = []
    with pytest.raises(VideoReadError, match="cannot decode image"):
        for n, _ in prefetch(FrameFolder(folder), (64, 64), depth=2):
            got.append(n)
    assert got == list(range(1, 7))


def test_reduced_decoding_gives_nearly_the_same_model_input(tmp_path):
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8), (1920, 1280),
                      interpolation=cv2.INTER_CUBIC)  # smooth, as camera frames are
    folder = tmp_path / "f"
    folder.mkdir()
    for n in (1, 2):
        cv2.imwrite(str(folder / f"{n:05d}.jpg"), base)
    assert reduced_factor((1920, 1280), (832, 608)) == 2
    assert reduced_factor((1920, 1280), (320, 224)) == 4
    assert reduced_factor((840, 600), (832, 608)) == 1
    source = FrameFolder(folder)
    full = [f for _, f in prefetch(source, (832, 608))]
    reduced = [f for _, f in prefetch(source, (832, 608), reduce=True)]
    assert len(full) == len(reduced) == 2
    difference = np.abs(full[0].astype(np.float32) - reduced[0].astype(np.float32))
    assert difference.mean() < 2.0  # grey levels of 255
