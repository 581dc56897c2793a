import cv2
import numpy as np
import pytest

from roadtrack.errors import UserError
from roadtrack.io.annotations import load_annotation
from roadtrack.io.video import (FrameFolder, VideoFile, clip_frame_numbers, discover_videos,
                                iter_clips, open_video)


def test_every_synth_video_decodes_to_numf_frames(synth_root, synth_anno_path):
    anno = load_annotation(synth_anno_path)
    for name, video in anno.videos.items():
        for source in (VideoFile(synth_root / "videos" / f"{name}.mp4"),
                       FrameFolder(synth_root / "rgb-images" / name)):
            assert source.name == name
            assert source.info.num_frames == video.numf
            assert (source.info.width, source.info.height) == (video.width, video.height)
            count = sum(1 for _ in source.frames())
            assert count == video.numf


def test_mp4_and_jpeg_frames_show_the_same_picture(synth_root):
    mp4 = dict(VideoFile(synth_root / "videos" / "train_00000.mp4").frames(1, 3))
    jpg = dict(FrameFolder(synth_root / "rgb-images" / "train_00000").frames(1, 3))
    assert set(mp4) == set(jpg) == {1, 2, 3}
    diff = np.abs(mp4[2].astype(int) - jpg[2].astype(int)).mean()
    assert diff < 12  # lossy codecs, same scene


def test_discover_prefers_frame_folders_in_a_dataset_root(synth_root):
    sources = discover_videos(synth_root)
    assert [s.name for s in sources] == ["train_00000", "train_00001", "train_00002"]
    assert all(isinstance(s, FrameFolder) for s in sources)
    assert all(isinstance(s, VideoFile) for s in discover_videos(synth_root / "videos"))
    with pytest.raises(UserError, match="not found"):
        discover_videos(synth_root, names=["train_00009"])


def test_clip_numbers_are_centred_and_edge_padded():
    assert clip_frame_numbers(1, 30, 4, 2).tolist() == [1, 1, 1, 3]
    assert clip_frame_numbers(15, 30, 5, 1).tolist() == [13, 14, 15, 16, 17]
    assert clip_frame_numbers(30, 30, 4, 1).tolist() == [28, 29, 30, 30]


def test_iter_clips_streams_the_same_frames_as_random_reads(synth_root):
    source = FrameFolder(synth_root / "rgb-images" / "train_00001")
    clips = dict(iter_clips(source, length=4, stride=2, keys=[1, 2, 15, 30]))
    assert list(clips) == [1, 2, 15, 30]
    for key, clip in clips.items():
        assert clip.shape == (4, source.info.height, source.info.width, 3)
        numbers = clip_frame_numbers(key, source.info.num_frames, 4, 2)
        for frame, n in zip(clip, numbers):
            assert np.array_equal(frame, source.read(n))


def test_empty_folder_and_unreadable_video(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no videos"):
        discover_videos(tmp_path / "empty")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(UserError, match="cannot open video|no decodable"):
        open_video(bad)
    empty = tmp_path / "zero.mp4"
    empty.write_bytes(b"")
    with pytest.raises(UserError):
        open_video(empty)


def test_video_that_breaks_halfway_names_the_frame(tmp_path):
    path = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(20):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    source = open_video(path)
    with pytest.raises(UserError, match="decoding failed at frame"):
        for _ in source.frames():
            pass
