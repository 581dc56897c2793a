"""The ``roadtrack`` command line: thin click commands, one library call each.

The modules that load torch, OpenCV or matplotlib are imported inside the commands that need
them (the only imports inside functions here), so that ``track``, ``eval`` and ``validate`` start
fast and never load torch. A :class:`~roadtrack.errors.UserError` ends as one line on stderr
and exit code 2.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import warnings
from pathlib import Path

import click
from click.core import ParameterSource

from . import __version__
from .batch import EXIT_SOME_FAILED, failure_table
from .engine.config import load_run_config
from .errors import InputWarning, NotRecorded, OutputInUse, UserError
from .eval import mot
from .eval.road import evaluate_road, format_report, to_json
from .eval.validate import validate_file
from .events.submit import submit_run
from .io.annotation_cache import ENV as CACHE_ENV
from .io.annotations import load_annotation
from .io.atomic import write_json_atomic
from .io.names import read_video_list
from .io.runs import recorded_videos_dir
from .report import annotation_summary
from .tracking.config import load_config as load_tracker_config
from .tracking.run import track_path


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


class _Command(click.Command):
    """A command whose old spellings (:class:`_OldOption`, :class:`_OldArgument`) hand their
    values to the new options; giving both spellings is an error."""

    def parse_args(self, ctx, args):
        rest = super().parse_args(ctx, args)
        for old in ctx.meta.get(_OLD_USED, []):
            if ctx.get_parameter_source(old.target) is ParameterSource.COMMANDLINE:
                raise UserError(f"{old.old} is the old spelling of {old.new}: give only {old.new}")
            click.echo(f"roadtrack: warning: {old.old} is deprecated; use {old.new}", err=True)
        return rest


_Group.command_class = _Command
_OLD_USED = "roadtrack.old_spellings"


def _hand_over(ctx, param, value):
    """Callback of an old spelling: ``value`` becomes the value of the new option (through the
    default map, so that the new option checks and converts it)."""
    if value is None or value == ():
        return
    target = next(p for p in ctx.command.params if p.name == param.target)
    if target.multiple and not isinstance(value, tuple):
        value = (value,)
    ctx.default_map = {**(ctx.default_map or {}), param.target: value}
    ctx.meta.setdefault(_OLD_USED, []).append(param)


class _OldOption(click.Option):
    """A hidden, deprecated spelling ``old`` of the option ``new`` (parameter ``target``)."""

    def __init__(self, param_decls, new: str, target: str, **attrs):
        (old,) = param_decls
        self.old, self.new, self.target = old, new, target
        name = "old_" + old.lstrip("-").replace("-", "_")
        super().__init__([old, name], hidden=True, expose_value=False, callback=_hand_over,
                         **attrs)


class _OldArgument(click.Argument):
    """A deprecated positional ``metavar`` now given as the option ``new`` (parameter
    ``target``); left out of the usage line."""

    def __init__(self, param_decls, new: str, target: str, **attrs):
        (name,) = param_decls
        self.old, self.new, self.target = f"the positional {attrs['metavar']}", new, target
        super().__init__([f"old_{name}"], required=False, expose_value=False,
                         callback=_hand_over, **attrs)

    def get_usage_pieces(self, ctx):
        return []


def _old_option(old: str, new: str, target: str, **attrs):
    """Decorator: the hidden old spelling ``old`` of option ``new``."""
    return click.option(old, cls=_OldOption, new=new, target=target, **attrs)


def _old_argument(metavar: str, new: str, target: str, **attrs):
    """Decorator: the hidden old positional ``metavar``, now option ``new``."""
    return click.argument(metavar.lower(), cls=_OldArgument, new=new, target=target,
                          metavar=metavar, **attrs)


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


def _no_cache_option(command):
    """``--no-cache``: annotation files are read without their cache (ROADTRACK_NO_CACHE is set
    while the command runs, also for the processes it starts)."""
    def disable(ctx: click.Context, _param, value: bool) -> bool:
        if value:
            before = os.environ.get(CACHE_ENV)
            os.environ[CACHE_ENV] = "1"
            ctx.call_on_close(lambda: os.environ.pop(CACHE_ENV) if before is None
                              else os.environ.__setitem__(CACHE_ENV, before))
        return value

    return click.option("--no-cache", is_flag=True, expose_value=False, callback=disable,
                        help="Read the annotation file itself: neither read nor write its "
                             "cache of parsed arrays.")(command)


_CONFIG_HELP = "The run config (YAML)."
_VIDEOS_HELP = "Video files, frame folders, or a dataset root with videos/ or rgb-images/."
_VIDEO_HELP = ("Only this video (repeatable; a value may also be names joined by commas or a file "
               "with one name per line).")
_SPLIT_HELP = "Only videos of this split (e.g. val)."
_WEIGHTS_HELP = ("The detector: a training run folder (its model; the detect settings of --config "
                 "when given, else the run's), or a checkpoint file (needs --config, the config "
                 "it was trained with).")


def _video_names(values: tuple[str, ...]) -> list[str] | None:
    """The names of ``--video`` values (names, comma lists, list files); None for none given."""
    return [name for value in values for name in read_video_list(value)] or None


def _load_detector(weights: Path, config, config_path: Path | None, which: str | None = None):
    """The detector of ``--weights`` (a training run folder or a checkpoint) and ``--config``
    (``config``: parsed, or None)."""
    from .engine.detect import load_detector

    if not weights.exists():
        raise UserError("no such training run folder or checkpoint file (--weights)", weights)
    if weights.is_dir():
        return load_detector(run=weights, config=config, config_path=config_path, which=which)
    if which is not None:
        raise UserError("--checkpoint picks best or last in a training run folder; --weights is "
                        "a checkpoint file", weights)
    if config is None:
        raise UserError("a checkpoint file needs --config, the config it was trained with",
                        weights)
    return load_detector(weights=weights, config=config, config_path=config_path)


@main.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Dataset root to create (annotation JSON, videos/, rgb-images/).")
@click.option("--num-videos", "num_videos", default=24, show_default=True,
              type=click.IntRange(1, 10000), help="Number of videos.")
@_old_option("--videos", "--num-videos", "num_videos")
@click.option("--frames", "num_frames", default=100, show_default=True,
              type=click.IntRange(8, 100000), help="Frames per video.")
@click.option("--size", default="420x300", show_default=True, help="Frame size WxH.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--val-fraction", default=0.3, show_default=True, type=click.FloatRange(0, 1),
              help="Share of videos in the val split.")
@click.option("--no-frames", is_flag=True, help="Write videos/ only, no rgb-images/.")
@click.option("--camera", default="static", show_default=True,
              type=click.Choice(["static", "moving"]),
              help="moving: the ego car drives, stops, turns and changes lanes (AV actions "
                   "labelled per frame); the agents are those of the static scenes.")
def synth(out_dir, num_videos, num_frames, size, seed, val_fraction, no_frames, camera):
    """Write a synthetic ROAD++ dataset in the official layout."""
    from .synth.dataset import write_dataset

    width, height = _size(size)
    try:
        summary = write_dataset(out_dir, num_videos=num_videos, num_frames=num_frames,
                                width=width, height=height, seed=seed,
                                val_fraction=val_fraction, write_frames=not no_frames,
                                progress=True, camera=camera)
    except OutputInUse as err:
        raise UserError(f"{err}; choose another --out") from None
    click.echo(summary)


@main.command()
@_no_cache_option
@click.argument("annotation", type=click.Path(path_type=Path))
@click.option("--split", default=None, metavar="NAME", help="Only videos of this split.")
def info(annotation, split):
    """Summarise a ROAD/ROAD++ annotation file: videos per split, frames, boxes, tubes, classes."""
    click.echo(annotation_summary(load_annotation(annotation), split))


@main.command("train")
@_no_cache_option
@click.option("--config", required=True, metavar="CONFIG",
              type=click.Path(dir_okay=False, path_type=Path),
              help=_CONFIG_HELP)
@_old_argument("CONFIG", "--config", "config")
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
@click.option("--pretrained", default=None, metavar="FILE|WEIGHTS",
              help="Start the backbone from these weights (model.backbone.pretrained): a "
                   "PySlowFast .pyth/.pkl, pytorchvideo or roadtrack checkpoint, or for a "
                   "torchvision backbone a weights name (KINETICS400_V1) from torch's hub cache.")
def train_command(config, data_dir, run_dir, resume, max_minutes, procs, pretrained):
    """Train the detector of --config; under torchrun, on every process (DDP)."""
    from .engine.train import launch_train

    cfg = load_run_config(config)
    if pretrained:
        backbone = dataclasses.replace(cfg.model.backbone, pretrained=pretrained)
        cfg = cfg.replace(model=dataclasses.replace(cfg.model, backbone=backbone))
    data_dir = data_dir or (Path(cfg.data.root) if cfg.data.root else None)
    if data_dir is None:
        raise UserError("no dataset: pass --data DIR or set data.root", config)
    try:
        summary = launch_train(cfg, data_dir, run_dir, procs=procs, resume=resume,
                               max_minutes=max_minutes, config_path=config)
    except OutputInUse as err:
        raise UserError(f"{err}; pass --resume to continue it or choose another --out") from None
    if int(os.environ.get("RANK", "0")) == 0:
        val = ", ".join(f"{k} {v:.4g}" for k, v in summary.val.items())
        click.echo(f"trained {summary.steps} steps ({summary.epochs:.2f} epochs) in "
                   f"{summary.elapsed_s / 60:.1f} min, stopped by {summary.stopped_by}; "
                   f"train loss {summary.train_loss:.4g}{'; ' + val if val else ''}; "
                   f"run in {summary.run}")


@contextlib.contextmanager
def _warnings_as_lines():
    """Warnings (a gap in a frame folder, a skipped file) print at once, one line each."""
    def show(message, category, filename, lineno, file=None, line=None):
        click.echo(f"roadtrack: warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def _exit_if_failed(failures, main_rank: bool = True) -> None:
    """The closing table of the videos that failed and exit status 1 (none failed: nothing)."""
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
@click.option("--weights", required=True, metavar="RUN|CKPT", type=click.Path(path_type=Path),
              help=_WEIGHTS_HELP)
@_old_option("--run", "--weights", "weights")
@click.option("--config", "config_path", metavar="CONFIG",
              type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="The run config: the detect settings (and, for a checkpoint "
                                 "file, the model it was trained with).")
@click.option("--videos", required=True, metavar="DIR", type=click.Path(path_type=Path),
              help=_VIDEOS_HELP)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder for detections/<video>.npz.")
@click.option("--video", "names", multiple=True, metavar="NAME", help=_VIDEO_HELP)
@click.option("--checkpoint", "which", type=click.Choice(["best", "last"]), default=None,
              help="Which checkpoint of a training run folder (default detect.checkpoint).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--strict", is_flag=True, help=_STRICT_HELP)
def detect_command(weights, config_path, videos, out, names, which, device, strict):
    """Detect agents in every frame of every video; resumes by skipping finished videos."""
    from .engine import distributed
    from .engine.detect import detect_videos

    config = load_run_config(config_path) if config_path is not None else None
    detector = _load_detector(weights, config, config_path, which)
    try:
        with _warnings_as_lines():
            summary = detect_videos(detector, videos, out, names=_video_names(names),
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
              help="The tracker settings (not a run config): a preset (bytetrack, deepsort, "
                   "sort) or a tracker YAML file. [default: bytetrack]")
@click.option("--per-class/--any-class", "per_class", default=None,
              help="Keep each track to one agent class (config key per_class).")
@click.option("--frames", "frames", default=None, type=click.Path(path_type=Path),
              help="The sequence's images (a MOTChallenge img1/ folder), or a folder of "
                   "<seq>/img1/: camera-motion compensation (config key cmc).")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show a progress bar.")
def track(dets, out_dir, config, per_class, frames, progress):
    """Track detections with a DeepSORT-style tracker; write MOTChallenge text (and
    tracks/<video>.npz for a run folder)."""
    overrides = {} if per_class is None else {"per_class": per_class}
    cfg = load_tracker_config(config, **overrides)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = track_path(dets, out_dir, cfg, progress=progress, images=frames)
    for w in caught:
        click.echo(f"roadtrack: warning: {w.message}", err=True)
    if summary.sequences > 1:
        click.echo(summary.table())
    click.echo(f"{summary.line()} [{cfg.name}] -> {out_dir}")


@main.command("run")
@click.option("--config", required=True, metavar="CONFIG",
              type=click.Path(dir_okay=False, path_type=Path),
              help=_CONFIG_HELP)
@_old_argument("CONFIG", "--config", "config")
@click.option("--videos", required=True, metavar="DIR", type=click.Path(path_type=Path),
              help=_VIDEOS_HELP)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder: detections/, tracks/, events/, mot/, run.yaml.")
@click.option("--weights", required=True, metavar="RUN|CKPT", type=click.Path(path_type=Path),
              help=_WEIGHTS_HELP)
@click.option("--events-head", type=click.Path(path_type=Path), default=None,
              help="An event head (train-events output); without it tubes come from the "
                   "detector's probabilities.")
@click.option("--from", "from_stage", type=click.Choice(["detect", "track", "events"]),
              default=None, help="Redo this stage and the ones after it for every video.")
@click.option("--video", "names", multiple=True, metavar="NAME", help=_VIDEO_HELP)
@_old_option("--video-list", "--video", "names")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--strict", is_flag=True, help=_STRICT_HELP)
def run_command(config, videos, out_dir, weights, events_head, from_stage, names, device,
                strict):
    """Detect, track and find events in every video; each stage resumes per video."""
    from .engine import distributed
    from .pipeline import report_table, run_pipeline

    run_config = load_run_config(config)
    detector = _load_detector(weights, run_config, config)
    try:
        with _warnings_as_lines():
            reports, failures = run_pipeline(detector, videos, out_dir, run_config, events_head,
                                             from_stage, _video_names(names), device=device,
                                             config_path=config, strict=strict)
    except OutputInUse as err:
        raise UserError(f"{err}; use a new --out or --from detect to redo every stage") from None
    finally:
        distributed.teardown()
    click.echo(report_table(reports))
    click.echo(detector.note)
    click.echo(f"run folder: {out_dir}")
    _exit_if_failed(failures)


@main.command("train-events")
@_no_cache_option
@click.option("--config", required=True, metavar="CONFIG",
              type=click.Path(dir_okay=False, path_type=Path),
              help=_CONFIG_HELP)
@_old_argument("CONFIG", "--config", "config")
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="Dataset root (or annotation file) with the ground truth.")
@click.option("--run", "run_dir", required=True, metavar="RUN", type=click.Path(path_type=Path),
              help="Pipeline run folder with tracks/ of the training videos.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder for the event head (event_head.pt).")
def train_events(config, data, run_dir, out_dir):
    """Train the event head on tracked detections matched to the ground truth."""
    from .events.train import fit_event_head

    summary = fit_event_head(data, run_dir, out_dir, load_run_config(config).events)
    click.echo(f"event head: {summary['tracks']} tracks, {summary['frames']} matched frames, "
               f"loss {summary['first_loss']:.3f} -> {summary['last_loss']:.3f} in "
               f"{summary['seconds']:.0f} s; wrote {out_dir / 'event_head.pt'}")


@main.command()
@click.option("--run", "run_dir", required=True, metavar="RUN", type=click.Path(path_type=Path),
              help="Pipeline run folder (with events/).")
@_old_argument("RUN", "--run", "run_dir")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Submission pickle to write.")
@click.option("--video", "names", multiple=True, metavar="NAME", help=_VIDEO_HELP)
@_old_option("--videos", "--video", "names")
@click.option("--zip", "zipped", is_flag=True, help="Also write OUT.zip for upload.")
def submit(run_dir, out, names, zipped):
    """Write a run's events as a ROAD++ submission pickle (checked before it is written)."""
    path, submission = submit_run(run_dir, out, _video_names(names), zipped)
    counts = {t: sum(len(v) for v in submission[t].values()) for t in submission}
    click.echo(f"wrote {path}: {len(submission['agent'])} videos, " +
               ", ".join(f"{n} {t} tubes" for t, n in counts.items()))


