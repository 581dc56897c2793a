"""Processes, devices and sampling under ``torchrun`` (or alone).

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`setup` reads them, starts
the process group (NCCL on GPUs, Gloo on the CPU) and picks the device. Without them the same
code runs as one process of a world of one.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass(frozen=True)
class Dist:
    """Where this process stands: its rank among ``world`` processes and its device."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        """Rank 0 logs, writes checkpoints and prints."""
        return self.rank == 0


def pick_device(prefer: str = "auto", local_rank: int = 0) -> torch.device:
    """CUDA (the local rank's GPU) when present and not refused, else the CPU."""
    if prefer == "cpu" or (prefer == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def setup(prefer: str = "auto") -> Dist:
    """Join the process group that ``torchrun`` describes in the environment (if any)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(prefer, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank=rank, world=world, local_rank=local_rank, device=device)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_sum(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum of ``values`` over all processes (itself when alone)."""
    if not dist.is_initialized():
        return values
    home = values.device
    if dist.get_backend() == "nccl":  # NCCL reduces GPU tensors only
        values = values.to(torch.device("cuda", torch.cuda.current_device()))
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values.to(home)


def all_gather_objects(items: list) -> list:
    """Every process's ``items`` (picklable) joined in rank order (``items`` when alone)."""
    if not dist.is_initialized():
        return list(items)
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, list(items))
    return [item for part in parts for item in part]


def mean_over_ranks(value: float) -> float:
    """The mean of ``value`` over all processes (itself when alone)."""
    if not dist.is_initialized():
        return value
    return float(all_sum(torch.tensor([value], dtype=torch.float64))[0]) / dist.get_world_size()


def broadcast_value(value: float, device: torch.device) -> float:
    """Rank 0's ``value`` on every process (its clock, so that all stop at the same step and
    follow the same time-based schedule)."""
    if not dist.is_initialized():
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


class ShardedBatchSampler(Sampler):
    """Batches of ``(index, seed)`` pairs, this rank's share of a seeded per-epoch order.

    Training (``shuffle``): every epoch is a fresh permutation from (seed, epoch), wrapped so
    that every rank gets the same number of full batches; ``seed`` of each pair is
    ``(seed, epoch, position)``, which makes each sample's augmentation independent of workers
    and ranks. ``start`` skips the first batches of the epoch (exact resume).
    Evaluation (not ``shuffle``): indices ``rank::world`` in order, the last batch may be short.
    """

    def __init__(self, size: int, batch_size: int, rank: int = 0, world: int = 1,
                 shuffle: bool = True, seed: int = 0):
        self.size, self.batch_size = size, batch_size
        self.rank, self.world = rank, world
        self.shuffle, self.seed = shuffle, seed
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    @property
    def batches_per_epoch(self) -> int:
        if self.shuffle:
            return max(1, math.ceil(self.size / (self.world * self.batch_size)))
        return math.ceil(len(range(self.rank, self.size, self.world)) / self.batch_size)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.start)

    def __iter__(self):
        if not self.shuffle:
            mine = list(range(self.rank, self.size, self.world))
            for b in range(self.start, self.batches_per_epoch):
                chunk = mine[b * self.batch_size:(b + 1) * self.batch_size]
                yield [(i, (self.seed, self.epoch, i)) for i in chunk]
            return
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        total = self.batches_per_epoch * self.world * self.batch_size
        order = (order * math.ceil(total / max(1, self.size)))[:total]
        for b in range(self.start, self.batches_per_epoch):
            first = (b * self.world + self.rank) * self.batch_size
            positions = range(first, first + self.batch_size)
            yield [(order[p], (self.seed, self.epoch, p)) for p in positions]
