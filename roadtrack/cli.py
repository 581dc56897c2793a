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


@main.command("train-events")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="Dataset root (or annotation file) with the ground truth.")
@click.option("--run", "run_dir", required=True, type=click.Path(path_type=Path),
              help="Run folder with tracks/ of the training videos.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder for the event head (event_head.pt).")
def train_events(config, data, run_dir, out_dir):
    """Train the event head on tracked detections matched to the ground truth."""
    from .events.train import fit_event_head
    from .events.config import events_config

    summary = fit_event_head(data, run_dir, out_dir, events_config(config))
    click.echo(f"event head: {summary['tracks']} tracks, {summary['frames']} matched frames, "
               f"loss {summary['first_loss']:.3f} -> {summary['last_loss']:.3f} in "
               f"{summary['seconds']:.0f} s; wrote {out_dir / 'event_head.pt'}")


@main.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Submission pickle to write.")
@click.option("--videos", default=None,
              help="Videos to include: a file with one name per line, or names joined by commas.")
@click.option("--zip", "zipped", is_flag=True, help="Also write OUT.zip for upload.")
def submit(run_dir, out, videos, zipped):
    """Write a run's events as a ROAD++ submission pickle (checked before it is written)."""
    from .events.submit import build_submission, read_video_list, write_submission

    names = read_video_list(videos) if videos else None
    submission = build_submission(run_dir, names)
    path = write_submission(submission, out, zipped)
    counts = {t: sum(len(v) for v in submission[t].values()) for t in submission}
    click.echo(f"wrote {path}: {len(submission['agent'])} videos, " +
               ", ".join(f"{n} {t} tubes" for t, n in counts.items()))


@main.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--video", "name", required=True, help="Video name.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="mp4 file to write.")
@click.option("--videos", "videos_dir", default=None, type=click.Path(path_type=Path),
              help="Where the video is (default: the folder the run was made from).")
def viz(run_dir, name, out, videos_dir):
    """Draw a run's tracks, ids and agent/action/location labels on a video."""
    from .io.video import discover_videos
    from .pipeline import recorded_videos_dir
    from .viz import render_run_video

    folder = videos_dir or recorded_videos_dir(run_dir)
    (source,) = discover_videos(folder, names=[name])
    frames = render_run_video(run_dir, source, out)
    click.echo(f"wrote {out}: {frames} frames")


def run() -> None:  # pragma: no cover - console entry for ``python -m roadtrack``
    sys.exit(main())
