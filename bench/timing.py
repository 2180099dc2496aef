"""What the timing benches share: variants timed interleaved round by round (a shared 2-core
machine is noisy, so every variant sees the same spells of load) and the line that says what a
figure was measured on."""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch


def sync(device: torch.device) -> None:
    """Wait for queued work on ``device`` (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timings:
    """Seconds per call, one figure per round and variant: ``wall`` (elapsed) and ``cpu`` (the
    process's CPU time, all threads). With one thread the CPU time is the work done whatever share
    of the cores the scheduler gave; it is no measure on CUDA, where the host waits."""
    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]


def time_interleaved(variants: dict[str, Callable[[], object]], rounds: int, steps: int,
                     device: torch.device) -> Timings:
    """Every round runs each variant ``steps`` times in turn."""
    out = Timings({name: [] for name in variants}, {name: [] for name in variants})
    for _ in range(rounds):
        for name, run in variants.items():
            sync(device)
            t, c = time.perf_counter(), time.process_time()
            for _ in range(steps):
                run()
            sync(device)
            out.wall[name].append((time.perf_counter() - t) / steps)
            out.cpu[name].append((time.process_time() - c) / steps)
    return out


def median(ts: list[float]) -> float:
    return statistics.median(ts)


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def machine_line(device: torch.device) -> str:
    """torch version, threads, cores, device and the load average (1, 5, 15 minutes)."""
    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, device {device}, "
            f"load average {load_average()}")
