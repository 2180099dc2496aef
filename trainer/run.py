"""The training loop every method runs in: run directory, metrics, samples, checkpoints, resume,
stop on SIGTERM or Ctrl-C, stop on a non-finite loss, and torchrun (DDP) support."""
from __future__ import annotations

import io
import json
import os
import pickle
import random
import shutil
import signal
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save as safetensors_bytes
from torch.utils.data import DataLoader

from trainer import distributed
from trainer.config import Config, from_dict, read_toml, to_toml
from trainer.data import synth
from trainer.data.sampler import StepSampler
from trainer.device import describe, resolve_device, resolve_precision, use_channels_last
from trainer.methods import get_method
from trainer.methods.base import BlowUpCheck, LossBlowUp, NonFiniteLoss
from trainer.metrics import mean_pairwise_distance
from trainer.modelfile import ModelFileError, load_strict, refused_pickle_message, save_model, subdict
from trainer.progress import Progress
from trainer.rundir import (CheckpointError, DiskFullError, RunDir, atomic_write, early_stop_signal, is_disk_full,
                            write_file)

SAMPLE_COUNT = 4


@dataclass
class Outcome:
    """What :func:`train` returns: the final state, the step reached and the method (its nets)."""
    state: str
    step: int
    method: object


def new_run_dir(cfg: Config, runs_root="runs", name: str | None = None) -> Path:
    base = name or f"{Path(cfg.preset).stem or cfg.method}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = Path(runs_root) / base
    k = 1
    while path.exists():
        k += 1
        path = Path(runs_root) / f"{base}-{k}"
    return path


# -- RNG and checkpoints

def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(rd: RunDir, method, step: int, keep: int, elapsed: float) -> Path:
    """Write ``checkpoints/step-N`` whole or not at all: its files go into an ``.incomplete-*``
    folder, each fsynced and its size and SHA-256 recorded in ``meta.json`` (written last), and the
    folder is renamed into place; then the oldest beyond ``keep`` are pruned. A failed write (a full
    disk) removes the partial folder and leaves the earlier checkpoints as they were."""
    tmp = rd.new_checkpoint_dir()
    try:
        tensors = {f"{name}.{k}": v.detach().cpu().contiguous()
                   for name, net in method.nets.items() for k, v in net.state_dict().items()}
        files = {"nets.safetensors": write_file(tmp / "nets.safetensors", safetensors_bytes(tensors))}
        buf = io.BytesIO()
        torch.save({"step": step, **method.state(), "rng": rng_state()}, buf)
        files["state.pt"] = write_file(tmp / "state.pt", buf.getbuffer())
        atomic_write(tmp / "meta.json", json.dumps({"step": step, "elapsed": elapsed, "time": time.time(),
                                                    "files": files}))
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(e):
            kept = rd.latest_checkpoint()
            raise DiskFullError(
                f"disk full while writing the checkpoint of step {step} in {rd.checkpoints_dir}: the partial "
                f"checkpoint was removed; " + (f"the checkpoint of step {kept[0]} is intact" if kept else
                                               "no earlier checkpoint exists")
                + f". Free some space, then continue with: gan-trainer resume {rd.path}") from e
        raise
    return rd.commit_checkpoint(tmp, step, keep)


def load_nets(path: Path, method) -> None:
    """The checkpoint's weights into the method's nets; a net with ``adapt_state`` first fits a
    checkpoint of its earlier shape (as the same function: a resume that widened it)."""
    try:
        tensors = load_file(str(path / "nets.safetensors"))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path / 'nets.safetensors'}: unreadable ({e})") from None
    for name, net in method.nets.items():
        state = subdict(tensors, name)
        if hasattr(net, "adapt_state"):
            state = net.adapt_state(state)
        load_strict(net, state, f"checkpoint {path} net {name}")


def load_state_file(path: Path) -> dict:
    """A checkpoint's ``state.pt`` (optimisers, schedules, RNG), loaded as tensors and plain
    containers only; anything that would run code is refused with a plain message."""
    file = path / "state.pt"
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(refused_pickle_message(file, "checkpoint state")) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"{file}: unreadable ({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
            from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) or "rng" not in state:
        raise CheckpointError(f"{file}: not a GAN Studio checkpoint state (no step or RNG state)")
    return state


