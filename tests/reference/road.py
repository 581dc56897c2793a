"""The official ROAD++ protocol, transcribed literally (slow), and synthetic data to check
``roadtrack eval road --protocol official`` against it.

Synthetic ROAD++ annotations in the official JSON schema plus perturbed predictions (a submission
with tubes of all five label types and frame-level detections in the baseline's layout); the
reference scores them as ROADPP.md section 5 describes (per-class loops, python lists, a list
membership test per detection). Used by the tests (test_eval_road, test_fuzz_submissions) and by
``tools/bench_eval.py``.
"""
from __future__ import annotations

import json
import pickle
from importlib import resources

import numpy as np

TYPES = ["agent", "action", "loc", "duplex", "triplet"]
LEVELS = ["agent_ness"] + TYPES
EVAL_W, EVAL_H = 840, 600
SCALE = np.array([EVAL_W, EVAL_H, EVAL_W, EVAL_H], dtype=np.float64)


# ------------------------------------------------------------------ synthetic data

def label_lists() -> dict[str, list[str]]:
    """The ROAD++ used label lists (the package's copy of shared/data/roadpp_labels.json)."""
    text = resources.files("roadtrack.data").joinpath("roadpp_labels.json").read_text()
    data = json.loads(text)
    return {t: list(data[f"{t}_labels"]) for t in TYPES + ["av_action"]}


def make_annotation(num_videos: int, seed: int = 0, frames=(100, 200), objects=(15, 30),
                    splits=("val",), unannotated: float = 0.1, occluded: float = 0.05) -> dict:
    """An annotation dict in the official schema (ROADPP.md section 2).

    ``all_<type>_labels`` is a superset of the used list in another order; some boxes carry ids
    of unused classes; unannotated frames and occlusions leave gaps in the tubes; a few
    coordinates exceed 1 (up to 1.01) as in the real files.
    """
    rng = np.random.default_rng(seed)
    used = label_lists()
    all_labels = {}
    for t, names in used.items():
        extra = [f"Unused{t.title()}{i}" for i in range(3)]
        merged = list(names) + extra
        all_labels[t] = [merged[i] for i in rng.permutation(len(merged))]
    all_index = {t: {n: i for i, n in enumerate(all_labels[t])} for t in all_labels}
    unused_ids = {t: [all_index[t][f"Unused{t.title()}{i}"] for i in range(3)] for t in TYPES}
    triplets = [n.split("-") for n in used["triplet"]]
    by_agent = {}
    for trip in triplets:
        by_agent.setdefault(trip[0], []).append(trip)
    data = {"label_types": TYPES, "db": {}}
    for t in TYPES + ["av_action"]:
        data[f"{t}_labels"] = list(used[t])
        data[f"all_{t}_labels"] = all_labels[t]
    data["duplex_childs"] = [[0, 0] for _ in used["duplex"]]
    data["triplet_childs"] = [[0, 0, 0] for _ in used["triplet"]]
    data["all_input_labels"] = all_labels["agent"]
    for vi in range(num_videos):
        name = f"train_{vi:05d}"
        numf = int(rng.integers(frames[0], frames[1] + 1))
        annotated = rng.random(numf) >= unannotated
        frames_out = {str(n): {"annotated": int(annotated[n - 1]), "rgb_image_id": n,
                               "input_image_id": n, "width": 1920, "height": 1280,
                               "av_action_ids": [], "annos": {}}
                      for n in range(1, numf + 1)}
        tubes = {t: {} for t in TYPES}
        for oi in range(int(rng.integers(objects[0], objects[1] + 1))):
            uid = f"{vi:03d}{oi:03d}{int(rng.integers(1 << 20)):05x}"
            first = int(rng.integers(1, numf - 10))
            last = int(min(numf, first + rng.integers(10, numf)))
            trip = triplets[int(rng.integers(len(triplets)))]
            second = by_agent[trip[0]][int(rng.integers(len(by_agent[trip[0]])))]
            switch = int(rng.integers(first, last + 1))
            size = rng.uniform(0.04, 0.3, 2)
            start = rng.uniform(0, 1 - size)
            speed = rng.normal(0, 0.004, 2)
            for n in range(first, last + 1):
                if not annotated[n - 1] or rng.random() < occluded:
                    continue
                x1, y1 = np.clip(start + speed * (n - first), -0.005, 1 - size)
                box = [float(x1), float(y1), float(min(x1 + size[0], 1.01)),
                       float(min(y1 + size[1], 1.01))]
                agent, action, loc = trip if n < switch else second
                ids = {"agent": [all_index["agent"][agent]],
                       "action": [all_index["action"][action]],
                       "loc": [all_index["loc"][loc]],
                       "duplex": [all_index["duplex"][f"{agent}-{action}"]]
                       if f"{agent}-{action}" in all_index["duplex"] else [],
                       "triplet": [all_index["triplet"][f"{agent}-{action}-{loc}"]]}
                if rng.random() < 0.05:
                    t = TYPES[int(rng.integers(len(TYPES)))]
                    ids[t] = ids[t] + [unused_ids[t][int(rng.integers(3))]]
                key = f"b{int(rng.integers(1 << 40)):010x}"
                frames_out[str(n)]["annos"][key] = {
                    "box": box, "tube_uid": uid, **{f"{t}_ids": ids[t] for t in TYPES}}
                for t in TYPES:
                    for label in ids[t]:
                        tube = tubes[t].setdefault(f"{uid}-{t}-{label}",
                                                   {"label_id": label, "annos": {}})
                        tube["annos"][str(n)] = key
        for fr in frames_out.values():
            if not fr["annos"]:
                del fr["annos"]
        data["db"][name] = {"split_ids": [splits[vi % len(splits)]], "numf": numf,
                            "frames": frames_out,
                            **{f"{t}_tubes": tubes[t] for t in TYPES}, "av_action_tubes": {}}
    return data


