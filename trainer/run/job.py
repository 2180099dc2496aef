"""What one job holds while it runs (shared by set-up, step, periodic work and finish), and what
:func:`trainer.run.train` returns."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from trainer.config import Config
from trainer.distributed import World
from trainer.methods.base import Method
from trainer.rundir import RunDir

SAMPLE_COUNT = 4  # rows of the sample grid: the fixed preview batch's size


@dataclass
class Outcome:
    """What :func:`trainer.run.train` returns: the final ``state`` ("finished" or "stopped"), the
    ``step`` reached and the ``method`` (its nets; None when it stopped before they were made)."""
    state: str
    step: int
    method: Method | None


@dataclass
class Job:
    """One run of the loop in ``rd`` on ``device``: its settings, where it stands and what set-up
    made. ``say`` is the log on rank 0, a no-op on the other ranks; ``step`` counts the training
    steps done (the checkpoint's when resuming); times are in seconds."""
    cfg: Config
    rd: RunDir
    world: World
    device: torch.device
    say: Callable[..., object]
    resume: bool
    threads_before: int  # torch's intra-op threads before the job set train.threads; restored at the end
    step: int = 0
    elapsed_before: float = 0.0  # training seconds of the run before this job (from the checkpoint)
    last_checkpoint: int = -1  # the step of the newest checkpoint this job wrote or resumed from
    method: Method | None = None
    amp_dtype: torch.dtype | None = None
    dataset: object = None
    preview: dict | None = None  # the fixed batch the samples are drawn from
    batches: Iterator | None = None
    t_start: float | None = None  # time.perf_counter() when training began

    @property
    def is_main(self) -> bool:
        """Rank 0, the only one that writes the run directory."""
        return self.world.is_main

    def start_clock(self) -> None:
        """Training begins now (for :meth:`elapsed`)."""
        self.t_start = time.perf_counter()

    def elapsed(self) -> float:
        """The run's training time in seconds: before this job, plus since :meth:`start_clock`."""
        return self.elapsed_before + time.perf_counter() - self.t_start