def load_checkpoint(path: Path, method) -> tuple[int, float]:
    load_nets(path, method)
    state = load_state_file(path)
    try:
        method.load_state(state)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        raise ModelFileError(f"checkpoint {path}: its optimiser state does not fit this run's settings ({e})") \
            from None
    try:
        set_rng_state(state["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        raise CheckpointError(f"{path / 'state.pt'}: a damaged RNG state ({type(e).__name__}: {e})") from None
    elapsed = RunDir(path.parent.parent).checkpoint_meta(path).get("elapsed", 0.0)
    return int(state["step"]), float(elapsed) if isinstance(elapsed, (int, float)) else 0.0


def newest_valid_checkpoint(rd: RunDir, say=print) -> tuple[int, Path] | None:
    """The newest checkpoint whose files match their checksums; the damaged ones after it are
    named (``say``) and skipped."""
    for step, path in reversed(rd.checkpoints()):
        problem = rd.verify_checkpoint(path)
        if problem is None:
            return step, path
        say(f"warning: checkpoint {path.name} is damaged ({problem}); using the one before it")
    return None


def resume_checkpoint(rd: RunDir, method, say=print, set_aside: bool = True) -> tuple[int, float, Path] | None:
    """Load the newest usable checkpoint into ``method``: its files match their checksums and load
    as tensors only. Newer damaged ones are named and, with ``set_aside`` (rank 0 only), moved
    aside as ``damaged-step-N``. None when the run has no checkpoint; raises
    :class:`CheckpointError` when it has some but none is usable (nothing is moved then, nothing
    trained over)."""
    problems = []
    for step, path in reversed(rd.checkpoints()):
        problem = rd.verify_checkpoint(path)
        if problem is None:
            try:
                step, elapsed = load_checkpoint(path, method)
            except CheckpointError as e:
                problem = str(e)
            else:
                for bad, why in problems:
                    moved = ""
                    if set_aside:
                        try:
                            moved = f"; moved to {rd.set_aside(bad).name}"
                        except OSError:
                            pass
                    say(f"warning: checkpoint {bad.name} is damaged ({why}){moved}")
                if problems:
                    say(f"resuming from the newest intact checkpoint, step {step}")
                return step, elapsed, path
        problems.append((path, problem))
    if problems:
        raise CheckpointError(f"{rd.path}: no usable checkpoint: " + "; ".join(f"{p.name}: {why}"
                                                                               for p, why in problems))
    return None


def _kept(rd: RunDir) -> str:
    found = rd.latest_checkpoint()
    return (f"the checkpoint of step {found[0]} is kept" if found
            else "no checkpoint was written yet")


# -- the loop

def _num_workers(setting: int, device: torch.device) -> int:
    if setting >= 0:
        return setting
    cpus = os.cpu_count() or 1
    if device.type == "cuda":
        return min(4, max(1, cpus // 2))
    return 0 if cpus <= 2 else min(4, cpus // 4)


def _worker_ignores_signals(_worker_id: int) -> None:
    """DataLoader workers leave SIGINT and SIGTERM to the main process: Ctrl-C in a terminal or a kill
    of the whole process group reaches the workers too, and a worker dying first would crash the main
    process before it saves its checkpoint. The workers end when the main process ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _fixed_batch(dataset, n: int) -> dict:
    items = [dataset[(i, None)] for i in range(min(n, len(dataset)))]
    return {k: (torch.stack([it[k] for it in items]) if isinstance(items[0][k], torch.Tensor)
                else [it[k] for it in items]) for k in items[0]}


def _format_losses(values: dict) -> str:
    return " ".join(f"{k} {v:.3g}" for k, v in values.items())


def memory_status(device) -> dict:
    """GPU name and memory for the monitor (the studio reads process memory on the CPU itself)."""
    if device.type != "cuda":
        return {}
    return {"gpu": torch.cuda.get_device_name(device),
            "gpu_memory_mb": round(torch.cuda.memory_allocated(device) / 2 ** 20),
            "gpu_memory_peak_mb": round(torch.cuda.max_memory_allocated(device) / 2 ** 20),
            "gpu_memory_total_mb": round(torch.cuda.get_device_properties(device).total_memory / 2 ** 20)}


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


class StopRequested(BaseException):
    """Raised by the signal handler while a job is still starting (making its dataset, loading a
    checkpoint): there is nothing to checkpoint yet, so it stops at once. A BaseException, so that
    no ``except Exception`` on the way swallows it."""


def _resume_hint(rd: RunDir) -> str:
    return f"resume with: gan-trainer resume {rd.path}"


def train(cfg: Config, run_dir, resume: bool = False, log=print, progress: bool = True) -> Outcome:
    """Run (or resume) a job in ``run_dir``; its state ends finished or stopped.
    Raises on failure after writing status ``failed`` with the message.

    Stopping (SIGTERM, Ctrl-C): while starting up the job stops at once (a procedural dataset being
    made is abandoned, its worker processes ended) with status "stopped"; while training it ends
    the current step, saves a checkpoint and stops. A second signal only says it is saving; a
    third quits at once without the final checkpoint (the last one written stays)."""
    device = resolve_device(cfg.train.device)
    world = distributed.setup(device.type)
    if world.enabled and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if device.type == "cuda":  # every batch has the same shape: let cuDNN time its algorithms once
        torch.backends.cudnn.benchmark = True
    is_main = world.is_main
    say = log if is_main else (lambda *a, **k: None)
    rd = RunDir(run_dir, log=say)
    threads_before = torch.get_num_threads()
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)

    stop = {"requested": False, "count": 0, "starting": True}
    main_pid = os.getpid()

    def on_signal(signum, frame):
        if os.getpid() != main_pid:  # a forked worker (the dataset's process pool): the main process decides
            return
        stop["count"] += 1
        name = signal.Signals(signum).name
        if stop["count"] == 1:
            stop["requested"] = True
            if stop["starting"]:
                say(f"\n{name} received while starting: stopping")
                raise StopRequested(name)
            say(f"\n{name} received: saving a checkpoint and stopping")
        elif stop["count"] == 2:
            say(f"\n{name} received again: finishing the checkpoint, then exiting "
                "(once more quits at once, without it)")
        else:
            raise KeyboardInterrupt

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    if early_stop_signal() is not None:  # a stop that came while the program was still loading
        stop["requested"], stop["count"] = True, 1
    step, elapsed_before = 0, 0.0
    if resume:  # until a checkpoint is loaded the run stands where its latest checkpoint is
        found = rd.latest_checkpoint()
        step = found[0] if found else 0
    try:
        if is_main:
            rd.path.mkdir(parents=True, exist_ok=True)
            for p in rd.clean():  # what a killed job left: partial or half-pruned checkpoints, temp files
                say(f"removed {p.relative_to(rd.path)} (left by an interrupted job)")
            if not resume:
                atomic_write(rd.config_path, to_toml(cfg.to_dict()))
            rd.write_status(state="running", step=step, total_steps=cfg.train.steps, method=cfg.method,
                            preset=cfg.preset, message="starting", started=time.time(), device=describe(device),
                            stage="starting")
        if stop["requested"]:
            raise StopRequested("early")
        amp_dtype = resolve_precision(cfg.train.precision, device)
        torch.manual_seed(cfg.train.seed)
        # a procedural dataset made on first use may take minutes: its progress goes to the status
        with synth.reporting(DatasetStatus(rd) if is_main else None):
            method = get_method(cfg.method)(cfg, device, amp_dtype,
                                            use_channels_last(cfg.train.channels_last, device))
            dataset = method.dataset("train", log=say)
            val = method.dataset("val", log=None)
        preview = _fixed_batch(val if len(val) >= SAMPLE_COUNT else dataset, SAMPLE_COUNT)
        if resume:
            loaded = resume_checkpoint(rd, method, say, set_aside=is_main)
            if loaded is None:
                step, elapsed_before = 0, 0.0
                say(f"{rd.path}: no checkpoint yet; starting from step 0")
            else:
                step, elapsed_before, _ = loaded
                say(f"resuming {rd.path} at step {step}")
            if is_main:  # what was logged after that point is logged again: no step twice
                rd.truncate_metrics(step)
        else:
            torch.manual_seed(cfg.train.seed + world.rank)
        for name in list(method.train_nets):
            method.train_nets[name] = distributed.wrap(method.nets[name], device, world)

        sampler = StepSampler(len(dataset), cfg.train.batch_size, cfg.train.seed, step, world.rank, world.world_size)
        workers = _num_workers(cfg.data.num_workers, device)
        loader = DataLoader(dataset, batch_size=cfg.train.batch_size, sampler=sampler, num_workers=workers,
                            pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                            worker_init_fn=_worker_ignores_signals if workers > 0 else None,
                            generator=torch.Generator().manual_seed(cfg.train.seed))
        batches = iter(loader)
        say(f"{cfg.method} on {describe(device)}, precision {amp_dtype or 'fp32'}, {len(dataset)} training "
            f"images, steps {step}..{cfg.train.steps}, run directory {rd.path}")
        if is_main:
            rd.write_status(stage="train", message="training", step=step)

        bar = Progress(cfg.train.steps, start=step, desc="train", enabled=progress and is_main)
        t_start = time.perf_counter()
        window: dict[str, tuple[float, int]] = {}
        window_n, window_t = 0, time.perf_counter()
        last_ckpt = step if resume else -1
        elapsed = lambda: elapsed_before + time.perf_counter() - t_start  # noqa: E731
        state = "finished"
        if world.enabled:
            method.any_rank = lambda flag: distributed.any_flag(world, device, flag)[0]
        extra = {}
        blow_up = BlowUpCheck()
        stop["starting"] = False
        stop_now = stop["requested"]  # asked for while starting, after the point of stopping at once
        while step < cfg.train.steps and not stop_now:
            lrs = method.learning_rates()  # the ones this step uses (train_step ends with the schedule's step)
            try:
                losses = method.train_step(next(batches))
            except NonFiniteLoss as e:
                raise NonFiniteLoss(f"loss became non-finite at step {step + 1}: {e}; stopped before "
                                    f"updating the weights ({_kept(rd)}). "
                                    "Try a lower train.lr or precision=off.") from None
            step += 1
            values = torch.stack([v.detach().float() for v in losses.values()]).tolist()
            bad = [k for k, v in zip(losses, values) if not np.isfinite(v)]
            grown = None if bad else blow_up(dict(zip(losses, values)))
            stop_now, any_bad = distributed.any_flag(world, device, stop["requested"], bool(bad or grown))
            if any_bad:
                if grown:
                    raise LossBlowUp(f"loss blew up at step {step}: {grown}; the run is diverging, stopped "
                                     f"({_kept(rd)}). Try a lower train.lr, or precision=off.")
                names = ", ".join(f"{k} = {losses[k].item()}" for k in bad) if bad else "on another rank"
                raise NonFiniteLoss(f"loss became non-finite at step {step}: {names}; stopped "
                                    f"({_kept(rd)}). Try a lower train.lr or precision=off.")
            for k, v in zip(losses, values):  # some losses come every n_critic steps only
                total, count = window.get(k, (0.0, 0))
                window[k] = (total + v, count + 1)
            window_n += 1
            if is_main and cfg.train.sample_every > 0 and (step % cfg.train.sample_every == 0
                                                            or step == cfg.train.steps):
                rd.save_sample(method.sample(preview), step)
                outputs = getattr(method, "sample_outputs", None)  # the generated part of the grid
                if outputs is not None:  # logged with this step's losses, or the next logged step's
                    extra["sample_diversity"] = mean_pairwise_distance(outputs)
            if step % cfg.train.log_every == 0 or step == cfg.train.steps:
                now = time.perf_counter()
                avg = {k: total / count for k, (total, count) in window.items()}
                rate = window_n / max(now - window_t, 1e-9)
                if is_main:
                    rd.append_metrics({"step": step, "time": time.time(), "elapsed": round(elapsed(), 3),
                                       **avg, "it_s": rate, **lrs, **extra})
                    extra = {}
                    eta = (cfg.train.steps - step) / rate if rate > 0 else None
                    rd.write_status(state="running", step=step, it_s=rate, eta_s=eta, elapsed=elapsed(),
                                    message="", **memory_status(device))
                bar.update(0, postfix=_format_losses(avg))
                window, window_n, window_t = {}, 0, now
            bar.update(1)
            if stop_now:
                break
            if is_main and cfg.train.checkpoint_every > 0 and step % cfg.train.checkpoint_every == 0:
                save_checkpoint(rd, method, step, cfg.train.keep_checkpoints, elapsed())
                last_ckpt = step
        if stop_now and step < cfg.train.steps:
            state = "stopped"
        bar.close()
        distributed.sync_buffers(world, method.nets.values())
        if is_main:
            if last_ckpt != step and step > 0:
                save_checkpoint(rd, method, step, cfg.train.keep_checkpoints, elapsed())
            if state == "finished":
                export_run(rd, method=method, elapsed=elapsed(), steps_done=step)
            message = (f"stopped at step {step}; {_resume_hint(rd)}" if state == "stopped"
                       else f"finished {step} steps in {elapsed():.0f} s")
            rd.write_status(state=state, step=step, elapsed=elapsed(), message=message, eta_s=0)
            say(message)
        distributed.barrier(world)
        return Outcome(state, step, method)
    except BaseException as e:
        # stopped while starting: at once (or an error the stop caused there, such as a process pool
        # whose workers the same signal ended)
        if isinstance(e, StopRequested) or (stop["requested"] and stop["starting"] and isinstance(e, Exception)):
            stop["starting"] = False
            message = (f"stopped while starting, at step {step}; {_resume_hint(rd)}" if step else
                       f"stopped while starting, before any training; {_resume_hint(rd)}")
            if is_main and rd.path.exists():
                _final_status(rd, say, state="stopped", step=step, message=message, stage="stopped")
            say(message)
            return Outcome("stopped", step, None)
        if is_main and rd.path.exists():
            if isinstance(e, KeyboardInterrupt):
                _final_status(rd, say, state="stopped", step=step,
                              message=f"interrupted: stopped at step {step} without a final checkpoint "
                                      f"({_kept(rd)}); {_resume_hint(rd)}")
            else:
                msg = str(e) if isinstance(e, (NonFiniteLoss, DiskFullError, CheckpointError)) \
                    else f"{type(e).__name__}: {e}"
                _final_status(rd, say, state="failed", step=step, message=msg,
                              traceback=traceback.format_exc()[-4000:])
        raise
    finally:
        torch.set_num_threads(threads_before)
        for s, h in old_handlers.items():
            signal.signal(s, h)
        distributed.cleanup(world)


def _final_status(rd: RunDir, say, **fields) -> None:
    """The last status of a job that ends badly; a status that cannot be written (a full disk) is
    said instead of hiding the error that ended the job."""
    try:
        rd.write_status(**fields)
    except OSError as e:
        say(f"warning: could not write {rd.status_path} ({e})")


def load_run_config(run_dir, overrides: list[str] | None = None) -> Config:
    """The run's ``config.toml`` (with ``overrides``); an error names the file."""
    from trainer.config import ConfigError, apply_overrides
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
        return from_dict(apply_overrides(raw, overrides or []))
    except ConfigError as e:
        raise ConfigError(f"{rd.config_path}: {e}") from None


def resume(run_dir, overrides: list[str] | None = None, log=print, progress=True) -> Outcome:
    """Continue a stopped, failed or finished run at its last checkpoint; ``--set train.steps=N``
    extends it."""
    cfg = load_run_config(run_dir, overrides)
    rd = RunDir(run_dir)
    before = rd.config_path.read_bytes()
    if overrides:
        atomic_write(rd.config_path, to_toml(cfg.to_dict()))
    try:
        return train(cfg, run_dir, resume=True, log=log, progress=progress)
    except (ModelFileError, CheckpointError):  # the overrides do not fit the checkpoint: the run stays as it was
        atomic_write(rd.config_path, before)
        raise


def export_run(rd: RunDir, out=None, method=None, elapsed: float | None = None, dtype=None,
               steps_done: int | None = None, log=print) -> Path:
    """Export a run's generator (from ``method`` in memory, else its newest intact checkpoint) as a
    model file, by default ``RUN_DIR/model.safetensors``."""
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
