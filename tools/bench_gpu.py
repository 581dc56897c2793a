"""Benchmark: the throughput figures of issue 16 in one call (GPU; small sizes on the CPU).

    PYTHONPATH=. python tools/bench_gpu.py                        # a GPU: full config, < 5 min
    OMP_NUM_THREADS=1 PYTHONPATH=. python tools/bench_gpu.py --device cpu   # tiny config, small
    OMP_NUM_THREADS=1 PYTHONPATH=. python tools/bench_gpu.py --device cpu --stub \\
        --config roadpp_stmixer_slowfast_r50 --rows detect,folder,decode    # detect's data path

Rows (--rows picks some): ``train`` the bare training step (forward, backward, AdamW; bf16
autocast on a GPU) plain and with channels_last_3d + fused AdamW, with peak memory per clip and
TFLOP/s (3 x the forward's FLOPs); ``cli`` ``roadtrack train``'s own loop on a synthetic set;
``infer`` the bare model's inference (fp16 weights on a GPU); ``detect`` ``roadtrack detect`` on
a synthetic 840x600 video; ``folder`` the same on a 1920x1280 JPEG frame folder; ``decode``
frames/s of one decoding worker, full and reduced JPEG decoding; ``gather`` the ring's clip
gather alone; ``val`` validation inside
``roadtrack train``; ``sample4d`` the decoder's sampling against the seed-literal version.
``--stub`` replaces the detector by a stub in the detect rows, leaving decoding, the frame ring,
the clip gather and the post-processing: the data path alone. On the CPU it then leaves out the
work a GPU run does on the device besides normalising frames: the gather's copy (the ``gather``
row times it) and the RoI pooling of the key frame's features.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from roadtrack.engine import detect as detect_stage
from roadtrack.engine import distributed as D
from roadtrack.engine.config import load_run_config
from roadtrack.engine.detect import LoadedDetector, detect_videos
from roadtrack.engine.frames import FrameRing
from roadtrack.engine.train import Trainer, amp_dtype, autocast, to_channels_last
from roadtrack.io.video import FrameFolder
from roadtrack.labels import roadpp
from roadtrack.models import build_detector, normalize_clip
from roadtrack.report import table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.bench_stm import STRIDES, make_inputs  # noqa: E402
from tools.bench_train import engine_rate, synth  # noqa: E402

ROWS = ("train", "cli", "infer", "detect", "folder", "decode", "gather", "val", "sample4d")


class StubDetector(nn.Module):
    """The detector's inference contract at no cost: fixed outputs (boxes, scores, classes,
    embeddings, key-frame features) of the right shapes; it reads one pixel of each clip."""

    def __init__(self, num_frames: int, size: tuple[int, int], queries: int = 100,
                 dim: int = 256, classes: tuple[int, int, int] = (10, 22, 16), batch: int = 8,
                 features: bool = True):
        super().__init__()
        self.num_frames, self.embed_dim = num_frames, dim
        self.labels_shape = dict(zip(("agent", "action", "loc"), classes, strict=True))
        g = torch.Generator().manual_seed(0)
        xy = torch.rand(batch, queries, 2, generator=g) * 0.8
        wh = torch.rand(batch, queries, 2, generator=g) * 0.13 + 0.02  # 2-15% of the frame
        self.register_buffer("boxes", torch.cat([xy, xy + wh], -1))
        self.register_buffer("scores", torch.rand(batch, queries, generator=g))
        for name, n in self.labels_shape.items():
            self.register_buffer(name, torch.rand(batch, queries, n, generator=g))
        self.register_buffer("embeddings", torch.randn(batch, queries, dim, generator=g))
        width, height = size
        self.fields = ["boxes", "embeddings", *self.labels_shape]
        if features:  # the key frame's features, for RoI pooling
            self.register_buffer("features", torch.randn(batch, dim, height // 4, width // 4,
                                                         generator=g))
            self.fields.append("features")

    def forward(self, clips: torch.Tensor) -> dict:
        B = clips.shape[0]
        touch = clips[:, :1, :1, :1, :1].float().sum() * 0  # the clip is read
        out = {k: getattr(self, k)[:B] for k in self.fields}
        out["scores"] = self.scores[:B] + touch
        out["feature_stride"] = 4
        return out


class HostOnlyRing(FrameRing):
    """The frame ring without the clip gather's copy (``--stub`` on the CPU): on a GPU the
    gather is a device copy; on the CPU it would be T float frames copied per key frame, which
    the data path measurement leaves out (the ``gather`` row times it)."""

    def gather(self, positions):
        if positions.max() >= self.pushed or positions.min() < self.pushed - self.capacity:
            raise ValueError("clip frames outside the ring")
        torch.from_numpy(positions % self.capacity)  # the index a gather takes
        B, T = positions.shape
        if self.channels_last:
            return self.slots[:T].unsqueeze(0).expand(B, -1, -1, -1, -1).permute(0, 4, 1, 2, 3)
        return self.slots[:, :T].unsqueeze(0).expand(B, -1, -1, -1, -1)


def gather_row(cfg, device, batch: int, steps: int) -> list:
    """Clips/s of the ring's gather alone, (B, 3, T, H, W) from T + B frames."""
    W, H = cfg.detect_size
    T = cfg.model.num_frames
    ring = FrameRing(T + batch, (W, H), device, torch.float16 if device.type == "cuda"
                     else torch.float32, normalize_clip)
    ring.push(np.zeros((T + batch, H, W, 3), np.uint8))
    positions = np.arange(batch)[:, None] + np.arange(T)[None]  # (B, T)
    seconds = timed_steps(lambda: ring.gather(positions), steps, device)
    return ["clip gather from the ring", batch / seconds, "clips/s",
            f"{T} frames of {W}x{H} per clip, {ring.slots.dtype}"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" \
        else float("nan")


def random_targets(batch: int, classes: dict, device) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(batch):
        xy = torch.rand(4, 2, generator=g) * 0.6
        t = {"boxes": torch.cat([xy, xy + 0.2 + 0.1 * torch.rand(4, 2, generator=g)], 1)}
        for name, n in classes.items():
            t[name] = (torch.rand(4, n, generator=g) > 0.8).float()
        out.append({k: v.to(device) for k, v in t.items()})
    return out


def forward_gflop(model: nn.Module, clips: torch.Tensor) -> float:
    """GFLOP of one clip's forward pass (torch's FLOP counter, convolutions and matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(clips[:1])
    return counter.get_total_flops() / 1e9


def timed_steps(step, steps: int, device) -> float:
    """Median seconds of ``steps`` calls after two warm-up calls."""
    for _ in range(2):
        step()
    times = []
    for _ in range(steps):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_rows(cfg, device, batch: int, steps: int, compile: bool) -> list[list]:
    """The bare training step, plain and with channels_last_3d + fused AdamW."""
    W, H = cfg.data.input_size
    clips = torch.randn(batch, 3, cfg.model.num_frames, H, W, device=device)
    torch.manual_seed(0)
    gflop = forward_gflop(build_detector(cfg.model).to(device), clips)
    return [train_row(cfg, device, clips, steps, fast, compile and fast, gflop)
            for fast in (False, True)]


def train_row(cfg, device, clips, steps: int, fast: bool, compile: bool, gflop: float) -> list:
    batch = len(clips)
    amp = amp_dtype(cfg.train.amp, device)
    torch.manual_seed(0)
    model = build_detector(cfg.model).to(device)
    if fast:
        to_channels_last(model.backbone)
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
    targets = random_targets(batch, model.labels_shape, device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=fast and device.type == "cuda")
    forward = torch.compile(model) if compile and device.type == "cuda" else model
    model.train()

    def step():
        with autocast(device, amp):
            loss = forward(clips, targets)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    peak_reset(device)
    seconds = timed_steps(step, steps, device)
    rate = batch / seconds
    name = "train step, bare" + (", channels_last + fused AdamW" if fast else "")
    peak = f"peak {peak_gib(device) / batch:.2f} GiB/clip, " if device.type == "cuda" else ""
    return [name, rate, "clips/s", f"{seconds * 1e3:.0f} ms/step, batch {batch}, {peak}"
            f"{3 * gflop * rate / 1e3:.3g} TFLOP/s ({gflop:.4g} GFLOP/clip fwd)"]


def infer_row(cfg, device, batch: int, steps: int, channels_last: bool) -> list:
    W, H = cfg.detect_size
    torch.manual_seed(0)
    model = build_detector(cfg.model).to(device).eval()
    half = device.type == "cuda"
    dtype = torch.float16 if half else torch.float32
    model.to(dtype)
    clips = torch.randn(batch, 3, cfg.model.num_frames, H, W, device=device, dtype=dtype)
    if channels_last:
        to_channels_last(model)
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        seconds = timed_steps(lambda: model(clips), steps, device)
    return ["inference, bare" + (" channels_last" if channels_last else ""), batch / seconds,
            "clips/s", f"batch {batch}, {'fp16' if half else 'fp32'}"]


def detector_for(cfg, device, stub: bool) -> LoadedDetector:
    """The config's detector (untrained) or, with ``stub``, the stub; on the CPU the stub hands
    out no features (RoI pooling, like the gather, is device work in a GPU run)."""
    if stub:
        model: nn.Module = StubDetector(cfg.model.num_frames, cfg.detect_size,
                                        cfg.model.decoder.num_queries, cfg.model.decoder.dim,
                                        batch=cfg.detect.batch_size,
                                        features=device.type == "cuda")
    else:
        torch.manual_seed(0)
        model = build_detector(cfg.model)
    return LoadedDetector(model.eval(), normalize_clip, cfg, roadpp().to_dict(),
                          Path("untrained.pt"), "bench")


def detect_row(detector, videos: Path, out: Path, name: str, device: str) -> list:
    """frames/s of ``roadtrack detect`` (the second of two runs: the first warms up), and
    frames per second of this process's CPU time (all threads: the figure of one core, which
    a machine busy with other work leaves steady)."""
    for attempt in ("warm", "timed"):
        cpu = time.process_time()
        summary = detect_videos(detector, videos, out / attempt, progress=False, device=device)
        cpu = time.process_time() - cpu
    w, h = detector.config.detect_size
    return [name, summary.fps, "frames/s",
            f"{summary.frames / cpu:.1f} frames per CPU s; {summary.frames} frames, input "
            f"{w}x{h}, batch {detector.config.detect.batch_size}"]


def decode_rows(folder: Path, size: tuple[int, int]) -> list[list]:
    """Frames/s of one thread decoding and resizing the frame folder, full and reduced."""
    from roadtrack.engine.frames import reduced_factor
    from roadtrack.engine.transforms import resize_frames

    source = FrameFolder(folder)
    factor = reduced_factor((source.info.width, source.info.height), size)
    rows = []
    for reduce in sorted({1, factor}):
        start, cpu = time.perf_counter(), time.process_time()
        n = 0
        for _, frame in source.frames(reduce=reduce):
            resize_frames(frame[None], size)
            n += 1
        rate = n / (time.perf_counter() - start)
        rows.append([f"JPEG decode + resize, 1 worker, 1/{reduce} decode", rate, "frames/s",
                     f"{n / (time.process_time() - cpu):.1f} frames per CPU s; "
                     f"{source.info.width}x{source.info.height} -> {size[0]}x{size[1]}"])
    return rows


def val_row(cfg, data: Path, run: Path, device) -> list:
    """Frames/s of the validation pass inside ``roadtrack train`` (loss and detections)."""
    trainer = Trainer(cfg, data, run, False, build_detector, normalize_clip, D.setup(str(device)),
                      False, None)
    trainer.run.mkdir(parents=True, exist_ok=True)
    trainer._validate(None)  # warm-up
    sync(device)
    start = time.perf_counter()
    trainer._validate(None)
    sync(device)
    frames = len(trainer.val_set)
    return ["validation in roadtrack train", frames / (time.perf_counter() - start), "frames/s",
            f"{frames} key frames, loss + detections + frame-mAP"]


def sample4d_rows(device, repeats: int, frames: int) -> list[list]:
    from roadtrack.models.stm import sample4d
    from tests.reference.stm import sample4d_ref

    values, pts = make_inputs(frames=frames, device=device)
    values_g = [v.clone().requires_grad_() for v in values]
    pts_g = pts.clone().requires_grad_()

    def call(fn, grad):
        def run():
            if grad:
                out = fn(pts_g, values_g, STRIDES, n_points=32)
                out = out[0] if isinstance(out, tuple) else out
                out.square().mean().backward()
            else:
                with torch.no_grad():
                    fn(pts, values, STRIDES, n_points=32)
        return run

    def variant(batched):
        return lambda *a, **k: sample4d(*a, **k, batched=batched)

    rows = []
    for grad in (False, True):
        seed = timed_steps(call(sample4d_ref, grad), repeats, device)
        for batched in (True, False):
            fast = timed_steps(call(variant(batched), grad), repeats, device)
            layout = "one read per level" if batched else "per-frame reads"
            rows.append([f"sample4d {'forward + backward' if grad else 'forward'}, {layout}",
                         seed / fast, "x seed", f"seed {seed * 1e3:.1f} ms, roadtrack "
                         f"{fast * 1e3:.1f} ms, B 2, 100 queries, 4 x 32 points, T {frames}"])
    return rows


def parse_size(text: str) -> list[int]:
    w, h = text.lower().split("x")
    return [int(w), int(h)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--config", default=None,
                        help="default: roadpp_stmixer_slowfast_r50 on a GPU, synthetic_tiny on "
                             "the CPU")
    parser.add_argument("--size", type=parse_size, default=None,
                        help="model input WxH (default: the config's)")
    parser.add_argument("--frames", type=int, default=None, help="clip length (config's)")
    parser.add_argument("--batch", type=int, default=None, help="training clips per step")
    parser.add_argument("--infer-batch", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per row")
    parser.add_argument("--video-frames", type=int, default=None,
                        help="frames of the synthetic detect video and frame folder")
    parser.add_argument("--video-size", type=parse_size, default=[840, 600])
    parser.add_argument("--folder-size", type=parse_size, default=[1920, 1280])
    parser.add_argument("--rows", default=",".join(ROWS), help=f"some of {','.join(ROWS)}")
    parser.add_argument("--stub", action="store_true",
                        help="a stub detector in the detect rows: the data path alone")
    parser.add_argument("--reduced-decode", action="store_true",
                        help="detect.reduced_decode: JPEG frames decoded at reduced scale")
    parser.add_argument("--channels-last", action="store_true",
                        help="detect and inference with channels_last_3d (GPU)")
    parser.add_argument("--norm", choices=["bn", "frozen_bn"], default=None,
                        help="the backbone's BatchNorm (config's): trainable or frozen (and "
                             "folded into the convolutions for detect)")
    parser.add_argument("--freeze-at", type=int, default=None,
                        help="freeze the stem and the first N backbone stages (-1: none)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the fast training step and detect (GPU)")
    args = parser.parse_args(argv)
    rows_wanted = set(args.rows.split(","))
    if not rows_wanted <= set(ROWS):
        parser.error(f"--rows: unknown {sorted(rows_wanted - set(ROWS))}")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    gpu = device.type == "cuda"
    cfg = load_run_config(args.config or ("roadpp_stmixer_slowfast_r50" if gpu
                                          else "synthetic_tiny"))
    if args.size:
        cfg = cfg.with_values("data", input_size=args.size).with_values("detect", input_size=[])
    if args.frames:
        cfg = cfg.with_values("model", num_frames=args.frames)
    if args.norm or args.freeze_at is not None:
        old = cfg.model.backbone
        backbone = dataclasses.replace(
            old, norm=args.norm or old.norm,
            freeze_at=old.freeze_at if args.freeze_at is None else args.freeze_at)
        cfg = cfg.replace(model=dataclasses.replace(cfg.model, backbone=backbone))
    batch = args.batch or (4 if gpu else 2)
    infer_batch = args.infer_batch or 8
    steps = args.steps or (10 if gpu else 3)
    video_frames = args.video_frames or (96 if gpu else 24)
    cfg = cfg.with_values("detect", batch_size=infer_batch, channels_last=args.channels_last,
                          compile=args.compile, half="auto", reduced_decode=args.reduced_decode)
    cfg = cfg.with_values("train", batch_size=batch, deterministic=False, val_map=True)
    W, H = cfg.data.input_size
    print(f"device {device}{' ' + torch.cuda.get_device_name(device) if gpu else ''}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; config "
          f"{args.config or ('roadpp_stmixer_slowfast_r50' if gpu else 'synthetic_tiny')}, "
          f"{cfg.model.num_frames} x {W}x{H}, backbone norm {cfg.model.backbone.norm_kind()}, "
          f"stages frozen {cfg.model.backbone.frozen_stages()}", flush=True)
    rows: list[list] = []

    def note(new: list[list]) -> None:
        for row in new:
            print(f"  {row[0]}: {row[1]:.2f} {row[2]} ({row[3]})", flush=True)
        rows.extend(new)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if "sample4d" in rows_wanted:
            note(sample4d_rows(device, max(steps, 3), frames=8))
        if "train" in rows_wanted:
            note(train_rows(cfg, device, batch, steps, args.compile))
        if "infer" in rows_wanted:
            note([infer_row(cfg, device, infer_batch, steps, False)])
            if gpu:
                note([infer_row(cfg, device, infer_batch, steps, True)])
        if "gather" in rows_wanted:
            note([gather_row(cfg, device, infer_batch, steps)])
        if rows_wanted & {"detect", "folder", "decode"}:
            detector = detector_for(cfg, device, args.stub)
            label = " (stub model)" if args.stub else ""
            if args.stub and not gpu:
                detect_stage.FrameRing = HostOnlyRing  # type: ignore[misc]
                label = " (stub model; no gather copy, no RoI pooling)"
            if "detect" in rows_wanted:
                video = tmp_path / "video"
                synth(video, "--num-videos", "1", "--frames", str(video_frames), "--size",
                      "x".join(map(str, args.video_size)), "--no-frames", "--val-fraction", "0")
                note([detect_row(detector, video / "videos", tmp_path / "dv",
                                 f"detect, {args.video_size[0]}x{args.video_size[1]} video"
                                 + label, str(device))])
            if rows_wanted & {"folder", "decode"}:
                folder = tmp_path / "folder"
                synth(folder, "--num-videos", "1", "--frames", str(video_frames), "--size",
                      "x".join(map(str, args.folder_size)), "--val-fraction", "0")
                images = folder / "rgb-images"
                if "folder" in rows_wanted:
                    note([detect_row(detector, images, tmp_path / "df",
                                     f"detect, {args.folder_size[0]}x{args.folder_size[1]} "
                                     f"JPEG folder" + label, str(device))])
                if "decode" in rows_wanted:
                    note(decode_rows(next(images.iterdir()), cfg.detect_size))
        if "cli" in rows_wanted or "val" in rows_wanted:
            data = tmp_path / "data"
            synth(data, "--num-videos", "3", "--frames", str(max(24, cfg.model.num_frames)),
                  "--size", f"{W}x{H}", "--val-fraction", "0.34")
            if "cli" in rows_wanted:
                workers = 8 if gpu else 0
                rate = engine_rate(cfg.with_values("data", workers=workers), data,
                                   tmp_path / "cli", max(4 * steps, 8), 1, batch)
                note([["roadtrack train loop", rate * batch, "clips/s",
                       f"{rate:.2f} steps/s, batch {batch}, {workers} loader workers"]])
            if "val" in rows_wanted:
                vcfg = cfg.with_values("data", workers=4 if gpu else 0)
                note([val_row(vcfg, data, tmp_path / "val", device)])
    print()
    print(table(rows, ["what", "figure", "unit", "settings"]))
    if not gpu:
        print("CPU run: the GPU figures are still to be taken with "
              "`python tools/bench_gpu.py` on a GPU")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
