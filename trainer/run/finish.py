"""How a job ends: finished or stopped (the final checkpoint, the exported model, the last status),
stopped while starting, interrupted, or failed (status "failed" with the message and traceback);
and exporting a run's generator as a model file."""
from __future__ import annotations

import traceback
from pathlib import Path

import torch

from trainer import distributed
from trainer.errors import CheckpointError, DiskFullError, NonFiniteLoss
from trainer.methods.base import Method
from trainer.modelfile import save_model
from trainer.registry import get_method
from trainer.rundir import RunDir
from trainer.run.checkpoints import kept, load_nets, newest_valid_checkpoint, save_checkpoint
from trainer.run.job import Job, Outcome
from trainer.run.setup import load_run_config
from trainer.run.signals import StopRequested, StopSignals


def resume_hint(rd: RunDir) -> str:
    """The command that continues the run."""
    return f"resume with: gan-trainer resume {rd.path}"


def finish(job: Job, state: str) -> Outcome:
    """End a job whose loop ended (``state`` "finished" or "stopped"): every rank takes rank 0's
    buffers; rank 0 writes a final checkpoint (unless the last step has one), exports the model
    when finished (``RUN_DIR/model.safetensors``), writes the last status and says it."""
    rd, step = job.rd, job.step
    distributed.sync_buffers(job.world, job.method.nets.values())
    if job.is_main:
        if job.last_checkpoint != step and step > 0:
            save_checkpoint(rd, job.method, step, job.cfg.train.keep_checkpoints, job.elapsed())
        if state == "finished":
            export_run(rd, method=job.method, elapsed=job.elapsed(), steps_done=step)
        message = (f"stopped at step {step}; {resume_hint(rd)}" if state == "stopped"
                   else f"finished {step} steps in {job.elapsed():.0f} s")
        rd.write_status(state=state, step=step, elapsed=job.elapsed(), message=message, eta_s=0)
        job.say(message)
    distributed.barrier(job.world)
    return Outcome(state, step, job.method)


def ended_badly(job: Job, stop: StopSignals, error: BaseException) -> Outcome | None:
    """Call while handling ``error``, which ended the job. A stop while starting (or an error the
    stop caused there, such as a process pool whose workers the same signal ended) ends it at once:
    status "stopped", and the Outcome is returned. Otherwise rank 0 records status "stopped" for
    an interrupt (the third signal: no final checkpoint) or "failed" with the message and the
    traceback's end, and None is returned: the caller re-raises."""
    rd, step, say = job.rd, job.step, job.say
    if isinstance(error, StopRequested) or (stop.requested and stop.starting and isinstance(error, Exception)):
        stop.starting = False
        message = (f"stopped while starting, at step {step}; {resume_hint(rd)}" if step else
                   f"stopped while starting, before any training; {resume_hint(rd)}")
        if job.is_main and rd.path.exists():
            final_status(rd, say, state="stopped", step=step, message=message, stage="stopped")
        say(message)
        return Outcome("stopped", step, None)
    if job.is_main and rd.path.exists():
        if isinstance(error, KeyboardInterrupt):
            final_status(rd, say, state="stopped", step=step,
                         message=f"interrupted: stopped at step {step} without a final checkpoint "
                                 f"({kept(rd)}); {resume_hint(rd)}")
        else:
            msg = str(error) if isinstance(error, (NonFiniteLoss, DiskFullError, CheckpointError)) \
                else f"{type(error).__name__}: {error}"
            final_status(rd, say, state="failed", step=step, message=msg,
                         traceback=traceback.format_exc()[-4000:])
    return None


def final_status(rd: RunDir, say, **fields) -> None:
    """The last status of a job that ends badly; a status that cannot be written (a full disk) is
    said instead of hiding the error that ended the job."""
    try:
        rd.write_status(**fields)
    except OSError as e:
        say(f"warning: could not write {rd.status_path} ({e})")


def export_run(rd: RunDir, out=None, method: Method | None = None, elapsed: float | None = None, dtype=None,
               steps_done: int | None = None, log=print) -> Path:
    """Export a run's generator (from ``method`` in memory, else its newest intact checkpoint) as a
    model file, by default ``RUN_DIR/model.safetensors``; ``dtype`` (float16, int8) shrinks its
    weights. The card records the steps done, the training seconds (``elapsed``) and the run's
    name. Returns the file's path. Raises FileNotFoundError when there is no intact checkpoint,
    ConfigError / CheckpointError / ModelFileError from reading the run."""
    if rd.log is None:
        rd = RunDir(rd.path, log=log)
    status = rd.read_status()
    if method is None:
        cfg = load_run_config(rd.path)
        found = newest_valid_checkpoint(rd, log)
        if found is None:
            raise FileNotFoundError(f"{rd.path}: no " + ("intact " if rd.checkpoints() else "")
                                    + "checkpoint to export yet")
        method = get_method(cfg.method)(cfg, torch.device("cpu"))
        load_nets(found[1], method)
        steps_done = found[0]
        elapsed = rd.checkpoint_meta(found[1]).get("elapsed")
        elapsed = elapsed if isinstance(elapsed, (int, float)) else None
    elif steps_done is None:
        steps_done = status.get("step", method.cfg.train.steps)
    tensors, card = method.export()
    card["training"]["steps_done"] = steps_done
    if elapsed is not None:
        card["training"]["seconds"] = round(elapsed, 1)
    card["training"]["run"] = rd.path.name
    return save_model(out or rd.model_path, tensors, card, dtype=dtype)
