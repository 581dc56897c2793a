"""Clip augmentations: crop keeps enough of each box, flip mirrors boxes and left/right labels."""
import numpy as np
import pytest

from roadtrack.engine.transforms import (
    ClipTransform,
    crop_boxes,
    flip_boxes,
    flip_labels,
    flip_permutation,
    jitter_boxes,
    mirror_name,
)
from roadtrack.labels import roadpp


@pytest.mark.parametrize("name, mirrored", [
    ("MovLft", "MovRht"), ("TurRht", "TurLft"), ("XingFmLft", "XingFmRht"), ("LftPav", "RhtPav"),
    ("IncatRht", "IncatLft"), ("LftParking", "rightParking"), ("Car-TurLft", "Car-TurRht"),
    ("Ped-XingFmRht-LftPav", "Ped-XingFmLft-RhtPav"), ("Car", "Car"), ("Mov", "Mov")])
def test_mirror_name_swaps_left_and_right(name, mirrored):
    assert mirror_name(name) == mirrored


def test_flip_permutation_on_the_roadpp_space_is_an_involution():
    space = roadpp()
    for label_type in ("agent", "action", "loc"):
        perm = flip_permutation(space.names(label_type))
        assert (perm >= 0).all()
        assert (perm[perm] == np.arange(len(perm))).all()
    action = flip_permutation(space.names("action"))
    assert action[space.index("action", "MovLft")] == space.index("action", "MovRht")
    duplex = flip_permutation(space.names("duplex"))
    # MedVeh-TurRht exists, MedVeh-TurLft does not: the mirrored label has nowhere to go
    assert duplex[space.names("duplex").index("MedVeh-TurRht")] == -1


def test_flip_labels_moves_columns_and_drops_missing_mirrors():
    names = ("Car-TurLft", "Car-TurRht", "Bus-TurRht")
    hot = np.array([[1, 0, 0], [0, 0, 1]], dtype=np.float32)
    out = flip_labels(hot, flip_permutation(names))
    assert out.tolist() == [[0, 1, 0], [0, 0, 0]]


def test_flip_twice_is_identity_and_mirrors_x():
    boxes = np.array([[0.1, 0.2, 0.4, 0.9]], dtype=np.float32)
    once = flip_boxes(boxes)
    assert np.allclose(once, [[0.6, 0.2, 0.9, 0.9]])
    assert np.allclose(flip_boxes(once), boxes)


def test_crop_drops_boxes_that_keep_too_little_area():
    boxes = np.array([[0.0, 0.0, 0.2, 0.2],    # wholly outside the window
                      [0.4, 0.4, 0.6, 0.6],    # inside
                      [0.1, 0.4, 0.3, 0.6]],   # a quarter inside (x 0.25..0.3 of 0.1..0.3)
                     dtype=np.float32)
    crop = np.array([0.25, 0.25, 0.75, 0.75])
    out, keep = crop_boxes(boxes, crop, keep_threshold=0.3)
    assert keep.tolist() == [False, True, False]
    assert np.allclose(out, [[0.3, 0.3, 0.7, 0.7]])
    _, keep_low = crop_boxes(boxes, crop, keep_threshold=0.2)
    assert keep_low.tolist() == [False, True, True]


def test_jitter_stays_in_bounds_and_moves_boxes():
    rng = np.random.default_rng(0)
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.4, 0.4, 0.6, 0.6]], dtype=np.float32)
    out = jitter_boxes(boxes, 0.1, rng)
    assert (out >= 0).all() and (out <= 1).all()
    assert not np.allclose(out[1], boxes[1])
    assert np.abs(out[1] - boxes[1]).max() <= 0.1 * 0.2 + 1e-6


def test_clip_transform_flips_pixels_boxes_and_labels_together():
    frames = np.zeros((2, 40, 60, 3), np.uint8)
    frames[:, 10:30, 0:15] = 255  # object at the left quarter
    boxes = np.array([[0.0, 0.25, 0.25, 0.75]], dtype=np.float32)
    space = roadpp()
    action = np.zeros((1, space.num_classes("action")), np.float32)
    action[0, space.index("action", "MovLft")] = 1
    labels = {"agent": np.ones((1, 10), np.float32), "action": action,
              "loc": np.zeros((1, 16), np.float32)}
    t = ClipTransform(size=(64, 32), train=True, flip_prob=1.0, crop_prob=0.0,
                      flip_perms={k: flip_permutation(space.names(k)) for k in labels})
    out, out_boxes, out_labels = t(frames, boxes, labels, np.random.default_rng(0))
    assert out.shape == (2, 32, 64, 3)
    assert np.allclose(out_boxes, [[0.75, 0.25, 1.0, 0.75]])
    assert out[0, 16, 60].mean() > 200 and out[0, 16, 4].mean() < 50  # pixels moved right
    assert out_labels["action"][0, space.index("action", "MovRht")] == 1
    assert out_labels["action"].sum() == 1


def test_same_seed_same_augmentation():
    frames = np.random.default_rng(1).integers(0, 255, (2, 40, 60, 3), dtype=np.uint8)
    boxes = np.array([[0.2, 0.2, 0.6, 0.6]], dtype=np.float32)
    labels = {"agent": np.ones((1, 3), np.float32)}
    t = ClipTransform(size=(32, 32), train=True, crop_prob=1.0, flip_prob=0.5, box_jitter=0.05,
                      flip_perms={"agent": np.arange(3)})
    a = t(frames, boxes, labels, np.random.default_rng([3, 1, 4]))
    b = t(frames, boxes, labels, np.random.default_rng([3, 1, 4]))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
