"""Setting a job up: the device, threads and process group (torchrun), the run directory, the
method and its datasets (a procedural dataset's making reported in the status), the resume from
the newest usable checkpoint, the DDP-wrapped nets and the data loader. Also naming a new run
folder and reading a run's settings back."""
from __future__ import annotations

import copy
import os
import signal
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader

from trainer import distributed
from trainer.config import Config, absolute_paths, apply_overrides, read_toml, to_toml
from trainer.data import synth
from trainer.data.sampler import StepSampler
from trainer.device import describe, resolve_device, resolve_precision, use_channels_last
from trainer.errors import ConfigError
from trainer.registry import config_from_dict, get_method
from trainer.rundir import RunDir, atomic_write
from trainer.run.checkpoints import load_model_nets, resume_checkpoint
from trainer.run.job import SAMPLE_COUNT, Job
from trainer.run.signals import StopRequested, StopSignals


# -- the run folder and its settings

def new_run_dir(cfg: Config, runs_root="runs", name: str | None = None) -> Path:
    """A run folder under ``runs_root`` that does not exist yet: ``name``, or the preset's name
    (else the method's) and the time, with ``-2``, ``-3``... added while taken. Nothing is made."""
    base = name or f"{Path(cfg.preset).stem or cfg.method}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = Path(runs_root) / base
    k = 1
    while path.exists():
        k += 1
        path = Path(runs_root) / f"{base}-{k}"
    return path


def load_run_config(run_dir, overrides: list[str] | None = None) -> Config:
    """The run's ``config.toml`` (with ``overrides``, ``KEY=VALUE`` as ``--set`` takes them).
    Raises FileNotFoundError for a folder that is no run, ConfigError naming the file (and the
    line, for bytes that are not UTF-8) for settings that do not read or check."""
    rd = RunDir(run_dir)
    if not rd.exists():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no config.toml)")
    try:
        raw = read_toml(rd.config_path)
    except UnicodeDecodeError as e:
        line = rd.config_path.read_bytes()[:e.start].count(b"\n") + 1
        raise ConfigError(f"{rd.config_path} line {line}: bytes that are not UTF-8; fix or restore the "
                          "file") from None
    except ValueError as e:  # tomllib.TOMLDecodeError
        raise ConfigError(f"{rd.config_path}: not valid TOML ({e})") from None
    except OSError as e:
        raise ConfigError(f"{rd.config_path}: unreadable ({e.strerror or e})") from None
    try:
        return config_from_dict(apply_overrides(copy.deepcopy(raw), overrides or []))
    except ConfigError as e:
        if overrides:
            try:
                config_from_dict(raw)
            except ConfigError:
                pass  # the file itself does not check
            else:
                raise ConfigError(f"--set {' '.join(overrides)}: {e}") from None
        raise ConfigError(f"{rd.config_path}: {e}") from None


# -- the job's machine

def _silent(*args, **kwargs) -> None:
    """The log of ranks other than 0."""


def open_job(cfg: Config, run_dir, resume: bool, log: Callable[..., object]) -> Job:
    """The job's device (rank ``LOCAL_RANK``'s GPU under torchrun), process group, thread count
    (``train.threads`` > 0 sets torch's intra-op threads; :func:`close_job` restores them) and run
    directory (not yet made). A resumed job stands at its latest checkpoint's step until one is
    loaded (so that a job that fails while starting reports that step)."""
    device = resolve_device(cfg.train.device)
    world = distributed.setup(device.type)
    if world.enabled and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if device.type == "cuda":  # every batch has the same shape: let cuDNN time its algorithms once
        torch.backends.cudnn.benchmark = True
    say = log if world.is_main else _silent
    job = Job(cfg=cfg, rd=RunDir(run_dir, log=say), world=world, device=device, say=say, resume=resume,
              threads_before=torch.get_num_threads())
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    if resume:
        found = job.rd.latest_checkpoint()
        job.step = found[0] if found else 0
    return job


def close_job(job: Job, stop: StopSignals) -> None:
    """Whatever way the job ended: torch's thread count and the signal handlers as they were, and
    the process group (torchrun) destroyed."""
    torch.set_num_threads(job.threads_before)
    stop.restore()
    distributed.cleanup(job.world)


# -- everything before the first step

def prepare(job: Job, stop: StopSignals) -> None:
    """Everything before the first training step, in order: the run directory (cleaned of what a
    killed job left; ``config.toml`` for a new run; status "running", stage "starting"), the
    method and its datasets, the preview batch, the resume (or the per-rank seed), the nets wrapped
    for DDP and the data loader; then status stage "train".

    Raises :class:`StopRequested` when a stop was asked before it began (a signal during it raises
    it from the handler), ConfigError / ModelFileError / CheckpointError / OSError from the parts."""
    cfg, rd = job.cfg, job.rd
    if job.is_main:
        _open_run_dir(job)
    if stop.requested:
        raise StopRequested("early")
    job.amp_dtype = resolve_precision(cfg.train.precision, job.device)
    torch.manual_seed(cfg.train.seed)
    val = _build_method(job)
    job.preview = fixed_batch(val if len(val) >= SAMPLE_COUNT else job.dataset, SAMPLE_COUNT)
    if job.resume:
        _resume(job)
    else:
        _init_from(job)
        torch.manual_seed(cfg.train.seed + job.world.rank)
    method = job.method
    for name in list(method.train_nets):
        method.train_nets[name] = distributed.wrap(method.nets[name], job.device, job.world)
    job.batches = iter(make_loader(job))
    job.last_checkpoint = job.step if job.resume else -1
    job.say(f"{cfg.method} on {describe(job.device)}, precision {job.amp_dtype or 'fp32'}, {len(job.dataset)} "
            f"training images, steps {job.step}..{cfg.train.steps}, run directory {rd.path}")
    if job.is_main:
        rd.write_status(stage="train", message="training", step=job.step, stage_done=None,
                        stage_total=None)  # the dataset's counts end with its stage


