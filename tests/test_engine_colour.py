"""The vivid-colour descriptor of detections (lamps: brake lights, indicators, signals)."""
import numpy as np

from roadtrack.engine.colour import HUE_BINS, box_colours, vivid_hue_labels


def test_vivid_pixels_fall_in_their_hue_bin_and_dull_ones_in_none():
    colours = [(255, 0, 0), (255, 165, 0), (0, 255, 0), (0, 0, 255), (250, 0, 10),
               (128, 128, 128), (90, 0, 0), (255, 200, 200)]
    labels = vivid_hue_labels(np.array([colours], dtype=np.uint8))[0]
    # red 0 deg, amber 39 deg, green 120, blue 240, red just below 360 wraps to bin 0 (label 1);
    # grey (no saturation), dark red (value 0.35) and pale pink (saturation 0.22) are not vivid
    assert labels.tolist() == [1, 2, 5, 9, 1, 0, 0, 0]


def test_box_colours_are_shares_of_each_half():
    frame = np.full((40, 60, 3), 100, dtype=np.uint8)  # grey
    frame[10:20, 10:20] = (255, 0, 0)  # red, in the left half of the box
    frame[25:30, 40:50] = (255, 165, 0)  # amber, in the right half
    frame[0:5, 0:5] = (0, 0, 255)  # blue, outside the box
    shares = box_colours(frame, np.array([[10.0, 10.0, 50.0, 30.0], [0, 0, 0, 0]]))
    assert shares.shape == (2, 2 * HUE_BINS) and shares.dtype == np.float16
    left, right = shares[0, :HUE_BINS].astype(float), shares[0, HUE_BINS:].astype(float)
    assert left[0] == 0.25 and left[1:].sum() == 0  # 100 of the half's 20 x 20 pixels
    assert right[1] == 0.125 and right[0] == 0 and right[2:].sum() == 0  # 50 of 400
    assert not shares[1].any()  # an empty box has no share


def test_box_colours_clip_boxes_to_the_frame_and_take_no_boxes():
    frame = np.full((20, 20, 3), (255, 0, 0), dtype=np.uint8)
    shares = box_colours(frame, np.array([[-10.0, -10.0, 30.0, 30.0]]))
    assert shares[0, 0] == 1 and shares[0, HUE_BINS] == 1  # the frame's part, all red
    assert box_colours(frame, np.zeros((0, 4))).shape == (0, 2 * HUE_BINS)


def test_counting_in_boxes_and_by_integral_images_agree():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    labels = vivid_hue_labels(frame)

    def literal(box):  # shares of each half, pixel by pixel
        x1, y1, x2, y2 = box
        mid = (x1 + x2) // 2
        out = []
        for a, b in ((x1, mid), (mid, x2)):
            part = labels[y1:y2, a:b]
            out.append([(part == k + 1).sum() / max(part.size, 1) for k in range(HUE_BINS)])
        return np.concatenate(out)

    small = np.array([[5, 5, 25, 30], [40, 10, 41, 50], [70, 50, 90, 70]])  # counted in boxes
    large = np.array([[0, 0, 80, 60]] * 2 + [[10, 10, 50, 50]])  # more than the frame: integral
    for boxes in (small, large):
        want = np.array([literal(np.clip(b, 0, [80, 60, 80, 60])) for b in boxes])
        np.testing.assert_allclose(box_colours(frame, boxes.astype(float)).astype(float), want,
                                   atol=1e-3)
