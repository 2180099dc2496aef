"""The training loop every method runs in: run directory, metrics, samples, checkpoints, resume,
stop on SIGTERM or Ctrl-C, stop on a non-finite loss, and torchrun (DDP) support."""
from __future__ import annotations

import json
import os
import random
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader

from trainer import distributed
from trainer.config import Config, from_dict, read_toml, to_toml
from trainer.data.sampler import StepSampler
from trainer.device import describe, resolve_device, resolve_precision, use_channels_last
from trainer.methods import get_method
from trainer.methods.base import NonFiniteLoss
from trainer.metrics import mean_pairwise_distance
from trainer.modelfile import ModelFileError, load_strict, save_model, subdict
from trainer.progress import Progress
from trainer.rundir import RunDir, atomic_write

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
    tmp = rd.new_checkpoint_dir()
    tensors = {f"{name}.{k}": v.detach().cpu().contiguous()
               for name, net in method.nets.items() for k, v in net.state_dict().items()}
    save_file(tensors, str(tmp / "nets.safetensors"))
    torch.save({"step": step, **method.state(), "rng": rng_state()}, tmp / "state.pt")
    atomic_write(tmp / "meta.json", json.dumps({"step": step, "elapsed": elapsed, "time": time.time()}))
    return rd.commit_checkpoint(tmp, step, keep)


def load_nets(path: Path, method) -> None:
    """The checkpoint's weights into the method's nets; a net with ``adapt_state`` first fits a
    checkpoint of its earlier shape (as the same function: a resume that widened it)."""
    tensors = load_file(str(path / "nets.safetensors"))
    for name, net in method.nets.items():
        state = subdict(tensors, name)
        if hasattr(net, "adapt_state"):
            state = net.adapt_state(state)
        load_strict(net, state, f"checkpoint {path} net {name}")


def load_checkpoint(path: Path, method) -> tuple[int, float]:
    load_nets(path, method)
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    method.load_state(state)
    set_rng_state(state["rng"])
    meta = json.loads((path / "meta.json").read_text())
    return int(state["step"]), float(meta.get("elapsed", 0.0))


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


