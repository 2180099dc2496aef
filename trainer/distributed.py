"""``torchrun`` support: with WORLD_SIZE > 1 the process group is set up from the environment
(NCCL on CUDA, gloo otherwise), nets are wrapped in DistributedDataParallel, and only rank 0
writes the run directory."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


@dataclass
class World:
    """This process's place under torchrun: ``rank`` of ``world_size`` processes, ``local_rank``
    on its machine (its GPU's index). One process alone: rank 0 of 1."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_type: str) -> World:
    """The process group from torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR,
    MASTER_PORT): NCCL for ``device_type`` "cuda", gloo otherwise. Without WORLD_SIZE > 1, a
    world of one and nothing set up."""
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def wrap(net: torch.nn.Module, device: torch.device, world: World) -> torch.nn.Module:
    """``net`` in DistributedDataParallel when distributed and it has trainable parameters;
    otherwise ``net`` itself."""
    if not world.enabled or not any(p.requires_grad for p in net.parameters()):
        return net
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=ids)


def any_flag(world: World, device: torch.device, *flags: bool) -> list[bool]:
    """Element-wise OR of flags over all ranks (stop requests, non-finite losses), so that every
    rank leaves the loop at the same step."""
    if not world.enabled:
        return list(flags)
    t = torch.tensor([float(f) for f in flags], device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def any_rank(world: World, device: torch.device) -> Callable[[bool], bool]:
    """A method's ``any_rank`` under torchrun: one flag ORed over all ranks (each rank must call
    it at the same point), so that every rank raises together instead of leaving the others
    waiting in a collective."""
    return lambda flag: any_flag(world, device, flag)[0]


def sync_buffers(world: World, nets) -> None:
    """Give every rank rank 0's buffers (batch-norm running statistics), which DDP otherwise
    only broadcasts at the start of each forward pass."""
    if world.enabled:
        for net in nets:
            for buf in net.buffers():
                dist.broadcast(buf, 0)


def barrier(world: World) -> None:
    """Wait until every rank gets here (no-op alone)."""
    if world.enabled:
        dist.barrier()


def cleanup(world: World) -> None:
    """Destroy the process group (no-op alone)."""
    if world.enabled and dist.is_initialized():
        dist.destroy_process_group()
