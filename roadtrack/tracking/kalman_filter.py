"""Constant-velocity Kalman filter over (cx, cy, a, h) with velocities, as in DeepSORT.

State (8,): centre x, centre y, aspect ratio w/h, height, and their velocities. Process and
measurement noise scale with the box height (weights 1/20 for position, 1/160 for velocity).

Two interchangeable paths share the model matrices :data:`F` and :data:`H`:

- :class:`BatchKalman` runs predict and update over all tracks at once in numpy (the tracker's
  default: one call per frame instead of one per track);
- :class:`FilterpyKalman` runs filterpy's ``KalmanFilter.predict/update`` object by object (the
  reference; filterpy is imported lazily because it pulls in scipy.stats, ~0.7 s of start-up).

Both take and return ``mean (N, 8)`` and ``cov (N, 8, 8)``; a test checks they agree.
"""
from __future__ import annotations

import numpy as np

NDIM = 4
#: Squared Mahalanobis bound for 4 degrees of freedom at 95% (chi-square inverse CDF).
CHI2_95_4DOF = 9.4877

#: Transition: position += velocity per frame.
F = np.eye(2 * NDIM)
F[:NDIM, NDIM:] = np.eye(NDIM)
#: Measurement: the first four state entries.
H = np.eye(NDIM, 2 * NDIM)


class _Noise:
    """DeepSORT's height-scaled noise: initial covariance, process Q and measurement R.

    Each standard deviation is ``weight * h + const``; the diagonals are built with one
    multiply-add per call from these per-entry vectors.
    """

    def __init__(self, std_weight_position: float = 1 / 20, std_weight_velocity: float = 1 / 160):
        wp, wv = std_weight_position, std_weight_velocity
        self.init_w = np.array([2 * wp, 2 * wp, 0, 2 * wp, 10 * wv, 10 * wv, 0, 10 * wv])
        self.init_c = np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0])
        self.q_w = np.array([wp, wp, 0, wp, wv, wv, 0, wv])
        self.q_c = np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0])
        self.r_w = np.array([wp, wp, 0, wp])
        self.r_c = np.array([0, 0, 1e-1, 0])

    def initial_std(self, h: np.ndarray) -> np.ndarray:
        """(N,) heights -> (N, 8) standard deviations of a new track."""
        return h[:, None] * self.init_w + self.init_c

    def process_var(self, h: np.ndarray) -> np.ndarray:
        """(N,) heights -> (N, 8) diagonal of Q."""
        return np.square(h[:, None] * self.q_w + self.q_c)

    def measurement_var(self, h: np.ndarray) -> np.ndarray:
        """(N,) heights -> (N, 4) diagonal of R."""
        return np.square(h[:, None] * self.r_w + self.r_c)


_DIAG8 = slice(None, None, 2 * NDIM + 1)  # the diagonal of a flattened (8, 8)
_POS = np.arange(NDIM)


class BatchKalman(_Noise):
    """Predict, update and gate all tracks at once; arrays in, arrays out.

    Under this model the four coordinates never mix (F pairs each with its own velocity, H picks
    them, all noise is diagonal), so the covariance stays block diagonal and the innovation
    covariance S is diagonal: the update divides by S instead of solving with it. The filterpy
    path computes with full matrices; a test checks both agree.
    """

    def initiate(self, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) measurements -> mean (N, 8) with zero velocity, cov (N, 8, 8) diagonal."""
        n = len(xyah)
        mean = np.zeros((n, 2 * NDIM))
        mean[:, :NDIM] = xyah
        cov = np.zeros((n, 2 * NDIM, 2 * NDIM))
        cov.reshape(n, -1)[:, _DIAG8] = np.square(self.initial_std(xyah[:, 3]))
        return mean, cov

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step ahead: mean (N, 8), cov (N, 8, 8) -> new arrays of the same shapes."""
        q = self.process_var(mean[:, 3])
        cov = F @ cov @ F.T
        cov.reshape(len(cov), -1)[:, _DIAG8] += q
        return mean @ F.T, cov

    def project(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Into measurement space: mean (N, 4) and the diagonal of S (N, 4)."""
        s = cov[:, _POS, _POS] + self.measurement_var(mean[:, 3])
        return mean[:, :NDIM], s

    def update(self, mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Correct N tracks with their measurements (N, 4); returns mean (N, 8), cov (N, 8, 8)."""
        z_pred, s = self.project(mean, cov)
        gain = cov[:, :, :NDIM] / s[:, None, :]  # (N, 8, 4) = P H^T S^-1
        mean = mean + (gain @ (xyah - z_pred)[:, :, None])[:, :, 0]
        cov = cov - (gain * s[:, None, :]) @ gain.transpose(0, 2, 1)  # P - K S K^T
        return mean, cov

    def gating_distance(self, mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each of M measurements to each of N tracks: (N, M)."""
        z_pred, s = self.project(mean, cov)
        d = xyah[None, :, :] - z_pred[:, None, :]  # (N, M, 4)
        return np.einsum("nmi,nmi->nm", d * d, 1.0 / s[:, None, :])


class FilterpyKalman(BatchKalman):
    """The same filter run through filterpy's ``KalmanFilter``, one object per track."""

    def __init__(self, std_weight_position: float = 1 / 20, std_weight_velocity: float = 1 / 160):
        super().__init__(std_weight_position, std_weight_velocity)
        from filterpy.kalman import KalmanFilter  # lazy: only the 'filterpy' option needs it

        self._kf = KalmanFilter(dim_x=2 * NDIM, dim_z=NDIM)
        self._kf.F = F.copy()
        self._kf.H = H.copy()

    def predict(self, mean, cov):
        q = self.process_var(mean[:, 3])
        out_mean, out_cov = np.empty_like(mean), np.empty_like(cov)
        for i in range(len(mean)):
            self._kf.x, self._kf.P = mean[i].copy(), cov[i].copy()
            self._kf.predict(Q=np.diag(q[i]))
            out_mean[i], out_cov[i] = self._kf.x, self._kf.P
        return out_mean, out_cov

    def update(self, mean, cov, xyah):
        r = self.measurement_var(mean[:, 3])
        out_mean, out_cov = np.empty_like(mean), np.empty_like(cov)
        for i in range(len(mean)):
            self._kf.x, self._kf.P = mean[i].copy(), cov[i].copy()
            self._kf.update(xyah[i], R=np.diag(r[i]))
            out_mean[i], out_cov[i] = self._kf.x, self._kf.P
        return out_mean, out_cov

    def gating_distance(self, mean, cov, xyah):
        """Squared Mahalanobis distance with the full innovation covariance: (N, M)."""
        s = H @ cov @ H.T
        s.reshape(len(s), -1)[:, :: NDIM + 1] += self.measurement_var(mean[:, 3])
        d = xyah[None, :, :] - (mean @ H.T)[:, None, :]  # (N, M, 4)
        return np.einsum("nmi,nij,nmj->nm", d, np.linalg.inv(s), d)


def make_kalman(kind: str = "batched", std_weight_position: float = 1 / 20,
                std_weight_velocity: float = 1 / 160) -> BatchKalman:
    """``batched`` (numpy over all tracks) or ``filterpy`` (per object)."""
    cls = {"batched": BatchKalman, "filterpy": FilterpyKalman}[kind]
    return cls(std_weight_position, std_weight_velocity)
