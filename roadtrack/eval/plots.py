"""Precision-recall curves and per-class AP charts of ``eval road`` as PNG files (matplotlib)."""
from __future__ import annotations

from pathlib import Path

from ..io.atomic import atomic_path
from .ap import ClassResult

MAX_LEGEND = 12


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")


def plot_level(results: list[ClassResult], names: list[str], title: str, stem: Path) -> list[Path]:
    """``<stem>_pr.png`` (curves of classes with detections) and ``<stem>_ap.png`` (bar chart)."""
    plt = _pyplot()
    written = []
    fig, ax = plt.subplots(figsize=(7, 5))
    shown = [(n, r) for n, r in zip(names, results, strict=True) if r.num_detections]
    for name, r in shown:
        ax.plot([0.0, *r.recall], [1.0, *r.precision], lw=1,
                label=f"{name} ({r.ap:.1f})" if len(shown) <= MAX_LEGEND else None)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    if 0 < len(shown) <= MAX_LEGEND:
        ax.legend(fontsize=7, loc="lower left")
    path = stem.with_name(stem.name + "_pr.png")
    _save(fig, path)
    plt.close(fig)
    written.append(path)
    fig, ax = plt.subplots(figsize=(max(6, 0.22 * len(names) + 2), 4.5))
    ax.bar(range(len(names)), [r.ap for r in results], color="tab:blue")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.set(ylabel="AP (%)", ylim=(0, 100), title=title)
    path = stem.with_name(stem.name + "_ap.png")
    _save(fig, path)
    plt.close(fig)
    written.append(path)
    return written


def write_plots(result, out_dir: str | Path) -> list[Path]:
    """All plots of a :class:`~roadtrack.eval.road.RoadResult` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for level, results in result.frame.items():
        names = ["agent_ness"] if level == "agent_ness" else list(result.labels.names(level))
        written += plot_level(results, names, f"frame {level} @ IoU 0.5",
                              out_dir / f"frame_{level}")
    for label_type, per in result.video.items():
        names = list(result.labels.names(label_type))
        for threshold, results in per.items():
            written += plot_level(results, names, f"video {label_type} @ ST-IoU {threshold:g}",
                                  out_dir / f"video_{label_type}_{threshold:g}")
    return written
