"""Fuzz: broken video files, broken images and odd frame-folder names never crash a batch.

Any of them either reads correctly or raises VideoReadError (one line naming the file, and the
frame where the video broke), which ``detect``/``run`` turn into a row of the closing table.
"""
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roadtrack.io.video import (
    FRAME_EXTENSIONS,
    FrameFolder,
    VideoReadError,
    discover_videos,
    numbered_images,
)

FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".webm": "VP80"}


def _video(path: Path, frames: int = 6) -> bytes:
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC[path.suffix]), 10, (32, 24))
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    writer.release()
    return path.read_bytes()


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Bytes of a small good file per container, and of a good JPEG frame."""
    folder = tmp_path_factory.mktemp("originals")
    files = {ext: _video(folder / f"v{ext}") for ext in FOURCC}
    _, jpeg = cv2.imencode(".jpg", np.full((24, 32, 3), 128, np.uint8))
    files[".jpg"] = jpeg.tobytes()
    return files


@st.composite
def damaged(draw, original: bytes) -> bytes:
    """``original`` cut short, with a span overwritten, or replaced by random bytes."""
    how = draw(st.sampled_from(["cut", "overwrite", "random"]))
    if how == "random":
        return draw(st.binary(max_size=2048))
    at = draw(st.integers(0, max(0, len(original) - 1)))
    if how == "cut":
        return original[:at]
    junk = draw(st.binary(min_size=1, max_size=64))
    return original[:at] + junk + original[at + len(junk):]


def _one_line(err: VideoReadError, *names: str) -> None:
    assert "\n" not in str(err) and any(n in str(err) for n in names), str(err)


@given(data=st.data(), ext=st.sampled_from(sorted(FOURCC)))
def test_broken_video_file_reads_or_fails_cleanly(originals, data, ext):
    broken = data.draw(damaged(originals[ext]))
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = Path(tmp)
        (folder / "good.avi").write_bytes(originals[".avi"])
        (folder / f"broken{ext}").write_bytes(broken)
        failures = []
        sources = {s.name: s for s in discover_videos(folder, failures=failures)}
        assert len(list(sources["good"].frames())) == 6
        if "broken" not in sources:
            ((name, err),) = failures
            assert name == "broken" and err.frame is None
            _one_line(err, f"broken{ext}")
            return
        source = sources["broken"]
        read = []
        try:
            for n, frame in source.frames():
                assert frame.shape == (source.info.height, source.info.width, 3)
                read.append(n)
        except VideoReadError as err:
            _one_line(err, f"broken{ext}")
            assert err.frame == len(read) + 1
        else:
            assert read == list(range(1, source.info.num_frames + 1))


@given(data=st.data(), position=st.integers(1, 3))
def test_broken_image_in_a_frame_folder_names_its_frame(originals, data, position):
    broken = data.draw(damaged(originals[".jpg"]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "v"
        folder.mkdir()
        for n in (1, 2, 3):
            (folder / f"{n:05d}.jpg").write_bytes(broken if n == position else originals[".jpg"])
        read = []
        try:
            for n, _ in FrameFolder(folder).frames():
                read.append(n)
        except VideoReadError as err:  # a broken first image may show as frame 2's other size
            _one_line(err, f"{position:05d}.jpg")
            assert err.frame in ((1, 2) if position == 1 else (position,))
            assert read == list(range(1, err.frame))
        else:
            assert read == [1, 2, 3]


NAMES = st.builds(
    lambda prefix, number, ext: prefix + number + ext,
    st.sampled_from(["", "frame_", "img-", "x", "."]),
    st.one_of(st.just(""), st.integers(0, 40).map(str), st.integers(0, 40).map("{:05d}".format),
              st.text("0123456789", min_size=1, max_size=24)),
    st.sampled_from(list(FRAME_EXTENSIONS) + [".JPG", ".txt"]))


@given(names=st.lists(NAMES, max_size=12, unique=True))
def test_frame_folder_names_number_frames_or_fail_cleanly(names):
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        folder = Path(tmp)
        for name in names:
            (folder / name).write_bytes(b"")
        images = sorted(folder / n for n in names
                        if Path(n).suffix.lower() in FRAME_EXTENSIONS and not n.startswith("."))
        try:
            by_number = numbered_images(folder)
        except VideoReadError as err:
            assert "\n" not in str(err) and str(folder) in str(err)
            return
        numbers = list(by_number)
        assert numbers == sorted(numbers) and numbers[0] >= 1
        trailing = {i: int(i.stem[len(i.stem.rstrip("0123456789")):]) for i in images}
        shift = 1 if 0 in trailing.values() else 0
        assert by_number == {n + shift: i for i, n in trailing.items()}
        gaps = [w for w in caught if "have no image" in str(w.message)]
        assert len(gaps) == (1 if numbers[-1] > len(numbers) else 0)
