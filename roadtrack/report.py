"""Plain-text tables for the terminal."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .labels import LABEL_TYPES


def table(rows: Sequence[Sequence], header: Sequence[str]) -> str:
    """Left-align text columns, right-align numbers; floats with 2 decimals."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return f"{v:.2f}"
        return str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(header)]
    numeric = [all(isinstance(r[i], (int, float, np.integer, np.floating)) for r in rows)
               for i in range(len(header))]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def annotation_summary(anno, split: str | None = None) -> str:
    """Videos per split, frames, boxes and tubes, then boxes and tubes per class of each type."""
    names = anno.split(split)
    videos = [anno.videos[n] for n in names]
    split_rows = []
    for s in anno.splits():
        vs = [v for v in videos if s in v.split_ids]
        if vs:
            split_rows.append([s, len(vs), sum(v.numf for v in vs),
                               sum(int(v.annotated.sum()) for v in vs),
                               sum(v.num_boxes for v in vs),
                               sum(len(v.uids) for v in vs)])
    parts = [f"{anno.path}: {anno.labels.dataset}, {len(videos)} videos",
             table(split_rows, ["split", "videos", "frames", "annotated", "boxes", "agents"])]
    for label_type in LABEL_TYPES:
        names_t = anno.labels.names(label_type)
        boxes = np.zeros(len(names_t), dtype=np.int64)
        tubes = np.zeros(len(names_t), dtype=np.int64)
        for v in videos:
            boxes += v.labels[label_type].sum(axis=0)
            for tube in v.tubes.get(label_type, []):
                tubes[tube.label] += 1
        rows = [[n, int(b), int(t)] for n, b, t in zip(names_t, boxes, tubes, strict=True)]
        parts.append(f"\n{label_type} ({len(names_t)} classes)")
        parts.append(table(rows, ["class", "boxes", "tubes"]))
    return "\n".join(parts)
