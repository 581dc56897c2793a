"""The multi-object tracker: predict, associate in rounds, update, manage track life.

Per frame (DeepSORT's order, ByteTrack's optional second round):

1. predict every track one frame ahead (Kalman, batched; with ``freeze_lost_height`` a track
   unmatched last frame keeps its height, as in ByteTrack);
2. with embeddings: a matching cascade over confirmed tracks, most recently seen first, on cosine
   distance to each track's gallery, gated by squared Mahalanobis distance (chi-square 95%);
3. IoU matching of the high-score detections left to tentative tracks and to tracks missed for
   at most ``iou_max_misses`` frames (DeepSORT: 1; all tracks when there are no embeddings);
4. optionally (``low_score`` set) IoU matching of low-score detections to tracks seen last frame;
5. Kalman update of matched tracks, deletion of lost ones, new tracks from unmatched detections.

Score thresholds are scores, or (``score_range: input``) positions in the detector's score range
given to the tracker. Each matched detection reports its track's Kalman estimate after the update
(:attr:`Tracker.last_boxes`, ``output_box``).

The per-frame work is a few dozen array operations whatever the number of tracks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes import iou_matrix, xyah_to_xyxy, xyxy_to_xyah
from .appearance import Gallery, normalize
from .assignment import forbid_class_changes, gate_by_mahalanobis, linear_assignment
from .cmc import warp_state
from .config import TrackerConfig
from .kalman_filter import make_kalman
from .track import TrackSet


def usable_rows(boxes: np.ndarray, scores: np.ndarray, min_score: float) -> np.ndarray:
    """(M,) bool: finite boxes with positive width and height and a score >= ``min_score``.

    (Comparisons with NaN are simply False in numpy and raise no warning.)
    """
    return (np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > boxes[:, 0])
            & (boxes[:, 3] > boxes[:, 1]) & (scores >= min_score))


_NO_STATES = np.zeros((0, 4))  # (0, 4) the estimates of a frame without matches


@dataclass(frozen=True)
class ScoreThresholds:
    """The score thresholds in force (see :func:`score_thresholds`)."""

    min: float
    high: float
    low: float | None
    new_track: float


def score_thresholds(config: TrackerConfig, score_range: tuple[float, float] | None = None
                     ) -> ScoreThresholds:
    """The config's score thresholds as scores. With ``score_range: input`` and a ``(lo, hi)``
    range each threshold t becomes ``lo + t * (hi - lo)``: ByteTrack's 0.6 for a detector whose
    scores span [0.5, 1] is 0.8. Without a range (the online API) they are taken as scores."""
    c = config
    lo, hi = (0.0, 1.0) if score_range is None or c.score_range == "absolute" else score_range

    def scale(t):
        return lo + t * (hi - lo)

    return ScoreThresholds(scale(c.min_score), scale(c.high_score),
                           None if c.low_score is None else scale(c.low_score),
                           scale(c.new_track_score))


#: The highest score cut a detector's output is taken to have (that of the MOTChallenge public
#: detections): an input without weak detections cannot push the thresholds higher.
MAX_SCORE_FLOOR = 0.5


def input_score_range(scores: np.ndarray) -> tuple[float, float] | None:
    """The detector's score range as the input shows it: [lowest of the finite scores (N,), at
    most :data:`MAX_SCORE_FLOOR`; max(1, highest)]; None without scores."""
    scores = scores[np.isfinite(scores)]
    if not len(scores):
        return None
    return min(float(scores.min()), MAX_SCORE_FLOOR), max(1.0, float(scores.max()))


class Tracker:
    """Online tracker; call :meth:`update` once per frame, in order, empty frames included.

    ``embedding_dim`` > 0 (with ``config.appearance``) makes :meth:`update` expect one embedding
    per detection and associate on appearance first.
    """

    def __init__(self, config: TrackerConfig | None = None, embedding_dim: int = 0,
                 score_range: tuple[float, float] | None = None):
        self.config = config or TrackerConfig()
        c = self.config
        self.thresholds = score_thresholds(c, score_range)
        self.kf = make_kalman(c.kalman, c.std_weight_position, c.std_weight_velocity)
        self.use_appearance = bool(c.appearance and embedding_dim > 0)
        gallery = Gallery(embedding_dim, c.gallery, c.budget, c.ema_alpha) \
            if self.use_appearance else None
        self.tracks = TrackSet(gallery)
        self.next_id = 1
        self.frame_count = 0
        #: the last frame's matched detections (K,) and their tracks' filtered xyah (K, 4)
        self.estimates: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64), np.zeros((0, 4)))
        self._last_input = np.zeros((0, 4))

    @property
    def _gallery(self) -> Gallery:
        """The appearance gallery; only a tracker that uses appearance has one."""
        gallery = self.tracks.gallery
        assert gallery is not None, "this tracker does not associate on appearance"
        return gallery

    @property
    def idle(self) -> bool:
        """No live track and no detection in the last step: a step without detections would
        change nothing but the frame count (see :meth:`skip`)."""
        return not len(self.tracks) and not len(self._last_input)

    def skip(self, count: int) -> None:
        """Pass ``count`` frames without detections while :attr:`idle`."""
        assert self.idle, "only an idle tracker skips frames"
        self.frame_count += count

    def compensate(self, camera_motion: np.ndarray) -> None:
        """Move every live track into this frame's pixels: affine (2, 3) from the last frame's
        (camera-motion compensation, ``roadtrack.tracking.cmc``); call before :meth:`step`."""
        if len(self.tracks):
            self.tracks.mean, self.tracks.cov = warp_state(self.tracks.mean, self.tracks.cov,
                                                           camera_motion)

    def update(self, boxes: np.ndarray, scores: np.ndarray | None = None,
               features: np.ndarray | None = None, classes: np.ndarray | None = None,
               camera_motion: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Advance one frame with its detections (and the camera's motion since the last frame,
        an affine (2, 3) from its pixels to this frame's, when known).

        boxes (M, 4) x1 y1 x2 y2; scores (M,); features (M, D) when the tracker uses appearance;
        classes (M,) ints for the per-class option. Rows with non-finite values (embeddings
        included), boxes without area and scores below ``min_score`` are ignored.

        Returns ``track_ids (M,)`` (-1 where a detection joined no track) and ``confirmed (M,)``
        (the track was confirmed when it took the detection).
        """
        if camera_motion is not None:
            self.compensate(camera_motion)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        m = len(boxes)
        scores = np.ones(m) if scores is None else np.asarray(scores, dtype=np.float64)
        usable = usable_rows(boxes, scores, self.thresholds.min)
        embeddings = None
        if self.use_appearance:
            if features is None:
                raise ValueError("this tracker associates on appearance: pass features (M, D)")
            embeddings = np.asarray(features, dtype=np.float32).reshape(m, self._gallery.dim)
            usable &= np.isfinite(embeddings).all(axis=1)
        if classes is not None:
            classes = np.asarray(classes, dtype=np.int64).reshape(m)
        if usable.all():  # the common case: no row to leave out
            return self.step(boxes, xyxy_to_xyah(boxes), scores,
                             None if embeddings is None else normalize(embeddings), classes)
        keep = usable.nonzero()[0]
        if embeddings is not None:
            embeddings = normalize(embeddings[keep])
        if classes is not None:
            classes = classes[keep]
        ids, confirmed = self.step(boxes[keep], xyxy_to_xyah(boxes[keep]), scores[keep],
                                   embeddings, classes)
        track_ids = np.full(m, -1, dtype=np.int64)
        is_confirmed = np.zeros(m, dtype=bool)
        track_ids[keep], is_confirmed[keep] = ids, confirmed
        self._last_input = boxes
        self.estimates = keep[self.estimates[0]], self.estimates[1]
        return track_ids, is_confirmed

    @property
    def last_boxes(self) -> np.ndarray:
        """(M, 4) xyxy: the box each detection of the last update reports, its track's Kalman
        estimate after the update (``output_box: kalman``, matched rows) or the detection."""
        rows, xyah = self.estimates
        if self.config.output_box != "kalman" or not len(rows):
            return self._last_input
        boxes = self._last_input.copy()
        boxes[rows] = xyah_to_xyxy(xyah)
        return boxes

    def step(self, boxes: np.ndarray, xyah: np.ndarray, scores: np.ndarray,
             features: np.ndarray | None = None, classes: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`update` for rows already checked with :func:`usable_rows`.

        boxes (M, 4) xyxy float64 and the same boxes as xyah (M, 4); features (M, D) of unit
        length when the tracker uses appearance. Returns track_ids (M,) and confirmed (M,).
        """
        c, tracks = self.config, self.tracks
        self.frame_count += 1
        m = len(boxes)
        if not c.per_class or classes is None:
            classes = None
        if len(tracks):
            if c.freeze_lost_height:  # ByteTrack: a lost track's box stops growing or shrinking
                tracks.mean[tracks.since_update > 0, 7] = 0.0
            tracks.mean, tracks.cov = self.kf.predict(tracks.mean, tracks.cov)
            tracks.since_update += 1
        t = self.thresholds
        split = t.low is not None or t.high > t.min
        high = (scores >= t.high).nonzero()[0] if split else np.arange(m)
        has_low = len(high) < m

        det_track = np.full(m, -1, dtype=np.int64)  # row in tracks per detection
        free = np.ones(len(tracks), dtype=bool)  # tracks still unmatched this frame
        if self.use_appearance and len(tracks):
            high = self._cascade(high, xyah, features, classes, det_track, free)
            candidates = (free & (~tracks.confirmed
                                  | (tracks.since_update <= c.iou_max_misses))).nonzero()[0]
        else:
            candidates = np.arange(len(tracks))
        high = self._match_iou(candidates, high, boxes, classes, c.max_iou_distance,
                               det_track, free, scores if c.fuse_score else None)
        if t.low is not None and has_low and len(tracks):
            low = ((scores < t.high) & (scores >= t.low)).nonzero()[0]
            if len(low):
                recent = (free & tracks.confirmed & (tracks.since_update == 1)).nonzero()[0]
                self._match_iou(recent, low, boxes, classes, c.low_max_iou_distance,
                                det_track, free)

        matched = (det_track >= 0).nonzero()[0]
        track_ids = np.full(m, -1, dtype=np.int64)
        confirmed = np.zeros(m, dtype=bool)
        if len(matched):
            rows = det_track[matched]
            mean = self._update_tracks(rows, xyah[matched], None if features is None else
                                       features[matched])
            self.estimates = matched, mean[:, :4]
            track_ids[matched] = tracks.ids[rows]
            confirmed[matched] = tracks.confirmed[rows]
        else:
            self.estimates = matched, _NO_STATES
        self._last_input = boxes
        if len(tracks):
            self._delete_lost()
        new = high[scores[high] >= t.new_track] if t.new_track > t.min else high
        if len(new):
            track_ids[new] = self._start_tracks(xyah[new], None if classes is None else
                                                classes[new],
                                                None if features is None else features[new])
            confirmed[new] = c.n_init <= 1
        return track_ids, confirmed

    # -- association rounds: each fills det_track / free and returns the detections left --------

    def _cascade(self, dets, xyah, features, classes, det_track, free):
        """Appearance matching of confirmed tracks, by time since their last match."""
        c, tracks = self.config, self.tracks
        confirmed = tracks.confirmed.nonzero()[0]
        if not len(confirmed) or not len(dets):
            return dets
        cost = self._gallery.distance(confirmed, features[dets])  # (Tc, M)
        if c.gating:
            maha = self.kf.gating_distance(tracks.mean[confirmed], tracks.cov[confirmed],
                                           xyah[dets])
            cost = gate_by_mahalanobis(cost, maha, c.gate_threshold)
        if classes is not None:
            cost = forbid_class_changes(cost, tracks.classes[confirmed], classes[dets])
        open_dets = np.ones(len(dets), dtype=bool)
        levels = tracks.since_update[confirmed]
        for level in np.unique(levels):
            rows = (levels == level).nonzero()[0]
            cols = open_dets.nonzero()[0]
            if not len(cols):
                break
            r, k = linear_assignment(cost[np.ix_(rows, cols)], c.max_cosine_distance)
            det_track[dets[cols[k]]] = confirmed[rows[r]]
            free[confirmed[rows[r]]] = False
            open_dets[cols[k]] = False
        return dets[open_dets]

    def _match_iou(self, rows, dets, boxes, classes, limit, det_track, free, scores=None):
        """IoU matching of tracks ``rows`` to detections ``dets``; returns the detections left.

        With ``scores`` (M,) the similarity is IoU times the detection score (ByteTrack's fusion).
        """
        if not len(rows) or not len(dets):
            return dets
        predicted = xyah_to_xyxy(self.tracks.mean[rows, :4])
        similarity = iou_matrix(predicted, boxes[dets])
        if scores is not None:
            similarity *= scores[dets]
        cost = 1.0 - similarity
        if classes is not None:
            cost = forbid_class_changes(cost, self.tracks.classes[rows], classes[dets])
        r, k = linear_assignment(cost, limit)
        det_track[dets[k]] = rows[r]
        free[rows[r]] = False
        left = np.ones(len(dets), dtype=bool)
        left[k] = False
        return dets[left]

    # -- track life ------------------------------------------------------------------------------

    def _update_tracks(self, rows, xyah, features):
        """Kalman-correct tracks ``rows`` (K,) with measurements (K, 4); count the hit.
        Returns their new means (K, 8)."""
        tracks = self.tracks
        mean, tracks.cov[rows] = self.kf.update(tracks.mean[rows], tracks.cov[rows], xyah)
        tracks.mean[rows] = mean
        hits = tracks.hits[rows] + 1
        tracks.hits[rows] = hits
        tracks.since_update[rows] = 0
        tracks.confirmed[rows] |= hits >= self.config.n_init
        if self.use_appearance:
            self._gallery.update(rows, features)
        return mean

    def _delete_lost(self):
        """Tentative tracks go at their first miss, confirmed ones after ``max_age`` misses."""
        tracks = self.tracks
        kept = tracks.since_update <= tracks.confirmed * self.config.max_age
        if not kept.all():
            tracks.keep(kept)

    def _start_tracks(self, xyah, classes, features):
        """Start one track per measurement (K, 4); returns their ids (K,)."""
        n = len(xyah)
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        mean, cov = self.kf.initiate(xyah)
        classes = np.zeros(n, dtype=np.int64) if classes is None else classes
        self.tracks.add(ids, mean, cov, classes, confirmed=self.config.n_init <= 1,
                        features=features)
        return ids