def _gt_tubes_used(data: dict, video: str, t: str) -> list[tuple[int, list[int], np.ndarray]]:
    """(used label, frames, boxes in eval pixels) of a video's tubes of type ``t``."""
    used = data[f"{t}_labels"]
    names = data[f"all_{t}_labels"]
    db = data["db"][video]
    out = []
    for tube in db[f"{t}_tubes"].values():
        name = names[tube["label_id"]]
        if name not in used:
            continue
        frames = sorted(int(f) for f in tube["annos"])
        boxes = np.array([db["frames"][str(f)]["annos"][tube["annos"][str(f)]]["box"]
                          for f in frames], dtype=np.float64)
        out.append((used.index(name), frames, np.clip(boxes, 0, 1) * SCALE))
    return out


def _jitter_boxes(boxes: np.ndarray, rng, scale: float) -> np.ndarray:
    wh = np.maximum(boxes[:, 2:] - boxes[:, :2], 2.0)
    noisy = boxes + rng.normal(0, scale, boxes.shape) * np.tile(wh, 2)
    noisy[:, 0::2] = np.clip(noisy[:, 0::2], 0, EVAL_W)
    noisy[:, 1::2] = np.clip(noisy[:, 1::2], 0, EVAL_H)
    noisy[:, 2] = np.maximum(noisy[:, 2], np.minimum(noisy[:, 0] + 1, EVAL_W))
    noisy[:, 0] = np.minimum(noisy[:, 0], noisy[:, 2] - 1)
    noisy[:, 3] = np.maximum(noisy[:, 3], np.minimum(noisy[:, 1] + 1, EVAL_H))
    noisy[:, 1] = np.minimum(noisy[:, 1], noisy[:, 3] - 1)
    return noisy


