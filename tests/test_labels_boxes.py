import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from roadtrack import boxes as B
from roadtrack.labels import LABEL_TYPES, LabelSpace, name_mapping, roadpp


def test_roadpp_label_space_sizes_and_children():
    labels = roadpp()
    sizes = {t: labels.num_classes(t) for t in LABEL_TYPES + ("av_action",)}
    assert sizes == {"agent": 10, "action": 22, "loc": 16, "duplex": 49, "triplet": 86,
                     "av_action": 6}
    duplex, triplet = labels.duplex_children(), labels.triplet_children()
    for name, (a, c) in zip(labels.duplex, duplex, strict=True):
        assert name == f"{labels.agent[a]}-{labels.action[c]}"
    for name, (a, c, lo) in zip(labels.triplet, triplet, strict=True):
        assert name == f"{labels.agent[a]}-{labels.action[c]}-{labels.loc[lo]}"


def test_name_mapping_follows_names_and_drops_unused():
    mapping = name_mapping(["Zebra", "Car", "Ped", "OthTL"], ("Ped", "Car"))
    assert mapping.tolist() == [-1, 1, 0, -1]


def test_label_space_round_trips_through_dict():
    labels = roadpp()
    again = LabelSpace.from_dict(labels.to_dict())
    assert again == labels
    assert again.eval_size == (840, 600)


def test_box_conversions_round_trip():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (20, 2))
    xyxy = np.concatenate([xy, xy + rng.uniform(1, 80, (20, 2))], axis=1)
    assert np.allclose(B.xywh_to_xyxy(B.xyxy_to_xywh(xyxy)), xyxy)
    assert np.allclose(B.xyah_to_xyxy(B.xyxy_to_xyah(xyxy)), xyxy)


@pytest.mark.parametrize("n,m", [(7, 5), (0, 3), (4, 0)])
def test_iou_matrix_matches_torchvision(n, m):
    rng = np.random.default_rng(n * 10 + m)

    def rand(k):
        xy = rng.uniform(0, 100, (k, 2))
        return np.concatenate([xy, xy + rng.uniform(1, 40, (k, 2))], axis=1)

    a, b = rand(n), rand(m)
    ours = B.iou_matrix(a, b)
    assert ours.shape == (n, m)
    if n and m:
        ref = box_iou(torch.tensor(a), torch.tensor(b)).numpy()
        assert np.allclose(ours, ref)
        assert np.allclose(B.iou_pairs(a[:min(n, m)], b[:min(n, m)]),
                           np.diag(ref)[:min(n, m)])


def test_iou_plus_one_convention():
    a = np.array([[0, 0, 9, 9]])
    b = np.array([[5, 0, 14, 9]])
    assert B.iou_matrix(a, b, plus_one=True)[0, 0] == pytest.approx(50 / 150)
    assert B.iou_matrix(a, b)[0, 0] == pytest.approx(36 / 126)
