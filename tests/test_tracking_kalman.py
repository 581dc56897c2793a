import numpy as np
import pytest

from roadtrack.tracking.kalman_filter import CHI2_95_4DOF, BatchKalman, FilterpyKalman


def _measurements(rng, n):
    z = rng.uniform(20, 400, (n, 4))
    z[:, 2] = rng.uniform(0.3, 1.2, n)  # aspect ratio
    return z


def test_chi_square_bound_is_the_95_percent_quantile_for_4_dof():
    from scipy.stats import chi2

    assert CHI2_95_4DOF == pytest.approx(chi2.ppf(0.95, 4), abs=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_and_filterpy_paths_agree_over_a_random_run(seed):
    rng = np.random.default_rng(seed)
    batched, per_object = BatchKalman(), FilterpyKalman()
    z = _measurements(rng, 6)
    mean, cov = batched.initiate(z)
    mean_f, cov_f = per_object.initiate(z)
    for step in range(25):
        mean, cov = batched.predict(mean, cov)
        mean_f, cov_f = per_object.predict(mean_f, cov_f)
        obs = z + step * rng.normal(0, 2, z.shape)
        np.testing.assert_allclose(batched.gating_distance(mean, cov, obs),
                                   per_object.gating_distance(mean_f, cov_f, obs), rtol=1e-9)
        if rng.random() < 0.7:  # some frames without a measurement
            mean, cov = batched.update(mean, cov, obs)
            mean_f, cov_f = per_object.update(mean_f, cov_f, obs)
        np.testing.assert_allclose(mean, mean_f, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(cov, cov_f, rtol=1e-7, atol=1e-9)


def test_update_pulls_the_state_towards_the_measurement_and_shrinks_the_covariance():
    kf = BatchKalman()
    mean, cov = kf.initiate(np.array([[100.0, 100.0, 0.5, 80.0]]))
    mean, cov = kf.predict(mean, cov)
    new_mean, new_cov = kf.update(mean, cov, np.array([[110.0, 100.0, 0.5, 80.0]]))
    assert 100 < new_mean[0, 0] < 110
    assert np.all(np.diag(new_cov[0])[:4] < np.diag(cov[0])[:4])


def test_constant_velocity_is_learned():
    kf = BatchKalman()
    mean, cov = kf.initiate(np.array([[0.0, 0.0, 0.5, 50.0]]))
    for t in range(1, 30):
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, np.array([[3.0 * t, -t, 0.5, 50.0]]))
    assert mean[0, 4] == pytest.approx(3.0, abs=0.05)
    assert mean[0, 5] == pytest.approx(-1.0, abs=0.05)


def test_gating_distance_grows_with_the_offset():
    kf = BatchKalman()
    mean, cov = kf.initiate(np.array([[100.0, 100.0, 0.5, 80.0]]))
    mean, cov = kf.predict(mean, cov)
    obs = np.array([[100.0, 100.0, 0.5, 80.0], [105.0, 100.0, 0.5, 80.0],
                    [200.0, 100.0, 0.5, 80.0]])
    d = kf.gating_distance(mean, cov, obs)[0]
    assert d[0] < d[1] < d[2]
    assert d[0] < CHI2_95_4DOF < d[2]