def make_submission(data: dict, seed: int = 1, types=TYPES, keep: float = 0.85,
                    false_rate: float = 0.2) -> dict:
    """Perturbed tubes of every ground-truth tube (contiguous frames, shifted ends, noisy boxes,
    some wrong labels, 2-decimal scores so that ties occur) plus false tubes."""
    rng = np.random.default_rng(seed)
    out = {t: {} for t in types}
    for video in sorted(data["db"]):
        numf = data["db"][video]["numf"]
        for t in types:
            num_classes = len(data[f"{t}_labels"])
            tubes = []
            for label, frames, boxes in _gt_tubes_used(data, video, t):
                if rng.random() > keep:
                    continue
                first = int(np.clip(frames[0] + rng.integers(-3, 4), 1, numf))
                last = int(np.clip(frames[-1] + rng.integers(-3, 4), first, numf))
                span = np.arange(first, last + 1)
                inter = np.stack([np.interp(span, frames, boxes[:, k]) for k in range(4)], 1)
                if rng.random() < 0.1:
                    label = int(rng.integers(num_classes))
                score = round(float(rng.random()), 2)
                tubes.append({"label_id": label, "score": score, "frames": span,
                              "boxes": _jitter_boxes(inter, rng, 0.08),
                              "scores": np.full(len(span), score)})
            for _ in range(int(false_rate * len(tubes))):
                first = int(rng.integers(1, numf))
                span = np.arange(first, int(min(numf, first + rng.integers(5, 60))) + 1)
                w, h = rng.uniform(20, 200, 2)
                x, y = rng.uniform(0, EVAL_W - w), rng.uniform(0, EVAL_H - h)
                base = np.tile([x, y, x + w, y + h], (len(span), 1))
                tubes.append({"label_id": int(rng.integers(num_classes)),
                              "score": round(float(rng.random()) * 0.6, 2), "frames": span,
                              "boxes": _jitter_boxes(base, rng, 0.02),
                              "scores": np.zeros(len(span))})
            out[t][video] = tubes
    return out


def make_frame_dets(data: dict, seed: int = 2, top_k: int = 1, layout: str = "stacked",
                    false_boxes: int = 2) -> dict:
    """Frame-level detections in the baseline's layout for every annotated frame.

    A simulated detector finds every ground-truth box (jittered) plus ``false_boxes`` random
    ones, with an agentness and per-class probabilities; each class of each level keeps its
    ``top_k`` boxes by score. ``layout`` 'stacked' stores a frame's classes as one
    (C, k, 5) array, 'lists' as a list of per-class (k, 5) arrays (both index as
    ``dets[level][key][class_id]``).
    """
    rng = np.random.default_rng(seed)
    sizes = {t: len(data[f"{t}_labels"]) for t in TYPES}
    dup = [n.split("-") for n in data["duplex_labels"]]
    trip = [n.split("-") for n in data["triplet_labels"]]
    index = {t: {n: i for i, n in enumerate(data[f"{t}_labels"])} for t in TYPES}
    dup_children = np.array([[index["agent"][a], index["action"][b]] for a, b in dup])
    trip_children = np.array([[index["agent"][a], index["action"][b], index["loc"][c]]
                              for a, b, c in trip])
    mapping = {t: [index[t].get(n, -1) for n in data[f"all_{t}_labels"]] for t in TYPES}
    out = {level: {} for level in LEVELS}
    for video in sorted(data["db"]):
        frames = data["db"][video]["frames"]
        for n in range(1, data["db"][video]["numf"] + 1):
            frame = frames[str(n)]
            if frame["annotated"] <= 0:
                continue
            annos = list((frame.get("annos") or {}).values())
            m = len(annos) + false_boxes
            boxes = np.zeros((m, 4))
            probs = {t: rng.random((m, sizes[t])) * 0.3 for t in ("agent", "action", "loc")}
            for i, a in enumerate(annos):
                boxes[i] = np.clip(a["box"], 0, 1) * SCALE
                for t in ("agent", "action", "loc"):
                    for j in a[f"{t}_ids"]:
                        if mapping[t][j] >= 0:
                            probs[t][i, mapping[t][j]] = rng.uniform(0.3, 1.0)
            for i in range(len(annos), m):
                w, h = rng.uniform(20, 200, 2)
                x, y = rng.uniform(0, EVAL_W - w), rng.uniform(0, EVAL_H - h)
                boxes[i] = [x, y, x + w, y + h]
            boxes = _jitter_boxes(boxes, rng, 0.06)
            agentness = rng.uniform(0.2, 1.0, m)
            scores = {"agent_ness": agentness[:, None],
                      "agent": agentness[:, None] * probs["agent"],
                      "action": agentness[:, None] * probs["action"],
                      "loc": agentness[:, None] * probs["loc"],
                      "duplex": agentness[:, None] * probs["agent"][:, dup_children[:, 0]]
                      * probs["action"][:, dup_children[:, 1]],
                      "triplet": agentness[:, None] * probs["agent"][:, trip_children[:, 0]]
                      * probs["action"][:, trip_children[:, 1]]
                      * probs["loc"][:, trip_children[:, 2]]}
            key = f"{video}{n:05d}"
            k = min(top_k, m)
            for level, s in scores.items():  # s: (m, C)
                top = np.argsort(-s, axis=0, kind="stable")[:k].T  # (C, k)
                stacked = np.concatenate([boxes[top], np.take_along_axis(s.T, top, 1)[..., None]],
                                         axis=2)  # (C, k, 5)
                out[level][key] = stacked if layout == "stacked" else list(stacked)
    return out


