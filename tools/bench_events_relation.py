"""Cost of the event head's ACAR relation option (``events.relation: acar``) against none.

Builds both heads from a run config's events section (the option switched on and off, nothing
else changed), on random inputs of the head's shapes: a training step (forward, backward, AdamW)
on a batch of ``fit.batch_size`` windows of ``fit.window`` frames, and the inference forward of
one track of ``--frames`` frames. Every frame sees ``events.acar.actors`` other actors. Runs the
two alternately, ``--repeats`` times, and prints the medians and their ratio.

    OMP_NUM_THREADS=1 python tools/bench_events_relation.py [--config synthetic_tiny_acar]
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from roadtrack.engine.config import load_run_config
from roadtrack.events.config import EventsConfig
from roadtrack.events.head import EventHead
from roadtrack.events.relation import make_relation

FEATURES = 100  # about the tiny config's per-frame inputs without RoI features
SIZES = (10, 22, 16)  # agent, action, loc classes of the synthetic label space


def _inputs(config: EventsConfig, batch: int, frames: int, gen: torch.Generator):
    """(B, T, F) features and, with a relation, the other actors' arrays."""
    x = torch.randn(batch, frames, FEATURES, generator=gen)
    if config.relation == "none":
        return x, {}
    k = config.acar.actors
    corner = torch.rand(batch, frames, k + 1, 2, generator=gen) * 0.7
    return x, {"actors": torch.randn(batch, frames, k, FEATURES, generator=gen),
               "boxes": torch.cat([corner, corner + 0.2], dim=-1),
               "present": torch.ones(batch, frames, k + 1, dtype=torch.bool)}


def _timings(config: EventsConfig, frames: int, gen: torch.Generator) -> tuple[float, float]:
    """Seconds of one training step and of one track's inference forward."""
    h = config.head
    head = EventHead(FEATURES, *SIZES, hidden=h.hidden, layers=h.layers, kernel=h.kernel,
                     dropout=h.dropout, relation=make_relation(config, FEATURES))
    optim = torch.optim.AdamW(head.parameters())
    x, actors = _inputs(config, config.fit.batch_size, config.fit.window, gen)
    steps = []
    for _ in range(4):
        started = time.perf_counter()
        loss = sum(v.square().mean() for v in head(x, **actors).values())
        optim.zero_grad()
        loss.backward()
        optim.step()
        steps.append(time.perf_counter() - started)
    head.eval()
    x, actors = _inputs(config, 1, frames, gen)
    forwards = []
    with torch.no_grad():
        for _ in range(8):
            started = time.perf_counter()
            head(x, **actors)
            forwards.append(time.perf_counter() - started)
    return statistics.median(steps[1:]), statistics.median(forwards[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic_tiny_acar")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    acar = replace(load_run_config(args.config).events, relation="acar")
    plain = replace(acar, relation="none")
    gen = torch.Generator().manual_seed(0)
    results: dict[str, list[tuple[float, float]]] = {"none": [], "acar": []}
    for _ in range(args.repeats):
        for name, config in (("none", plain), ("acar", acar)):
            results[name].append(_timings(config, args.frames, gen))
    med = {k: [statistics.median(r[i] for r in v) for i in range(2)] for k, v in results.items()}
    print(f"{args.config}: batch {acar.fit.batch_size} x window {acar.fit.window}, "
          f"{args.frames}-frame track, acar {acar.acar}")
    for name, (step, forward) in med.items():
        print(f"  {name:5s} train step {step * 1000:8.1f} ms   forward per track "
              f"{forward * 1000:7.2f} ms")
    print(f"  acar/none: train step {med['acar'][0] / med['none'][0]:.1f}x, "
          f"forward {med['acar'][1] / med['none'][1]:.1f}x")


if __name__ == "__main__":
    main()
