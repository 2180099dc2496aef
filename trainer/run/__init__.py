"""The training loop every method runs in: run directory, metrics, samples, checkpoints, resume,
stop on SIGTERM or Ctrl-C, stop on a non-finite loss, and torchrun (DDP) support.

One job per module, in the order a run meets them:

- :mod:`.setup`: device, threads, process group, run directory, method and datasets, resume,
  data loader; naming a new run folder and reading a run's settings (:func:`new_run_dir`,
  :func:`load_run_config`).
- :mod:`.step`: one training step and its non-finite / blow-up checks.
- :mod:`.periodic`: samples, metrics lines, status, periodic checkpoints, progress bar.
- :mod:`.finish`: the final checkpoint, export and status, or the status of a job that ended
  badly; :func:`export_run`.
- :mod:`.checkpoints`: writing, checking, loading and resuming from checkpoints.
- :mod:`.signals`: what SIGTERM / Ctrl-C do (:class:`StopRequested`).
- :mod:`.job`: the state they share (:class:`Outcome`, what :func:`train` returns).
- :mod:`.loop`: :func:`train` and :func:`resume`, which call the others.
"""
from trainer.errors import LossBlowUp, NonFiniteLoss
from trainer.run.checkpoints import (load_checkpoint, load_nets, newest_valid_checkpoint, resume_checkpoint,
                                     save_checkpoint)
from trainer.run.finish import export_run
from trainer.run.job import SAMPLE_COUNT, Outcome
from trainer.run.loop import resume, train
from trainer.run.setup import DatasetStatus, load_run_config, new_run_dir
from trainer.run.signals import StopRequested

__all__ = ["train", "resume", "export_run", "load_run_config", "new_run_dir", "save_checkpoint", "load_checkpoint",
           "load_nets", "resume_checkpoint", "newest_valid_checkpoint", "Outcome", "StopRequested", "SAMPLE_COUNT",
           "DatasetStatus", "NonFiniteLoss", "LossBlowUp"]
