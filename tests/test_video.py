import cv2
import numpy as np
import pytest

from roadtrack.errors import UserError
from roadtrack.io.annotations import load_annotation
from roadtrack.io.video import (
    VIDEO_EXTENSIONS,
    FrameFolder,
    VideoFile,
    VideoReadError,
    clip_frame_numbers,
    discover_videos,
    iter_clips,
    open_video,
)


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
        for frame, n in zip(clip, numbers, strict=True):
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


# --- batches of videos from others: names, containers, frame numbers, broken files ------------

def _write_video(path, fourcc="mp4v", frames=6, size=(32, 24)):
    rng = np.random.default_rng(len(str(path)))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, size)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


def _frame_folder(src, dest, drop=()):
    """A copy of frame folder ``src`` without the images numbered in ``drop``."""
    import shutil

    shutil.copytree(src, dest)
    for n in drop:
        (dest / f"{n:05d}.jpg").unlink()
    return dest


CONTAINERS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".3gp": "mp4v", ".mkv": "mp4v",
              ".avi": "MJPG", ".webm": "VP80", ".wmv": "WMV2", ".asf": "WMV2", ".flv": "FLV1",
              ".ts": "mp4v", ".mts": "mp4v", ".m2ts": "mp4v", ".vob": "mpg2"}
SAME_AS = {".qt": ".mov", ".mpg": ".vob", ".mpeg": ".vob"}  # OpenCV writes only the latter


def test_every_listed_container_is_found_and_decodes(tmp_path):
    for ext, fourcc in CONTAINERS.items():
        _write_video(tmp_path / f"v{ext[1:]}{ext}", fourcc)
    for ext, same in SAME_AS.items():
        (tmp_path / f"v{ext[1:]}{ext}").write_bytes((tmp_path / f"v{same[1:]}{same}").read_bytes())
    assert set(VIDEO_EXTENSIONS) == set(CONTAINERS) | set(SAME_AS)
    sources = discover_videos(tmp_path)
    assert sorted(s.info.path.suffix for s in sources) == sorted(VIDEO_EXTENSIONS)
    for source in sources:
        n, frame = next(source.frames())
        assert n == 1 and frame.shape == (24, 32, 3), source.info.path


def test_other_video_containers_get_a_warning_naming_them(tmp_path):
    _write_video(tmp_path / "a.mp4")
    (tmp_path / "b.movie").write_bytes(b"an SGI movie")  # video/x-sgi-movie, not read here
    (tmp_path / "notes.txt").write_text("not a video at all")
    with pytest.warns(UserWarning, match=r"skipped 1 files.*b\.movie") as caught:
        assert [s.name for s in discover_videos(tmp_path)] == ["a"]
    assert len(caught) == 1 and str(tmp_path) in str(caught[0].message)


@pytest.mark.parametrize("first, second", [("Clip.mp4", "clip.mp4"), ("x.avi", "x.mp4"),
                                           ("X.mp4", "x")])
def test_two_inputs_of_one_name_are_an_error_naming_both(synth_root, tmp_path, first, second):
    for name in (first, second):
        if "." in name:
            _write_video(tmp_path / name)
        else:
            _frame_folder(synth_root / "rgb-images" / "train_00000", tmp_path / name)
    with pytest.raises(UserError, match=f"{first} and {second} are both video"):
        discover_videos(tmp_path)


def test_unreadable_videos_are_collected_when_asked(tmp_path):
    _write_video(tmp_path / "a.mp4")
    (tmp_path / "b.mp4").write_bytes(b"garbage, not a video")
    _write_video(tmp_path / "c.avi", "MJPG")
    failures = []
    sources = discover_videos(tmp_path, failures=failures)
    assert [s.name for s in sources] == ["a", "c"]
    assert [(name, err.path, err.frame) for name, err in failures] == [
        ("b", str(tmp_path / "b.mp4"), None)]
    with pytest.raises(VideoReadError, match="b.mp4: cannot open video"):
        discover_videos(tmp_path)