def _open_run_dir(job: Job) -> None:
    """Rank 0: make the run directory, remove what an interrupted job left (partial or half-pruned
    checkpoints, temporary files), write ``config.toml`` for a new run, and the first status."""
    cfg, rd = job.cfg, job.rd
    rd.path.mkdir(parents=True, exist_ok=True)
    for p in rd.clean():
        job.say(f"removed {p.relative_to(rd.path)} (left by an interrupted job)")
    if not job.resume:  # with absolute paths: a resume from another folder reads the same files
        atomic_write(rd.config_path, to_toml(absolute_paths(cfg.to_dict())))
    rd.write_status(state="running", step=job.step, total_steps=cfg.train.steps, method=cfg.method,
                    preset=cfg.preset, message="starting", started=time.time(), device=describe(job.device),
                    stage="starting")


def _build_method(job: Job):
    """The method (under torchrun given ``any_rank``, a flag ORed over the ranks) and its training
    dataset into ``job``; returns the validation dataset. A procedural dataset made on first use
    may take minutes: its progress goes to the status (:class:`DatasetStatus`)."""
    cfg, world, device = job.cfg, job.world, job.device
    cls = get_method(cfg.method)
    channels_last = use_channels_last(cfg.train.channels_last, device)
    with synth.reporting(DatasetStatus(job.rd) if job.is_main else None):
        any_rank = distributed.any_rank(world, device) if world.enabled else None
        job.method = cls(cfg, device, job.amp_dtype, channels_last, any_rank=any_rank)
        job.dataset = job.method.dataset("train", log=job.say)
        return job.method.dataset("val", log=None)


def _resume(job: Job) -> None:
    """Load the newest usable checkpoint (or start at step 0 when there is none) and, on rank 0,
    cut the metrics logged after it (no step logged twice)."""
    rd = job.rd
    loaded = resume_checkpoint(rd, job.method, job.say, set_aside=job.is_main)
    if loaded is None:
        job.step, job.elapsed_before = 0, 0.0
        job.say(f"{rd.path}: no checkpoint yet; starting from step 0")
        _init_from(job)
    else:
        job.step, job.elapsed_before, _ = loaded
        job.say(f"resuming {rd.path} at step {job.step}")
    if job.is_main:
        rd.truncate_metrics(job.step)


def _init_from(job: Job) -> None:
    """A run at step 0 with ``train.init_from``: that model file's nets replace the fresh ones."""
    if job.cfg.train.init_from:
        names = load_model_nets(Path(job.cfg.train.init_from).expanduser(), job.method)
        job.say(f"nets {', '.join(names)} from {job.cfg.train.init_from}")


# -- data

class DatasetStatus:
    """Writes the making of a procedural dataset into the run's status: ``stage`` "dataset",
    ``stage_done`` / ``stage_total`` images and a message ("making dataset faces 4,500 / 20,000"); at
    most every ``interval`` seconds, and always the first and last count."""

    def __init__(self, rd: RunDir, interval: float = 0.5):
        self.rd, self.interval, self.last = rd, interval, float("-inf")

    def __call__(self, name: str, done: int, total: int) -> None:
        now = time.monotonic()
        if 0 < done < total and now - self.last < self.interval:
            return
        self.last = now
        self.rd.write_status(stage="dataset", stage_done=done, stage_total=total,
                             message=f"making dataset {name} {done:,} / {total:,}")


def num_workers(setting: int, device: torch.device) -> int:
    """DataLoader worker processes: ``data.num_workers`` when >= 0, else by the machine (up to 4;
    none on a CPU machine with two cores or fewer)."""
    if setting >= 0:
        return setting
    cpus = os.cpu_count() or 1
    if device.type == "cuda":
        return min(4, max(1, cpus // 2))
    return 0 if cpus <= 2 else min(4, cpus // 4)


def worker_ignores_signals(_worker_id: int) -> None:
    """DataLoader workers leave SIGINT and SIGTERM to the main process: Ctrl-C in a terminal or a kill
    of the whole process group reaches the workers too, and a worker dying first would crash the main
    process before it saves its checkpoint. The workers end when the main process ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def fixed_batch(dataset, n: int) -> dict:
    """The first ``n`` items of ``dataset`` (without augmentation) as one batch: tensors stacked
    along a new first dimension, other values as lists."""
    items = [dataset[(i, None)] for i in range(min(n, len(dataset)))]
    return {k: (torch.stack([it[k] for it in items]) if isinstance(items[0][k], torch.Tensor)
                else [it[k] for it in items]) for k in items[0]}


def make_loader(job: Job) -> DataLoader:
    """The training batches from ``job.step`` on: ``train.batch_size`` items a batch, this rank's
    share, in the order an uninterrupted run would draw them (:class:`StepSampler`)."""
    cfg, device = job.cfg, job.device
    sampler = StepSampler(len(job.dataset), cfg.train.batch_size, cfg.train.seed, job.step, job.world.rank,
                          job.world.world_size)
    workers = num_workers(cfg.data.num_workers, device)
    return DataLoader(job.dataset, batch_size=cfg.train.batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                      worker_init_fn=worker_ignores_signals if workers > 0 else None,
                      generator=torch.Generator().manual_seed(cfg.train.seed))