# ------------------------------------------------------------------ reference (slow, literal)

def ref_iou(a, b, plus_one=False):
    """Plain (or +1 pixel) IoU of two boxes, python floats."""
    pad = 1.0 if plus_one else 0.0
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + pad)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + pad)
    inter = iw * ih
    area_a = max(0.0, a[2] - a[0] + pad) * max(0.0, a[3] - a[1] + pad)
    area_b = max(0.0, b[2] - b[0] + pad) * max(0.0, b[3] - b[1] + pad)
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def ref_ap(det_groups, det_boxes, det_scores, gt, num_positives, overlap, threshold):
    """The official AP: argsort of negated scores, greedy best remaining match, raw curve."""
    if len(det_scores) == 0:
        return 0.0
    remaining = {g: list(boxes) for g, boxes in gt.items()}
    order = np.argsort(-np.array(det_scores, dtype=np.float64))
    positives = max(1, num_positives)
    tp = fp = 0
    precision, recall = [1.0], [0.0]
    for i in order:
        candidates = remaining.get(det_groups[i], [])
        if candidates:
            ious = [overlap(det_boxes[i], g) for g in candidates]
            best = int(np.argmax(ious))
            if ious[best] >= threshold:
                tp += 1
                del candidates[best]
            else:
                fp += 1
        else:
            fp += 1
        precision.append(tp / (tp + fp))
        recall.append(tp / positives)
    area = 0.0
    for k in range(1, len(precision)):
        area += (recall[k] - recall[k - 1]) * (precision[k] + precision[k - 1]) / 2.0
    return area * 100.0


def ref_st_iou(det_frames, det_boxes, gt_frames, gt_boxes):
    """ST-IoU as the official code computes it (quirks included)."""
    start = max(det_frames[0], gt_frames[0])
    end = min(det_frames[-1], gt_frames[-1])
    if end < start:
        return 0.0
    temporal = (end - start + 1) / (max(det_frames[-1], gt_frames[-1])
                                    - min(det_frames[0], gt_frames[0]) + 1)
    if start not in gt_frames or end not in gt_frames:
        return 0.0
    if start not in det_frames or end not in det_frames:
        return 0.0
    gt_part = gt_boxes[gt_frames.index(start):gt_frames.index(end) + 1]
    det_part = det_boxes[det_frames.index(start):det_frames.index(end) + 1]
    if len(det_part) > len(gt_part):
        det_part = det_part[:len(gt_part)]
    gt_part = gt_part[:len(det_part)]
    ious = [ref_iou(d, g, plus_one=True) for d, g in zip(det_part, gt_part, strict=True)]
    return temporal * float(np.mean(ious))