def test_gapped_frame_folder_keeps_file_numbers(synth_root, tmp_path):
    full = FrameFolder(synth_root / "rgb-images" / "train_00001")
    folder = _frame_folder(full.info.path, tmp_path / "gapped", drop=(5, 11, 12))
    with pytest.warns(UserWarning, match=r"gapped: 3 of frames 1-30 have no image \(5, 11-12\)"):
        source = FrameFolder(folder)
    frames = dict(source.frames())
    assert sorted(frames) == [n for n in range(1, 31) if n not in (5, 11, 12)]
    for n in (4, 6, 13, 30):
        assert np.array_equal(frames[n], full.read(n))
    assert source.info.num_frames == 30
    # clips of the present key frames; a missing neighbour is the nearest present frame
    clips = dict(iter_clips(source, length=4, stride=1))
    assert sorted(clips) == sorted(frames)
    assert np.array_equal(clips[6], np.stack([full.read(n) for n in (4, 6, 6, 7)]))


def test_frame_folder_numbering_oddities(synth_root, tmp_path):
    src = synth_root / "rgb-images" / "train_00000"
    zero = tmp_path / "zero"
    zero.mkdir()
    for n in range(3):
        (zero / f"{n:06d}.jpg").write_bytes((src / f"{n + 1:05d}.jpg").read_bytes())
    with pytest.warns(UserWarning, match="numbered from 0"):
        source = FrameFolder(zero)
    assert np.array_equal(source.read(1), FrameFolder(src).read(1))
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    (stamps / "20240101120000.jpg").write_bytes((src / "00001.jpg").read_bytes())
    with pytest.raises(VideoReadError, match="names are not frame numbers"):
        FrameFolder(stamps)
    twice = _frame_folder(src, tmp_path / "twice")
    (twice / "5.png").write_bytes(b"")
    with pytest.raises(VideoReadError, match="00005.jpg and 5.png are both frame 5"):
        FrameFolder(twice)
    unnumbered = _frame_folder(src, tmp_path / "unnumbered")
    (unnumbered / "cover.jpg").write_bytes(b"")
    with pytest.raises(VideoReadError, match="cover.jpg: image name holds no frame number"):
        FrameFolder(unnumbered)


@pytest.mark.parametrize("damage", ["garbage", "cut"])
def test_broken_image_names_its_frame(synth_root, tmp_path, damage):
    folder = _frame_folder(synth_root / "rgb-images" / "train_00000", tmp_path / "v")
    image = folder / "00010.jpg"
    data = image.read_bytes()
    image.write_bytes(b"not an image" if damage == "garbage" else data[: len(data) // 2])
    source = FrameFolder(folder)
    read = []
    with pytest.raises(VideoReadError) as caught:
        for n, _ in source.frames():
            read.append(n)
    assert caught.value.frame == 10 and caught.value.path == str(image)
    assert read == list(range(1, 10))


def test_image_claiming_a_huge_size_is_a_clear_error(synth_root, tmp_path):
    folder = _frame_folder(synth_root / "rgb-images" / "train_00000", tmp_path / "v")
    image = folder / "00003.jpg"
    data = bytearray(image.read_bytes())
    sof = data.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    data[sof + 5: sof + 9] = (60000).to_bytes(2, "big") * 2
    image.write_bytes(bytes(data))
    with pytest.raises(VideoReadError, match="00003.jpg: cannot decode image") as caught:
        FrameFolder(folder).read(3)
    assert caught.value.frame == 3


def test_frames_beyond_the_declared_count_are_warned(tmp_path):
    path = _write_video(tmp_path / "v.vob", "mpg2", frames=23)
    cap = cv2.VideoCapture(str(path))
    decodable = 0
    while cap.read()[0]:
        decodable += 1
    source = VideoFile(path)
    if source.info.num_frames >= decodable:
        pytest.skip("this FFmpeg counts the program stream's frames exactly")
    with pytest.warns(UserWarning, match="more frames than the .* its container declares"):
        assert len(list(source.frames())) == source.info.num_frames