def train(cfg: Config, run_dir, resume: bool = False, log=print, progress: bool = True) -> Outcome:
    """Run (or resume) a job in ``run_dir``; its state ends finished or stopped.
    Raises on failure after writing status ``failed`` with the message."""
    device = resolve_device(cfg.train.device)
    world = distributed.setup(device.type)
    if world.enabled and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if device.type == "cuda":  # every batch has the same shape: let cuDNN time its algorithms once
        torch.backends.cudnn.benchmark = True
    rd = RunDir(run_dir)
    is_main = world.is_main
    say = log if is_main else (lambda *a, **k: None)
    threads_before = torch.get_num_threads()
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)

    stop = {"requested": False}

    def on_signal(signum, frame):
        if stop["requested"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop["requested"] = True
        say(f"\n{signal.Signals(signum).name} received: saving a checkpoint and stopping")

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    step, elapsed_before = 0, 0.0
    try:
        if is_main:
            rd.path.mkdir(parents=True, exist_ok=True)
            if not resume:
                atomic_write(rd.config_path, to_toml(cfg.to_dict()))
            rd.write_status(state="running", step=0, total_steps=cfg.train.steps, method=cfg.method,
                            preset=cfg.preset, message="starting", started=time.time(), device=describe(device))
        amp_dtype = resolve_precision(cfg.train.precision, device)
        torch.manual_seed(cfg.train.seed)
        method = get_method(cfg.method)(cfg, device, amp_dtype, use_channels_last(cfg.train.channels_last, device))
        dataset = method.dataset("train", log=say)
        val = method.dataset("val", log=None)
        preview = _fixed_batch(val if len(val) >= SAMPLE_COUNT else dataset, SAMPLE_COUNT)
        if resume:
            found = rd.latest_checkpoint()
            if found is None:
                say(f"{rd.path}: no checkpoint yet; starting from step 0")
            else:
                step, elapsed_before = load_checkpoint(found[1], method)
                say(f"resuming {rd.path} at step {step}")
                if is_main:
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
        while step < cfg.train.steps:
            lrs = method.learning_rates()  # the ones this step uses (train_step ends with the schedule's step)
            try:
                losses = method.train_step(next(batches))
            except NonFiniteLoss as e:
                raise NonFiniteLoss(f"loss became non-finite at step {step + 1}: {e}; stopped before "
                                    "updating the weights (last good checkpoint kept). "
                                    "Try a lower train.lr or precision=off.") from None
            step += 1
            values = torch.stack([v.detach().float() for v in losses.values()]).tolist()
            bad = [k for k, v in zip(losses, values) if not np.isfinite(v)]
            stop_now, any_bad = distributed.any_flag(world, device, stop["requested"], bool(bad))
            if any_bad:
                names = ", ".join(f"{k} = {losses[k].item()}" for k in bad) if bad else "on another rank"
                raise NonFiniteLoss(f"loss became non-finite at step {step}: {names}; stopped "
                                    f"(last good checkpoint kept). Try a lower train.lr or precision=off.")
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
                state = "stopped"
                break
            if is_main and cfg.train.checkpoint_every > 0 and step % cfg.train.checkpoint_every == 0:
                save_checkpoint(rd, method, step, cfg.train.keep_checkpoints, elapsed())
                last_ckpt = step
        bar.close()
        distributed.sync_buffers(world, method.nets.values())
        if is_main:
            if last_ckpt != step:
                save_checkpoint(rd, method, step, cfg.train.keep_checkpoints, elapsed())
            if state == "finished":
                export_run(rd, method=method, elapsed=elapsed(), steps_done=step)
            message = (f"stopped at step {step}; resume with: gan-trainer resume {rd.path}" if state == "stopped"
                       else f"finished {step} steps in {elapsed():.0f} s")
            rd.write_status(state=state, step=step, elapsed=elapsed(), message=message, eta_s=0)
            say(message)
        distributed.barrier(world)
        return Outcome(state, step, method)
    except BaseException as e:
        if is_main and rd.path.exists():
            msg = str(e) if isinstance(e, NonFiniteLoss) else f"{type(e).__name__}: {e}"
            if isinstance(e, KeyboardInterrupt):
                msg = "interrupted twice: stopped without a final checkpoint"
            rd.write_status(state="failed", step=step, message=msg,
                            traceback=traceback.format_exc()[-4000:])
        raise
    finally:
        torch.set_num_threads(threads_before)
        for s, h in old_handlers.items():
            signal.signal(s, h)
        distributed.cleanup(world)


def load_run_config(run_dir, overrides: list[str] | None = None) -> Config:
    from trainer.config import apply_overrides
    rd = RunDir(run_dir)
    if not rd.exists():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no config.toml)")
    return from_dict(apply_overrides(read_toml(rd.config_path), overrides or []))


def resume(run_dir, overrides: list[str] | None = None, log=print, progress=True) -> Outcome:
    """Continue a stopped, failed or finished run at its last checkpoint; ``--set train.steps=N``
    extends it."""
    cfg = load_run_config(run_dir, overrides)
    rd = RunDir(run_dir)
    before = rd.config_path.read_text()
    if overrides:
        atomic_write(rd.config_path, to_toml(cfg.to_dict()))
    try:
        return train(cfg, run_dir, resume=True, log=log, progress=progress)
    except ModelFileError:  # the overrides do not fit the checkpoint: the run stays as it was
        atomic_write(rd.config_path, before)
        raise


def export_run(rd: RunDir, out=None, method=None, elapsed: float | None = None, dtype=None,
               steps_done: int | None = None) -> Path:
    """Export a run's generator (from ``method`` in memory, else its latest checkpoint) as a
    model file, by default ``RUN_DIR/model.safetensors``."""
    status = rd.read_status()
    if method is None:
        cfg = load_run_config(rd.path)
        found = rd.latest_checkpoint()
        if found is None:
            raise FileNotFoundError(f"{rd.path}: no checkpoint to export yet")
        method = get_method(cfg.method)(cfg, torch.device("cpu"))
        load_nets(found[1], method)
        steps_done = found[0]
        elapsed = json.loads((found[1] / "meta.json").read_text()).get("elapsed")
    elif steps_done is None:
        steps_done = status.get("step", method.cfg.train.steps)
    tensors, card = method.export()
    card["training"]["steps_done"] = steps_done
    if elapsed is not None:
        card["training"]["seconds"] = round(elapsed, 1)
    card["training"]["run"] = rd.path.name
    return save_model(out or rd.model_path, tensors, card, dtype=dtype)
