"""AP of one class: the raw trapezoid curve and the greedy matching of the official scorer."""
import numpy as np
import pytest

from roadtrack.eval.ap import average_precision, greedy_true_positives, pad_groups, rank


def test_ap_raw_trapezoid_from_precision_one_recall_zero():
    # TP, FP, TP with 2 positives: points (0,1) (.5,1) (.5,.5) (1,2/3)
    result = average_precision(np.array([True, False, True]), 2)
    expected = (0.5 * (1 + 1) / 2 + 0 + 0.5 * (0.5 + 2 / 3) / 2) * 100
    assert result.ap == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(result.precision, [1, 0.5, 2 / 3])
    np.testing.assert_allclose(result.recall, [0.5, 0.5, 1])


def test_ap_edge_cases():
    assert average_precision(np.zeros(0, dtype=bool), 5).ap == 0.0
    assert average_precision(np.array([True, True]), 2).ap == pytest.approx(100.0)
    # no ground truth: positives count as 1, so one "hit" would give recall 1; all misses give 0
    assert average_precision(np.array([False, False]), 0).ap == 0.0
    # a first false positive costs half the first step: (0,1)->(.5,.5)->...
    assert average_precision(np.array([False, True]), 1).ap == pytest.approx(25.0)


def test_greedy_takes_best_remaining_in_rank_order():
    # one group, two ground truths; detection 0 overlaps gt1 best, detection 1 prefers gt1 too
    overlaps = np.array([[0.6, 0.9], [0.55, 0.95], [0.2, 0.1]])
    slot = np.array([0, 0, 0])
    valid = np.array([[True, True]])
    tp = greedy_true_positives(slot, overlaps, valid, 0.5)
    # det 0 takes gt1; det 1 falls back on gt0 (0.55 >= 0.5); det 2 finds nothing left
    assert tp.tolist() == [True, True, False]
    tp = greedy_true_positives(slot, overlaps, valid, 0.58)
    assert tp.tolist() == [True, False, False]


def test_greedy_groups_are_independent_and_padding_is_ignored():
    overlaps = np.array([[0.9, -1.0], [0.7, 0.8], [0.9, -1.0], [0.3, 0.3]])
    slot = np.array([0, 1, 0, -1])
    valid = np.array([[True, False], [True, True]])
    tp = greedy_true_positives(slot, overlaps, valid, 0.5)
    assert tp.tolist() == [True, True, False, False]


def test_rank_is_numpys_default_argsort_of_negated_scores():
    scores = np.round(np.random.default_rng(0).random(500), 1)  # many ties
    np.testing.assert_array_equal(rank(scores), np.argsort(-scores))
    np.testing.assert_array_equal(rank(scores.astype(np.float32)), np.argsort(-scores))


def test_pad_groups_keeps_order_inside_groups():
    position, valid = pad_groups(np.array([1, 0, 1, 1, 0]), 3)
    assert position.tolist() == [0, 0, 1, 2, 1]
    assert valid.tolist() == [[True, True, False], [True, True, True], [False, False, False]]