def reference_evaluate(anno_path, sub_path=None, dets_path=None, subset=None,
                       thresholds=(0.1, 0.2, 0.5)) -> dict:
    """The whole official protocol, literally: returns the same JSON layout as roadtrack."""
    with open(anno_path) as f:
        data = json.load(f)
    videos = sorted(v for v in data["db"]
                    if subset is None or subset in data["db"][v]["split_ids"])
    result = {"video_map": {}, "frame_map": {}}
    if sub_path is not None:
        with open(sub_path, "rb") as f:
            submission = pickle.load(f)
        for t in TYPES:
            if t not in submission:
                continue
            result["video_map"][t] = {}
            num_classes = len(data[f"{t}_labels"])
            gt_all = {v: _gt_tubes_used(data, v, t) for v in videos}
            for threshold in thresholds:
                aps = []
                for c in range(num_classes):
                    gt, npos = {}, 0
                    for v in videos:
                        gt[v] = [(list(fr), [list(b) for b in bx])
                                 for label, fr, bx in gt_all[v] if label == c]
                        npos += len(gt[v])
                    groups, boxes, scores = [], [], []
                    for v in videos:
                        for tube in submission[t][v]:
                            if tube["label_id"] == c:  # the official test: 1.0 is 1, 1.5 none
                                groups.append(v)
                                boxes.append(([int(x) for x in tube["frames"]],
                                              [list(map(float, b)) for b in tube["boxes"]]))
                                scores.append(float(tube["score"]))

                    def overlap(det, g):
                        return ref_st_iou(det[0], det[1], g[0], g[1])

                    aps.append(ref_ap(groups, boxes, scores, gt, npos, overlap, threshold))
                result["video_map"][t][f"{threshold:g}"] = {"mAP": float(np.mean(aps)),
                                                            "ap": aps}
    if dets_path is not None:
        with open(dets_path, "rb") as f:
            dets = pickle.load(f)
        frame_ids = []
        gt_frames = {}
        for v in videos:
            db = data["db"][v]
            for fid, frame in db["frames"].items():
                if frame["annotated"] > 0:
                    key = f"{v}{int(fid):05d}"
                    frame_ids.append(key)
                    gt_frames[key] = list((frame.get("annos") or {}).values())
        for level in LEVELS:
            if level not in dets:
                continue
            t = "agent" if level == "agent_ness" else level
            used, names = data[f"{t}_labels"], data[f"all_{t}_labels"]
            num_classes = 1 if level == "agent_ness" else len(used)
            aps = []
            for c in range(num_classes):
                gt, npos = {}, 0
                for key in frame_ids:
                    gt[key] = []
                    for anno in gt_frames[key]:
                        labels = [used.index(names[i]) for i in anno[f"{t}_ids"]
                                  if names[i] in used]
                        if level == "agent_ness" or c in labels:
                            box = [min(max(x, 0.0), 1.0) for x in anno["box"]]
                            gt[key].append([box[0] * EVAL_W, box[1] * EVAL_H,
                                            box[2] * EVAL_W, box[3] * EVAL_H])
                            npos += 1
                groups, boxes, scores = [], [], []
                for key in dets[level]:
                    for row in dets[level][key][c]:
                        if key in frame_ids:  # the official list membership test
                            groups.append(key)
                            boxes.append([float(x) for x in row[:4]])
                            scores.append(float(row[4]))
                aps.append(ref_ap(groups, boxes, scores, gt, npos, ref_iou, 0.5))
            result["frame_map"][level] = {"mAP": float(np.mean(aps)), "ap": aps}
    return result


def max_difference(ours: dict, ref: dict) -> float:
    """Largest absolute difference between two results' mAPs and APs (inf when keys differ)."""
    worst = 0.0
    for part in ("video_map", "frame_map"):
        if set(ours[part]) != set(ref[part]):
            return float("inf")
        for key, value in ref[part].items():
            items = value.items() if part == "video_map" else [(None, value)]
            for th, entry in items:
                mine = ours[part][key][th] if th is not None else ours[part][key]
                worst = max(worst, abs(mine["mAP"] - entry["mAP"]),
                            float(np.max(np.abs(np.subtract(mine["ap"], entry["ap"])))))
    return worst
