"""The ``roadtrack`` command line: thin click commands, one library call each.

Heavy modules (torch above all) are imported inside the commands that need them, so the tracker
and the evaluators start fast. A :class:`~roadtrack.errors.UserError` ends as one line on stderr
and exit code 2.
"""
from __future__ import annotations

import os
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


@main.command("train")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="Dataset root (annotation JSON with rgb-images/ or videos/); default data.root.")
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder: run.yaml, checkpoints/last.pt and best.pt, metrics.csv.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from checkpoints/last.pt.")
@click.option("--max-minutes", type=click.FloatRange(0, min_open=True), default=None,
              help="Stop (with a checkpoint) after this much training; default train."
                   "time_budget_minutes.")
def train_command(config, data_dir, run_dir, resume, max_minutes):
    """Train the detector of CONFIG; under torchrun, on every process (DDP)."""
    from .config import load_config
    from .engine import distributed
    from .engine.settings import resolve_config
    from .engine.train import train

    cfg = resolve_config(load_config(config), config)
    data_dir = data_dir or (Path(cfg.data.root) if cfg.data.root else None)
    if data_dir is None:
        raise UserError("no dataset: pass --data DIR or set data.root", config)
    try:
        summary = train(cfg, data_dir, run_dir, resume=resume, max_minutes=max_minutes,
                        config_path=config)
    finally:
        distributed.teardown()
    if int(os.environ.get("RANK", "0")) == 0:
        val = ", ".join(f"{k} {v:.4g}" for k, v in summary.val.items())
        click.echo(f"trained {summary.steps} steps ({summary.epochs:.2f} epochs) in "
                   f"{summary.elapsed_s / 60:.1f} min, stopped by {summary.stopped_by}; "
                   f"train loss {summary.train_loss:.4g}{'; ' + val if val else ''}; "
                   f"run in {summary.run}")


@main.command("detect")
@click.option("--run", "run_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A training run folder (its run.yaml and checkpoints).")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A checkpoint file (with --config).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="The config the checkpoint was trained with (with --weights).")
@click.option("--videos", required=True, type=click.Path(path_type=Path),
              help="Video files, frame folders, or a dataset root with videos/ or rgb-images/.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder for detections/<video>.npz.")
@click.option("--video", "names", multiple=True, help="Only this video (repeatable).")
@click.option("--checkpoint", "which", type=click.Choice(["best", "last"]), default=None,
              help="Which checkpoint of --run (default detect.checkpoint).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
def detect_command(run_dir, weights, config_path, videos, out, names, which, device):
    """Detect agents in every frame of every video; resumes by skipping finished videos."""
    from .config import load_config
    from .engine import distributed
    from .engine.detect import detect_videos, load_detector

    if (run_dir is None) == (weights is None) or (weights is not None) != (config_path is not None):
        raise UserError("give either --run RUN, or --weights CKPT together with --config CONFIG")
    config = load_config(config_path) if config_path is not None else None
    detector = load_detector(run=run_dir, weights=weights, config=config,
                             config_path=config_path, which=which)
    try:
        summary = detect_videos(detector, videos, out, names=list(names) or None, device=device)
    finally:
        distributed.teardown()
    if int(os.environ.get("RANK", "0")) == 0:
        click.echo(summary.table())


def run() -> None:  # pragma: no cover - console entry for ``python -m roadtrack``
    sys.exit(main())
