"""One training step and its checks: a loss that became NaN or infinite, or one that stayed finite
but grew by orders of magnitude (a diverging run), stops the job at once, on every rank at the same
step; a stop asked on any rank is agreed on here too."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trainer import distributed
from trainer.errors import LossBlowUp, NonFiniteLoss
from trainer.methods.base import BlowUpCheck
from trainer.run.checkpoints import kept
from trainer.run.job import Job
from trainer.run.signals import StopSignals

ADVICE = "Try a lower train.lr or precision=off."


@dataclass
class StepResult:
    """What one step gave: its ``losses`` as floats (in the method's order; some come every
    n_critic steps only), the ``learning_rates`` it used (``lr_NAME`` per optimiser), and ``stop``:
    a stop was asked on some rank, so every rank leaves the loop after this step."""
    losses: dict[str, float]
    learning_rates: dict[str, float]
    stop: bool


def run_step(job: Job, stop: StopSignals, blow_up: BlowUpCheck) -> StepResult:
    """One step of ``job.method`` on the next batch; ``job.step`` counts it.

    Raises :class:`NonFiniteLoss` when a loss is NaN or infinite (a non-finite total loss is
    caught by the method before the weights are updated), :class:`LossBlowUp` when ``blow_up``
    finds a diverging loss; either on every rank when it happened on one. The messages name the
    step, the loss and the checkpoint kept."""
    method, rd = job.method, job.rd
    lrs = method.learning_rates()  # the ones this step uses (train_step ends with the schedule's step)
    try:
        losses = method.train_step(next(job.batches))
    except NonFiniteLoss as e:
        raise NonFiniteLoss(f"loss became non-finite at step {job.step + 1}: {e}; stopped before "
                            f"updating the weights ({kept(rd)}). {ADVICE}") from None
    job.step += 1
    values = torch.stack([v.detach().float() for v in losses.values()]).tolist()
    bad = [k for k, v in zip(losses, values) if not np.isfinite(v)]
    grown = None if bad else blow_up(dict(zip(losses, values)))
    stop_now, any_bad = distributed.any_flag(job.world, job.device, stop.requested, bool(bad or grown))
    if any_bad:
        if grown:
            raise LossBlowUp(f"loss blew up at step {job.step}: {grown}; the run is diverging, stopped "
                             f"({kept(rd)}). Try a lower train.lr, or precision=off.")
        names = ", ".join(f"{k} = {losses[k].item()}" for k in bad) if bad else "on another rank"
        raise NonFiniteLoss(f"loss became non-finite at step {job.step}: {names}; stopped "
                            f"({kept(rd)}). {ADVICE}")
    return StepResult(dict(zip(losses, values)), lrs, stop_now)
