"""The loop itself: :func:`train` calls set-up, the steps with their periodic work, and the finish,
in that order; :func:`resume` continues a run."""
from __future__ import annotations

import copy

import torch

from trainer.config import Config, to_toml
from trainer.device import resolve_device
from trainer.methods.base import BlowUpCheck
from trainer.errors import CheckpointError, ConfigError, ModelFileError
from trainer.registry import config_from_dict, get_method
from trainer.rundir import RunDir, atomic_write, checkpoint_step, run_pid
from trainer.run.finish import ended_badly, finish
from trainer.run.job import Job, Outcome
from trainer.run.periodic import PeriodicWork
from trainer.run.setup import close_job, load_run_config, open_job, prepare
from trainer.run.signals import StopSignals
from trainer.run.step import run_step


def train(cfg: Config, run_dir, resume: bool = False, log=print, progress: bool = True) -> Outcome:
    """Run (or resume) a job in ``run_dir``; its state ends finished or stopped. ``log`` prints
    the job's messages (rank 0 only), ``progress`` shows the progress bar.
    Raises on failure after writing status ``failed`` with the message: NonFiniteLoss /
    LossBlowUp (a diverging run), DiskFullError, CheckpointError, ModelFileError (a checkpoint
    that does not fit the settings), ConfigError, or what the method raised.

    Stopping (SIGTERM, Ctrl-C): while starting up the job stops at once (a procedural dataset being
    made is abandoned, its worker processes ended) with status "stopped"; while training it ends
    the current step, saves a checkpoint and stops. A second signal only says it is saving; a
    third quits at once without the final checkpoint (the last one written stays).

    A new run (not ``resume``) in a folder that already holds one raises ConfigError before
    anything is written: its checkpoints, metrics and model stay as they were. A run that failed or
    was stopped before its first step (no checkpoint, no metrics: settings that did not fit) is
    nothing to keep, and a new run may take its folder."""
    rd = RunDir(run_dir)
    if not resume and rd.exists() and not (rd.read_status().get("state") in ("failed", "stopped")
                                            and not rd.checkpoints() and not rd.read_metrics()):
        raise ConfigError(f"{run_dir} already holds a run: continue it with gan-trainer resume {run_dir}, or "
                          f"start a new one in another folder (--run-dir)")
    job = open_job(cfg, run_dir, resume, log)
    stop = StopSignals(job.say)
    stop.install()
    try:
        prepare(job, stop)
        return finish(job, _train_steps(job, stop, progress))
    except BaseException as e:
        outcome = ended_badly(job, stop, e)
        if outcome is None:
            raise
        return outcome
    finally:
        close_job(job, stop)


def _train_steps(job: Job, stop: StopSignals, progress: bool) -> str:
    """Steps from ``job.step`` to ``train.steps``, each followed by its periodic work, until done
    or a stop is asked (on any rank; the stopping step gets no periodic checkpoint: the finish
    writes one). Returns "finished", or "stopped" when it stopped short of the last step."""
    steps = job.cfg.train.steps
    work = PeriodicWork(job, progress)
    blow_up = BlowUpCheck()
    job.start_clock()
    stop_now = stop.training_begins()  # asked for while starting, after the point of stopping at once
    while job.step < steps and not stop_now:
        result = run_step(job, stop, blow_up)
        stop_now = result.stop
        work.after_step(result)
        if stop_now:
            break
        work.checkpoint_if_due()
    work.close()
    return "stopped" if stop_now and job.step < steps else "finished"


