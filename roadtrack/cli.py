"""The ``roadtrack`` command line: thin click commands, one library call each.

Heavy modules (torch above all) are imported inside the commands that need them, so the tracker
and the evaluators start fast. A :class:`~roadtrack.errors.UserError` ends as one line on stderr
and exit code 2.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .errors import UserError


class _Group(click.Group):
    """Lists commands in the order they were added (the pipeline's order)."""

    def list_commands(self, ctx):
        return list(self.commands)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as err:
            click.echo(f"roadtrack: error: {err}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("roadtrack: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="roadtrack")
def main():
    """roadtrack: detect, track and classify road events in dash-cam video; write and score
    ROAD++ challenge submissions."""


def _size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT") from None
    if w < 64 or h < 64:
        raise click.BadParameter(f"{value!r}: width and height must be at least 64")
    return w, h


@main.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Dataset root to create (annotation JSON, videos/, rgb-images/).")
@click.option("--videos", "num_videos", default=10, show_default=True,
              type=click.IntRange(1, 10000), help="Number of videos.")
@click.option("--frames", "num_frames", default=100, show_default=True,
              type=click.IntRange(8, 100000), help="Frames per video.")
@click.option("--size", default="420x300", show_default=True, help="Frame size WxH.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--val-fraction", default=0.3, show_default=True, type=click.FloatRange(0, 1),
              help="Share of videos in the val split.")
@click.option("--no-frames", is_flag=True, help="Write videos/ only, no rgb-images/.")
def synth(out_dir, num_videos, num_frames, size, seed, val_fraction, no_frames):
    """Write a synthetic ROAD++ dataset in the official layout."""
    from .synth.dataset import write_dataset

    width, height = _size(size)
    summary = write_dataset(out_dir, num_videos=num_videos, num_frames=num_frames,
                            width=width, height=height, seed=seed, val_fraction=val_fraction,
                            write_frames=not no_frames, progress=True)
    click.echo(summary)


@main.command()
@click.argument("annotation", type=click.Path(path_type=Path))
@click.option("--split", default=None, help="Only videos of this split.")
def info(annotation, split):
    """Summarise a ROAD/ROAD++ annotation file: videos per split, frames, boxes, tubes, classes."""
    from .io.annotations import load_annotation
    from .report import annotation_summary

    click.echo(annotation_summary(load_annotation(annotation), split))


@main.command()
@click.option("--dets", "dets", required=True, type=click.Path(path_type=Path),
              help="MOTChallenge det.txt, a folder of <seq>/det/det.txt, or a run folder with "
                   "detections/<video>.npz.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for <seq>.txt in MOTChallenge format.")
@click.option("--config", "config", default=None,
              help="Tracker preset (bytetrack, deepsort, sort) or a YAML file. [default: bytetrack]")
@click.option("--per-class/--any-class", "per_class", default=None,
              help="Keep each track to one agent class (config key per_class).")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show a progress bar.")
def track(dets, out_dir, config, per_class, progress):
    """Track detections with a DeepSORT-style tracker; write MOTChallenge text (and
    tracks/<video>.npz for a run folder)."""
    import warnings

    from .tracking.config import load_config
    from .tracking.run import track_path

    overrides = {} if per_class is None else {"per_class": per_class}
    cfg = load_config(config, **overrides)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = track_path(dets, out_dir, cfg, progress=progress)
    for w in caught:
        click.echo(f"roadtrack: warning: {w.message}", err=True)
    if summary.sequences > 1:
        click.echo(summary.table())
    click.echo(f"{summary.line()} [{cfg.name}] -> {out_dir}")


def run() -> None:  # pragma: no cover - console entry for ``python -m roadtrack``
    sys.exit(main())
