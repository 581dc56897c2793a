"""Camera-motion compensation: the affine fit, the Kalman-state warp, the tracker and
``roadtrack track --frames``."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.io.mot import read_mot
from roadtrack.tracking.cmc import MotionEstimator, estimate_motion, warp_state
from roadtrack.tracking.config import TrackerConfig
from roadtrack.tracking.kalman_filter import BatchKalman
from roadtrack.tracking.tracker import Tracker

W, H = 840, 600


def _texture(seed=0, size=(H + 200, W + 200)):
    """A grey random texture with structure at several scales, larger than a frame."""
    rng = np.random.default_rng(seed)
    img = sum(cv2.resize(rng.uniform(0, 255, (size[0] // k, size[1] // k)).astype(np.float32),
                         size[::-1], interpolation=cv2.INTER_CUBIC) for k in (4, 16, 64))
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def _view(world, affine):
    """The frame (H, W) the camera sees when world pixels map to frame pixels by ``affine``."""
    return cv2.warpAffine(world, affine, (W, H), flags=cv2.INTER_LINEAR)


def _camera(angle_deg, scale, tx, ty):
    """World -> frame affine (2, 3): the frame is a window at (100, 100) of the world."""
    a = cv2.getRotationMatrix2D((W / 2 + 100, H / 2 + 100), angle_deg, scale)
    a[:, 2] += [tx - 100, ty - 100]
    return a


def _compose(a, b):
    """Affine ``a`` after ``b``."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


def _invert(a):
    return cv2.invertAffineTransform(a)


@pytest.mark.parametrize("method", ["sparse-flow", "ecc"])
def test_a_known_camera_motion_is_recovered_within_half_a_pixel(method):
    world = _texture()
    before, after = _camera(0, 1, 0, 0), _camera(0.6, 1.008, 6.3, -2.7)
    truth = _compose(after, _invert(before))  # previous frame -> this frame
    estimator = MotionEstimator(method)
    assert np.allclose(estimator(_view(world, before)), np.eye(2, 3))  # the first frame
    got = estimator(cv2.cvtColor(_view(world, after), cv2.COLOR_GRAY2RGB))
    grid = np.stack(np.meshgrid(np.linspace(40, W - 40, 9), np.linspace(40, H - 40, 7)),
                    -1).reshape(-1, 2)
    error = np.linalg.norm(grid @ got[:, :2].T + got[:, 2] - (grid @ truth[:, :2].T + truth[:, 2]),
                           axis=1)
    assert error.max() < 0.5, error.max()


def test_masked_boxes_keep_a_moving_object_out_of_the_fit():
    world = _texture(1)
    frames, boxes = [], []
    for k in range(3):  # the camera pans right; a big object stands still in the frame
        frame = _view(world, _camera(0, 1, -8.0 * k, 0))
        frame[100:500, 200:640] = _texture(2, (400, 440))
        frames.append(frame)
        boxes.append(np.array([[200, 100, 640, 500]]))
    motion = estimate_motion(frames, "sparse-flow", boxes)
    assert motion.shape == (3, 2, 3)
    assert np.allclose(motion[1:, :, 2], [-8, 0], atol=0.5)


def test_warp_state_moves_centres_velocities_and_heights_like_the_boxes():
    kf = BatchKalman()
    mean, cov = kf.initiate(np.array([[100.0, 50.0, 0.5, 40.0], [300.0, 200.0, 0.4, 80.0]]))
    mean[:, 4:6] = [[3.0, -1.0], [0.0, 2.0]]
    affine = cv2.getRotationMatrix2D((0, 0), 10, 1.2)
    affine[:, 2] = [7, -5]
    new_mean, new_cov = warp_state(mean, cov, affine)
    assert np.allclose(new_mean[:, :2], mean[:, :2] @ affine[:, :2].T + affine[:, 2])
    assert np.allclose(new_mean[:, 4:6], mean[:, 4:6] @ affine[:, :2].T)  # no translation
    assert np.allclose(new_mean[:, 2], mean[:, 2]) and np.allclose(new_mean[:, 3],
                                                                    1.2 * mean[:, 3])
    # the position covariance turns with the frame; the state stays a valid covariance
    assert np.allclose(new_cov[:, :2, :2], affine[:, :2] @ cov[:, :2, :2] @ affine[:, :2].T)
    assert (np.linalg.eigvalsh(new_cov) > 0).all()
    one_mean, one_cov = warp_state(mean[0], cov[0], affine)  # one filter's x and P
    assert np.allclose(one_mean, new_mean[0]) and np.allclose(one_cov, new_cov[0])
    assert np.array_equal(warp_state(mean, cov, np.eye(2, 3))[0], mean)


