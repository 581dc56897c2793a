import numpy as np
import pytest

from roadtrack.tracking.appearance import Gallery, cosine_distance, normalize


def test_cosine_distance_of_unit_vectors():
    a = normalize(np.array([[1.0, 0.0], [0.0, 2.0]]))
    b = normalize(np.array([[3.0, 0.0], [-1.0, 0.0]]))
    np.testing.assert_allclose(cosine_distance(a, b), [[0.0, 2.0], [1.0, 1.0]], atol=1e-6)


def test_budget_gallery_keeps_the_last_embeddings_and_takes_the_nearest():
    e = np.eye(4, dtype=np.float32)
    g = Gallery(4, "budget", budget=2)
    g.add_tracks(e[[0]])
    g.update(np.array([0]), e[[1]])
    np.testing.assert_allclose(g.distance(np.array([0]), e[[0, 1, 2]]), [[0, 0, 1]], atol=1e-6)
    g.update(np.array([0]), e[[2]])  # budget 2: e0 drops out
    np.testing.assert_allclose(g.distance(np.array([0]), e[[0, 1, 2]]), [[1, 0, 0]], atol=1e-6)


def test_ema_gallery_moves_towards_new_embeddings_and_stays_unit():
    e = np.eye(3, dtype=np.float32)
    g = Gallery(3, "ema", ema_alpha=0.5)
    g.add_tracks(e[[0]])
    g.update(np.array([0]), e[[1]])
    assert np.linalg.norm(g.feats[0, 0]) == pytest.approx(1.0, abs=1e-6)
    d = g.distance(np.array([0]), e[[0, 1]])[0]
    assert d[0] == pytest.approx(d[1], abs=1e-6) and 0 < d[0] < 1


def test_keep_drops_galleries_of_deleted_tracks():
    e = np.eye(3, dtype=np.float32)
    g = Gallery(3, "budget", budget=5)
    g.add_tracks(e)
    g.keep(np.array([True, False, True]))
    assert len(g) == 2
    np.testing.assert_allclose(g.distance(np.array([0, 1]), e[[2]])[:, 0], [1, 0], atol=1e-6)


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        Gallery(4, "median")