@main.command()
@click.option("--run", "run_dir", required=True, metavar="RUN", type=click.Path(path_type=Path),
              help="Pipeline run folder (with tracks/ and events/).")
@_old_argument("RUN", "--run", "run_dir")
@click.option("--video", "name", required=True, metavar="NAME",
              help="The video to draw (its name).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="mp4 file to write.")
@click.option("--videos", "videos_dir", default=None, metavar="DIR",
              type=click.Path(path_type=Path),
              help="Where the video is (default: the folder the run was made from).")
def viz(run_dir, name, out, videos_dir):
    """Draw a run's tracks, ids and agent/action/location labels on a video."""
    from .io.video import discover_videos
    from .viz import render_run_video

    folder = videos_dir
    if folder is None:
        try:
            folder = recorded_videos_dir(run_dir)
        except NotRecorded as err:
            raise UserError(f"{err}; give --videos DIR") from None
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
@_no_cache_option
@click.option("--gt", "gt_root", type=click.Path(path_type=Path),
              help="MOTChallenge folder: <seq>/gt.txt or <seq>/gt/gt.txt.")
@click.option("--pred", "pred_root", type=click.Path(path_type=Path),
              help="Tracker output folder: <seq>.txt, or <seq>/<NAME> with --pred-name.")
@click.option("--video", "seqs", multiple=True, metavar="NAME",
              help="Only this sequence (repeatable; a value may also be names joined by commas "
                   "or a file with one name per line; default: all in --gt).")
@_old_option("--seqs", "--video", "seqs")
@click.option("--pred-name", default=None, help="File name of the predictions inside <seq>/.")
@click.option("--anno", type=click.Path(path_type=Path),
              help="ROAD/ROAD++ annotation file (with --run).")
@click.option("--run", "run_dir", metavar="RUN", type=click.Path(path_type=Path),
              help="Run folder whose tracks/<video>.npz are scored (with --anno).")
@click.option("--split", default=None, metavar="NAME",
              help="Only videos of this split (with --anno).")
@_old_option("--subset", "--split", "split")
@click.option("--iou", "iou_threshold", default=0.5, show_default=True,
              type=click.FloatRange(0, 1, min_open=True), help="IoU needed for a match.")
@click.option("--zero-based", is_flag=True,
              help="The --gt and --pred files number frames from 0 (default: from 1).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the metrics as JSON here.")
def eval_mot(gt_root, pred_root, seqs, pred_name, anno, run_dir, split, iou_threshold,
             zero_based, json_path):
    """CLEAR/identity metrics (motmetrics' rules) and HOTA/DetA/AssA (trackeval's), per sequence
    and overall: MOTChallenge folders (--gt/--pred) or a ROAD++ run (--anno/--run)."""
    if (gt_root is None) != (pred_root is None) or (anno is None) != (run_dir is None) \
            or (gt_root is None) == (anno is None):
        raise UserError("give either --gt and --pred, or --anno and --run")
    if zero_based and anno is not None:
        raise UserError("--zero-based is for --gt/--pred files")
    if seqs and anno is not None:
        raise UserError("--video is for --gt/--pred sequences; with --anno give --split")
    if split is not None and anno is None:
        raise UserError("--split is for --anno runs; with --gt/--pred give --video")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if anno is not None:
                if not run_dir.is_dir():
                    raise UserError("no such run folder", run_dir)
                subset = load_annotation(anno, splits=None if split is None else [split])
                result = mot.evaluate_road_tracks(subset, run_dir, split, iou_threshold)
            else:
                sequences = mot.motchallenge_sequences(
                    gt_root, pred_root, _video_names(seqs), pred_name, zero_based,
                    frame_hint="; --zero-based reads files counting from 0")
                result = mot.evaluate_sequences(sequences, iou_threshold)
        finally:  # warnings of the inputs are shown also when a later error ends the command
            for w in caught:
                if issubclass(w.category, UserWarning):  # ours, not libraries' deprecations
                    click.echo(f"roadtrack: warning: {w.message}", err=True)
    click.echo(mot.format_mot_report(result))
    if json_path is not None:
        write_json_atomic(json_path, result, indent=1)


@eval_group.command("road")
@_no_cache_option
@click.option("--anno", required=True, type=click.Path(path_type=Path),
              help="ROAD/ROAD++ annotation JSON.")
@click.option("--pred", type=click.Path(path_type=Path),
              help="Submission pickle (or zip): video-mAP.")
@click.option("--run", "run_dir", metavar="RUN", type=click.Path(path_type=Path),
              help="Pipeline run folder: detections/ for frame-mAP, events/ for video-mAP.")
@click.option("--frame-dets", type=click.Path(path_type=Path),
              help="Frame-level detections pickle in the official baseline's layout: frame-mAP.")
@click.option("--split", default=None, metavar="NAME", help=_SPLIT_HELP)
@_old_option("--subset", "--split", "split")
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
def eval_road(anno, pred, run_dir, frame_dets, split, thresholds, protocol, frame_top_k,
              frame_min_score, json_path, plots_dir):
    """Video-mAP (agent, action, loc, duplex, triplet) and frame-mAP@0.5 as the ROAD++
    challenge scores them, per class and overall, plus the challenge score. Scores whatever the
    official scorer scores (what `validate` lists become warnings); exit 2 when it would fail."""
    if run_dir is not None and (pred is not None or frame_dets is not None):
        raise UserError("--run brings its own tubes and detections: no --pred/--frame-dets")
    if pred is None and run_dir is None and frame_dets is None:
        raise UserError("give --pred SUBMISSION.pkl and/or --frame-dets DETS.pkl, or --run RUN")
    result = evaluate_road(anno, pred=pred, run=run_dir, frame_dets=frame_dets, subset=split,
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
@click.option("--video", "names", multiple=True, metavar="NAME",
              help="A video the submission must cover, in the ROAD++ label space (repeatable; a "
                   "value may also be names joined by commas or a file with one name per line).")
@_old_option("--videos", "--video", "names")
@click.option("--split", default=None, metavar="NAME",
              help="With --anno: only videos of this split.")
@_old_option("--subset", "--split", "split")
def validate(submission, anno, names, split):
    """Check a ROAD++ submission pickle (or zip) against every rule the official scorer relies
    on. Lists every problem (the scorer fails on it or mis-scores it) and exits 1 when there is
    any; warnings (scored, but odd) do not fail. Exit 2: unreadable or unsafe file."""
    if (anno is None) == (not names):
        raise UserError("give exactly one of --anno and --video")
    result = validate_file(submission, anno=anno, videos=_video_names(names), subset=split)
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
@click.option("--config", "config_path", default="synthetic_tiny", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Run config: a YAML file or a packaged config's name.")
def demo(out_dir, config_path):
    """The whole job on synthetic data: synthesise, train, run, submit, score, draw."""
    from .demo import run_demo

    if "OMP_NUM_THREADS" not in os.environ:  # on a small shared CPU one thread is far faster
        import torch
        torch.set_num_threads(1)
    click.echo(run_demo(out_dir, config_path))