def _panned_objects(num_frames=30):
    """Per frame: boxes (3, 4) of three objects standing still in the world while the camera
    pans in jerks (still, 45 px a frame left, still, 45 px right), and the camera's affines."""
    world = np.array([[200, 200, 230, 260], [320, 220, 350, 280], [440, 190, 470, 250]], float)
    offsets = np.zeros(num_frames)
    for f in range(1, num_frames):
        step = -45 if 8 <= f < 13 else 45 if 20 <= f < 24 else 0
        offsets[f] = offsets[f - 1] + step
    boxes = [world + [o, 0, o, 0] for o in offsets]
    affines = np.tile(np.eye(2, 3), (num_frames, 1, 1))
    affines[1:, 0, 2] = np.diff(offsets)
    return boxes, affines


@pytest.mark.parametrize("cmc", [True, False])
def test_tracks_survive_a_camera_pan_only_with_compensation(cmc):
    boxes, affines = _panned_objects()
    tracker = Tracker(TrackerConfig(appearance=False))
    ids = np.array([tracker.update(b, np.full(3, 0.9), camera_motion=a if cmc else None)[0]
                    for b, a in zip(boxes, affines, strict=True)])  # (F, 3)
    per_object = [set(ids[1:, k].tolist()) for k in range(3)]
    if cmc:
        assert all(len(s) == 1 for s in per_object)  # one id each, all the way
    else:
        assert sum(len(s) for s in per_object) > 3  # the pan breaks the tracks


# -- roadtrack track --frames -----------------------------------------------------------------


def _write_sequence(root: Path, num_frames=12, shift=-30.0) -> tuple[Path, Path]:
    """A MOTChallenge sequence: img1/ frames of a camera panning ``shift`` px a frame over a
    textured world, and det/det.txt of three objects standing still in that world."""
    world = _texture(3)
    img1 = root / "seq" / "img1"
    img1.mkdir(parents=True)
    rows = []
    for f in range(1, num_frames + 1):
        camera = _camera(0, 1, shift * (f - 1), 0)
        frame = _view(world, camera)
        cv2.imwrite(str(img1 / f"{f:06d}.jpg"), frame)
        for k in range(3):
            x = 300 + 120 * k + shift * (f - 1)
            rows.append(f"{f},-1,{x:.1f},{200 + 10 * k},30,60,0.9,-1,-1,-1")
    det = root / "seq" / "det" / "det.txt"
    det.parent.mkdir(parents=True)
    det.write_text("\n".join(rows) + "\n")
    return det, img1


def _track(*args):
    return CliRunner().invoke(main, ["track", *map(str, args), "--no-progress"])


def test_track_with_frames_keeps_ids_through_a_pan(tmp_path):
    det, img1 = _write_sequence(tmp_path)
    with_frames = _track("--dets", det, "--frames", img1, "--out", tmp_path / "a")
    assert with_frames.exit_code == 0, with_frames.output
    kept = read_mot(tmp_path / "a" / "seq.txt")
    assert set(kept.ids.tolist()) == {1, 2, 3} and len(kept) == 36
    # the same sequence found through the MOT layout of a folder
    by_root = _track("--dets", tmp_path, "--frames", tmp_path, "--out", tmp_path / "b")
    assert by_root.exit_code == 0, by_root.output
    assert (tmp_path / "a" / "seq.txt").read_text() == (tmp_path / "b" / "seq.txt").read_text()
    assert _track("--dets", det, "--out", tmp_path / "c").exit_code == 0
    lost = read_mot(tmp_path / "c" / "seq.txt", allow_empty=True)  # no track gets 2 hits
    assert len(lost) < 36


@pytest.mark.parametrize("breakage, message", [
    ("missing", "frame folder not found"),
    ("unreadable", "cannot decode image"),
    ("short", "has frames up to 11, but the detections"),
])
def test_bad_frames_fail_with_one_line_and_write_nothing(tmp_path, breakage, message):
    det, img1 = _write_sequence(tmp_path)
    frames = img1
    if breakage == "missing":
        frames = tmp_path / "nowhere"
    elif breakage == "unreadable":
        (img1 / "000005.jpg").write_bytes(b"not a jpeg")
    else:
        (img1 / "000012.jpg").unlink()
    res = _track("--dets", det, "--frames", frames, "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and message in res.output, res.output
    assert not (tmp_path / "out").exists()