def resume(run_dir, overrides: list[str] | None = None, log=print, progress=True) -> Outcome:
    """Continue a stopped, failed or finished run at its last checkpoint; ``--set train.steps=N``
    extends it. ``overrides`` are written into its ``config.toml``, and put back as they were when
    the job fails before a new checkpoint: with the run's status when they do not fit
    (ModelFileError naming the settings that changed the nets, CheckpointError, ConfigError;
    re-raised), else the status says the failure. Raises ConfigError, before anything is written,
    for a run whose job still runs, a ``train.steps`` below its newest checkpoint, or overrides
    whose nets or device fail to build (:func:`check_overrides`)."""
    rd = RunDir(run_dir)
    pid = run_pid(run_dir)
    if pid is not None:
        raise ConfigError(f"{run_dir} is training now (pid {pid}): stop that job first (Ctrl+C where it runs, "
                          f"or kill -INT {pid}; it checkpoints and stops)")
    old = load_run_config(run_dir)
    cfg = load_run_config(run_dir, overrides)
    at = checkpoint_step(run_dir)
    if cfg.train.steps < at:
        raise ConfigError(f"train.steps = {cfg.train.steps}: {run_dir} is already at step {at}; give a total "
                          f"of at least {at}")
    if overrides:
        check_overrides(old, cfg, overrides)
    before = rd.config_path.read_bytes()
    status = rd.status_path.read_bytes() if rd.status_path.is_file() else None
    if overrides:
        atomic_write(rd.config_path, to_toml(cfg.to_dict()))
    try:
        return train(cfg, run_dir, resume=True, log=log, progress=progress)
    except Exception as e:
        if checkpoint_step(run_dir) > at:
            raise  # it trained on with the overrides: they stay
        atomic_write(rd.config_path, before)  # nothing trained: the run stays as it was
        if overrides and status is not None and isinstance(e, ValueError):  # settings that do not fit
            atomic_write(rd.status_path, status)
        elif overrides and status is not None:  # the job failed (memory, disk): its status says why
            rd.write_status(total_steps=old.train.steps)
        changed = settings_that_change_nets(old, cfg) if isinstance(e, ModelFileError) else []
        if changed:
            raise ModelFileError(f"--set {', '.join(changed)} changed the nets: {e}") from None
        raise


def check_overrides(old: Config, new: Config, overrides: list[str]) -> None:
    """Build the nets and find the device of ``new`` (what a setting's own check may only do
    then) before a resume writes it; ConfigError naming the ``--set`` when they fail and ``old``'s
    do not. Nothing to build when only other train.* settings changed (steps, lr...)."""
    a, b = old.to_dict(), new.to_dict()
    if a.get("model") == b.get("model") and a.get("data") == b.get("data") and old.train.device == new.train.device:
        return
    for what in (lambda c: resolve_device(c.train.device), _net_shapes):
        try:
            what(new)
        except (ValueError, TypeError) as e:
            try:
                what(old)
            except Exception:  # noqa: BLE001 - the run fails on its own: its own error says why
                return
            raise ConfigError(f"--set {' '.join(overrides)}: {e}") from None


def settings_that_change_nets(old: Config, new: Config) -> list[str]:
    """``SECTION.KEY=NEW (the run has OLD)`` for each model.* and data.* setting that differs
    between two configs and, changed alone, gives the nets other weight names or shapes."""
    a, b = old.to_dict(), new.to_dict()
    try:
        shapes = _net_shapes(old)
    except Exception:  # noqa: BLE001 - the run's own nets do not build here: nothing to compare with
        return []
    out = []
    for section in ("model", "data"):
        x, y = a.get(section, {}), b.get(section, {})
        for key in sorted(set(x) | set(y)):
            if x.get(key) == y.get(key):
                continue
            one = copy.deepcopy(a)
            one.setdefault(section, {})[key] = y.get(key)
            try:
                differs = _net_shapes(config_from_dict(one)) != shapes
            except Exception:  # noqa: BLE001 - a setting that builds no nets on its own: not named
                differs = False
            if differs:
                out.append(f"{section}.{key}={_plain(y.get(key))} (the run has {_plain(x.get(key))})")
    return out


def _net_shapes(cfg: Config) -> dict:
    method = get_method(cfg.method)(cfg, torch.device("cpu"))
    return {f"{n}.{k}": tuple(v.shape) for n, net in method.nets.items() for k, v in net.state_dict().items()}


def _plain(v) -> str:
    """A setting's value as one types it after --set."""
    return str(v).lower() if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v)
