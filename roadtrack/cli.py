"""The ``roadtrack`` command line: thin click commands, one library call each.

Heavy modules (torch above all) are imported inside the commands that need them, so the tracker
and the evaluators start fast. A :class:`~roadtrack.errors.UserError` ends as one line on stderr
and exit code 2.
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path

import click

from . import __version__
from .errors import InputWarning, UserError


class _Group(click.Group):
    """Lists commands in the order they were added (the pipeline's order)."""

    def list_commands(self, ctx):
        return list(self.commands)

    def invoke(self, ctx):
        with _input_warnings_as_lines():
            return self._invoke(ctx)

    def _invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as err:
            click.echo(f"roadtrack: error: {err}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("roadtrack: interrupted", err=True)
            ctx.exit(130)


@contextlib.contextmanager
def _input_warnings_as_lines():
    """Every :class:`InputWarning` printed when raised, as one ``roadtrack: warning:`` line."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", InputWarning)
        show = warnings.showwarning

        def show_warning(message, category, *args, **kwargs):
            if issubclass(category, InputWarning):
                click.echo(f"roadtrack: warning: {message}", err=True)
            else:
                show(message, category, *args, **kwargs)

        warnings.showwarning = show_warning
        yield


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
@click.option("--videos", "num_videos", default=24, show_default=True,
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
@click.option("--procs", type=click.IntRange(1), default=None,
              help="Train in this many local processes (DDP, one thread each on the CPU); "
                   "default train.procs. Ignored under torchrun.")
def train_command(config, data_dir, run_dir, resume, max_minutes, procs):
    """Train the detector of CONFIG; under torchrun, on every process (DDP)."""
    from .config import load_config
    from .engine.settings import resolve_config
    from .engine.train import launch_train

    cfg = resolve_config(load_config(config), config)
    data_dir = data_dir or (Path(cfg.data.root) if cfg.data.root else None)
    if data_dir is None:
        raise UserError("no dataset: pass --data DIR or set data.root", config)
    summary = launch_train(cfg, data_dir, run_dir, procs=procs, resume=resume,
                           max_minutes=max_minutes, config_path=config)
    if int(os.environ.get("RANK", "0")) == 0:
        val = ", ".join(f"{k} {v:.4g}" for k, v in summary.val.items())
        click.echo(f"trained {summary.steps} steps ({summary.epochs:.2f} epochs) in "
                   f"{summary.elapsed_s / 60:.1f} min, stopped by {summary.stopped_by}; "
                   f"train loss {summary.train_loss:.4g}{'; ' + val if val else ''}; "
                   f"run in {summary.run}")


@contextlib.contextmanager
def _warnings_as_lines():
    """Warnings (a gap in a frame folder, a skipped file) print at once, one line each."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        click.echo(f"roadtrack: warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def _exit_if_failed(failures, main_rank: bool = True) -> None:
    """The closing table of the videos that failed and exit status 1 (none failed: nothing)."""
    from .batch import EXIT_SOME_FAILED, failure_table

    if not failures:
        return
    if main_rank:
        click.echo(f"roadtrack: {len(failures)} video(s) failed; the others are done, and a rerun "
                   "retries only these:", err=True)
        click.echo(failure_table(failures), err=True)
    sys.exit(EXIT_SOME_FAILED)


_STRICT_HELP = ("Stop at the first video that cannot be read (exit 2); by default such videos are "
                "listed at the end (exit 1) and the others are done.")


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
@click.option("--strict", is_flag=True, help=_STRICT_HELP)
def detect_command(run_dir, weights, config_path, videos, out, names, which, device, strict):
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
        with _warnings_as_lines():
            summary = detect_videos(detector, videos, out, names=list(names) or None,
                                    device=device, strict=strict)
    finally:
        distributed.teardown()
    main_rank = int(os.environ.get("RANK", "0")) == 0
    if main_rank:
        click.echo(summary.table())
    _exit_if_failed(summary.failures, main_rank)


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


@main.command("run")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--videos", required=True, type=click.Path(path_type=Path),
              help="Video files, frame folders, or a dataset root with videos/ or rgb-images/.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder: detections/, tracks/, events/, mot/, run.yaml.")
@click.option("--weights", required=True, type=click.Path(path_type=Path),
              help="The detector: a training run folder (its model; CONFIG's detect settings), "
                   "or a checkpoint trained with CONFIG.")
@click.option("--events-head", type=click.Path(path_type=Path), default=None,
              help="An event head (train-events output); without it tubes come from the "
                   "detector's probabilities.")
@click.option("--from", "from_stage", type=click.Choice(["detect", "track", "events"]),
              default=None, help="Redo this stage and the ones after it for every video.")
@click.option("--video-list", default=None,
              help="Only these videos: a file with one name per line, or names joined by commas.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--strict", is_flag=True, help=_STRICT_HELP)
def run_command(config, videos, out_dir, weights, events_head, from_stage, video_list, device,
                strict):
    """Detect, track and find events in every video; each stage resumes per video."""
    from .config import load_config
    from .engine import distributed
    from .engine.detect import load_detector
    from .io.names import read_video_list
    from .pipeline import report_table, run_pipeline

    run_config = load_config(config)
    if weights.is_dir():  # the run's model; CONFIG's detect settings
        detector = load_detector(run=weights, config=run_config, config_path=config)
    else:
        detector = load_detector(weights=weights, config=run_config, config_path=config)
    names = read_video_list(video_list) if video_list else None
    try:
        with _warnings_as_lines():
            reports, failures = run_pipeline(detector, videos, out_dir, run_config, events_head,
                                             from_stage, names, device=device,
                                             config_path=config, strict=strict)
    finally:
        distributed.teardown()
    click.echo(report_table(reports))
    click.echo(detector.note)
    click.echo(f"run folder: {out_dir}")
    _exit_if_failed(failures)


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
    from .events.config import events_config
    from .events.train import fit_event_head

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
    from .events.submit import submit_run
    from .io.names import read_video_list

    names = read_video_list(videos) if videos else None
    path, submission = submit_run(run_dir, out, names, zipped)
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
    from .io.runs import recorded_videos_dir
    from .io.video import discover_videos
    from .viz import render_run_video

    folder = videos_dir or recorded_videos_dir(run_dir)
    (source,) = discover_videos(folder, names=[name])
    frames = render_run_video(run_dir, source, out)
    click.echo(f"wrote {out}: {frames} frames")


@main.group("eval", cls=_Group)
def eval_group():
    """Score tracks (MOT metrics) and ROAD++ submissions or runs (frame-/video-mAP)."""


def _csv(value: str | None, name: str) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise click.BadParameter(f"{name} is empty")
    return items


def _thresholds(value: str) -> list[float]:
    try:
        out = [float(v) for v in _csv(value, "--iou")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers") from None
    if not all(0 < t <= 1 for t in out):
        raise click.BadParameter(f"{value!r}: thresholds must lie in (0, 1]")
    return out


@eval_group.command("mot")
@click.option("--gt", "gt_root", type=click.Path(path_type=Path),
              help="MOTChallenge folder: <seq>/gt.txt or <seq>/gt/gt.txt.")
@click.option("--pred", "pred_root", type=click.Path(path_type=Path),
              help="Tracker output folder: <seq>.txt, or <seq>/<NAME> with --pred-name.")
@click.option("--seqs", default=None, help="Comma-separated sequences (default: all in --gt).")
@click.option("--pred-name", default=None, help="File name of the predictions inside <seq>/.")
@click.option("--anno", type=click.Path(path_type=Path),
              help="ROAD/ROAD++ annotation file (with --run).")
@click.option("--run", "run_dir", type=click.Path(path_type=Path),
              help="Run folder whose tracks/<video>.npz are scored (with --anno).")
@click.option("--subset", default=None, help="Only videos of this split (with --anno).")
@click.option("--iou", "iou_threshold", default=0.5, show_default=True,
              type=click.FloatRange(0, 1, min_open=True), help="IoU needed for a match.")
@click.option("--zero-based", is_flag=True,
              help="The --gt and --pred files number frames from 0 (default: from 1).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the metrics as JSON here.")
def eval_mot(gt_root, pred_root, seqs, pred_name, anno, run_dir, subset, iou_threshold,
             zero_based, json_path):
    """CLEAR/identity metrics (motmetrics' rules) and HOTA/DetA/AssA (trackeval's), per sequence
    and overall: MOTChallenge folders (--gt/--pred) or a ROAD++ run (--anno/--run)."""
    import warnings

    from .eval import mot
    from .io.atomic import write_json_atomic

    if (gt_root is None) != (pred_root is None) or (anno is None) != (run_dir is None) \
            or (gt_root is None) == (anno is None):
        raise UserError("give either --gt and --pred, or --anno and --run")
    if zero_based and anno is not None:
        raise UserError("--zero-based is for --gt/--pred files")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if anno is not None:
                from .io.annotations import load_annotation

                if not run_dir.is_dir():
                    raise UserError("no such run folder", run_dir)
                result = mot.evaluate_road_tracks(load_annotation(anno), run_dir, subset,
                                                  iou_threshold)
            else:
                sequences = mot.motchallenge_sequences(gt_root, pred_root, _csv(seqs, "--seqs"),
                                                       pred_name, zero_based)
                result = mot.evaluate_sequences(sequences, iou_threshold)
        finally:  # warnings of the inputs are shown also when a later error ends the command
            for w in caught:
                if issubclass(w.category, UserWarning):  # ours, not libraries' deprecations
                    click.echo(f"roadtrack: warning: {w.message}", err=True)
    click.echo(mot.format_mot_report(result))
    if json_path is not None:
        write_json_atomic(json_path, result, indent=1)


@eval_group.command("road")
@click.option("--anno", required=True, type=click.Path(path_type=Path),
              help="ROAD/ROAD++ annotation JSON.")
@click.option("--pred", type=click.Path(path_type=Path),
              help="Submission pickle (or zip): video-mAP.")
@click.option("--run", "run_dir", type=click.Path(path_type=Path),
              help="Run folder: detections/ for frame-mAP, events/ for video-mAP.")
@click.option("--frame-dets", type=click.Path(path_type=Path),
              help="Frame-level detections pickle in the official baseline's layout: frame-mAP.")
@click.option("--subset", default=None, help="Only videos of this split (e.g. val).")
@click.option("--iou", "thresholds", default="0.1,0.2,0.5", show_default=True,
              help="ST-IoU thresholds of video-mAP.")
@click.option("--protocol", type=click.Choice(["official", "strict"]), default="official",
              show_default=True, help="official: the leaderboard's numbers, quirks included.")
@click.option("--frame-top-k", default=10, show_default=True, type=click.IntRange(0),
              help="With --run: detections kept per frame and class (0: all).")
@click.option("--frame-min-score", default=0.01, show_default=True,
              type=click.FloatRange(0, 1), help="With --run: lowest class score kept.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the results as JSON here.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write precision-recall curves and per-class AP charts (PNG) here.")
def eval_road(anno, pred, run_dir, frame_dets, subset, thresholds, protocol, frame_top_k,
              frame_min_score, json_path, plots_dir):
    """Video-mAP (agent, action, loc, duplex, triplet) and frame-mAP@0.5 as the ROAD++
    challenge scores them, per class and overall, plus the challenge score. Scores whatever the
    official scorer scores (what `validate` lists become warnings); exit 2 when it would fail."""
    from .eval.road import evaluate_road, format_report, to_json
    from .io.atomic import write_json_atomic

    result = evaluate_road(anno, pred=pred, run=run_dir, frame_dets=frame_dets, subset=subset,
                           thresholds=_thresholds(thresholds), protocol=protocol,
                           frame_top_k=frame_top_k, frame_min_score=frame_min_score)
    for line in result.warnings:
        click.echo(f"roadtrack: warning: {line}", err=True)
    click.echo(format_report(result))
    if json_path is not None:
        write_json_atomic(json_path, to_json(result), indent=1)
    if plots_dir is not None:
        from .eval.plots import write_plots

        written = write_plots(result, plots_dir)
        click.echo(f"{len(written)} plots in {plots_dir}")


@main.command()
@click.argument("submission", type=click.Path(path_type=Path))
@click.option("--anno", type=click.Path(path_type=Path),
              help="Annotation file whose videos (and label space) the submission must cover.")
@click.option("--videos", "videos_file", default=None,
              help="Videos the submission must cover (ROAD++ label space): a file with one "
                   "name per line, or names joined by commas.")
@click.option("--subset", default=None, help="With --anno: only videos of this split.")
def validate(submission, anno, videos_file, subset):
    """Check a ROAD++ submission pickle (or zip) against every rule the official scorer relies
    on. Lists every problem (the scorer fails on it or mis-scores it) and exits 1 when there is
    any; warnings (scored, but odd) do not fail. Exit 2: unreadable or unsafe file."""
    from .eval.validate import validate_file

    if (anno is None) == (videos_file is None):
        raise UserError("give exactly one of --anno and --videos")
    result = validate_file(submission, anno=anno, videos_file=videos_file, subset=subset)
    for line in result.warnings:
        click.echo(f"roadtrack: warning: {line}", err=True)
    for line in result.problems:
        click.echo(f"{submission}: {line}", err=True)
    if result.problems:
        click.echo(result.summary, err=True)
        sys.exit(1)
    click.echo(result.summary)


@main.command()
@click.option("--out", "out_dir", default=Path("demo-out"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder for everything the demo makes; a rerun skips finished steps.")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Run config (default: configs/synthetic_tiny.yaml).")
def demo(out_dir, config_path):
    """The whole job on synthetic data: synthesise, train, run, submit, score, draw."""
    from .demo import run_demo

    if "OMP_NUM_THREADS" not in os.environ:  # on a small shared CPU one thread is far faster
        import torch
        torch.set_num_threads(1)
    if config_path is None:
        config_path = Path(__file__).resolve().parents[1] / "configs" / "synthetic_tiny.yaml"
    click.echo(run_demo(out_dir, config_path))
