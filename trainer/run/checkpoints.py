"""A run's checkpoints: ``RUN_DIR/checkpoints/step-N`` written whole or not at all, checked
against their recorded checksums, loaded as tensors only, and resumed from (the newest usable one).

A checkpoint holds ``nets.safetensors`` (every net's weights, keys ``NET.PARAM``), ``state.pt``
(the step, the optimisers, schedules and loss scalers, and the RNG states) and ``meta.json``
(step, elapsed training seconds, wall-clock time, and each file's size and SHA-256).
"""
from __future__ import annotations

import io
import json
import pickle
import random
import shutil
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save as safetensors_bytes

from trainer.errors import CheckpointError, DiskFullError, ModelFileError
from trainer.methods.base import Method
from trainer.modelfile import load_model, load_strict, refused_pickle_message, subdict
from trainer.nets.adapt import AdaptsState
from trainer.rundir import RunDir, atomic_write, is_disk_full, run_config, write_file


# -- RNG state

def rng_state() -> dict:
    """The torch, Python, NumPy (and, once initialised, CUDA) RNG states as tensors and plain
    containers, so that ``torch.load(weights_only=True)`` reads them back."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` saved. Raises KeyError, TypeError, ValueError or
    RuntimeError for a damaged state."""
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- writing

def save_checkpoint(rd: RunDir, method: Method, step: int, keep: int, elapsed: float) -> Path:
    """Write ``checkpoints/step-N`` whole or not at all: its files go into an ``.incomplete-*``
    folder, each fsynced and its size and SHA-256 recorded in ``meta.json`` (written last), and the
    folder is renamed into place; then the oldest beyond ``keep`` are pruned. ``elapsed`` is the
    run's training time in seconds. A failed write (a full disk) removes the partial folder and
    leaves the earlier checkpoints as they were; a full disk raises :class:`DiskFullError` (saying
    which checkpoint is intact and how to resume), anything else is re-raised. Returns the
    checkpoint's folder."""
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


def kept(rd: RunDir) -> str:
    """Which checkpoint a job that ends badly leaves: "the checkpoint of step N is kept", or that
    none was written yet (for the error messages)."""
    found = rd.latest_checkpoint()
    return (f"the checkpoint of step {found[0]} is kept" if found
            else "no checkpoint was written yet")


# -- reading

def load_nets(path: Path, method: Method) -> None:
    """The checkpoint's weights into the method's nets; a net that is an :class:`AdaptsState`
    first fits a checkpoint of its earlier shape (as the same function: a resume that widened it).
    Raises :class:`CheckpointError` for an unreadable file, :class:`ModelFileError` for weights
    whose names or shapes do not fit."""
    try:
        tensors = load_file(str(path / "nets.safetensors"))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path / 'nets.safetensors'}: unreadable ({e})") from None
    for name, net in method.nets.items():
        try:
            load_net(net, subdict(tensors, name), f"checkpoint {path} net {name}")
        except ModelFileError as e:
            raise ModelFileError(f"{e}. A resume builds the nets from the run's config.toml and the --set "
                                 f"given, and a model.* change (ngf, n_blocks, nz, region_features...), or a "
                                 f"data.image_size one where the nets' sizes follow it, no longer fits the checkpoint (its settings are in "
                                 f"{path.parent.parent / 'config.toml'}): resume without it. Nets of another "
                                 f"size start a new run; --set train.init_from={path} loads these weights into "
                                 f"a new run of the same sizes (a wider code map aside)") from None


def load_net(net, state: dict, what: str) -> None:
    """``state`` into ``net`` strictly, first fitted by :meth:`AdaptsState.adapt_state` when the net
    can take an earlier shape of itself; ``what`` names the source in a ModelFileError."""
    if isinstance(net, AdaptsState):
        state = net.adapt_state(state)
    load_strict(net, state, what)


def load_model_nets(path, method: Method) -> list[str]:
    """Fine-tuning: the nets of model file ``path`` (an export: :func:`trainer.modelfile.load_model`),
    or of a run's checkpoint folder (``runs/X/checkpoints/step-N``: its discriminators and encoders
    too, not its optimisers), into the method's nets of the same names, each through
    :meth:`AdaptsState.adapt_state` (a narrower first layer widens as the same function); nets the
    file lacks keep their fresh weights. Returns the names loaded. Raises :class:`ModelFileError`
    for an unreadable file, a file or run of another method, one with none of this method's nets,
    or weights that do not fit."""
    path = Path(path).expanduser()
    if path.is_file() and path.name == "nets.safetensors":
        raise ModelFileError(f"train.init_from {path}: a checkpoint's weights; pass its folder, {path.parent}")
    if path.is_dir():
        if not (path / "nets.safetensors").is_file():
            run_hint = (f"; this is a run folder: pass one of its checkpoints ({path / 'checkpoints' / 'step-N'}) "
                        f"or its model ({path / 'model.safetensors'})" if (path / "config.toml").is_file() else "")
            raise ModelFileError(f"train.init_from {path}: not a checkpoint folder (no nets.safetensors){run_hint}")
        try:
            tensors = load_file(str(path / "nets.safetensors"))
        except (SafetensorError, OSError, ValueError) as e:
            raise ModelFileError(f"train.init_from {path}: its nets.safetensors is damaged ({e})") from None
        run_dir = path.resolve().parents[1] if len(path.resolve().parents) > 1 else path.resolve()
        raw = run_config(run_dir)
        if not raw:
            raise ModelFileError(f"train.init_from {path}: no config.toml in {run_dir}, the run this checkpoint "
                                 f"should be in, so its method is unknown; pass the checkpoint inside its run "
                                 f"folder, or an exported model file")
        if not type(method).reads_config(raw):
            raise ModelFileError(f"train.init_from {path}: a checkpoint of a {raw.get('method', 'unnamed')} run, "
                                 f"and this run trains {method.name}")
    else:
        tensors, card = load_model(path)
        if not type(method).reads_card(card):
            raise ModelFileError(f"train.init_from {path}: a {card.get('method', 'unknown')} model, and this run "
                                 f"trains {method.name}")
    loaded = []
    for name, net in method.nets.items():
        state = subdict(tensors, name)
        if state:
            try:
                load_net(net, state, f"train.init_from {path} net {name}")
            except ModelFileError as e:
                raise ModelFileError(f"{e}. The file's nets were built with other settings: its model.* keys (ngf, "
                                     f"n_blocks, nz, region_features...) and data.image_size must be this run's (only a "
                                     f"narrower code map widens)") from None
            loaded.append(name)
    if not loaded:
        raise ModelFileError(f"train.init_from {path}: none of this run's nets ({', '.join(method.nets)}) is "
                             "in the file")
    return loaded


def load_state_file(path: Path) -> dict:
    """A checkpoint's ``state.pt`` (optimisers, schedules, RNG), loaded as tensors and plain
    containers only; anything that would run code is refused with a plain message. Raises
    :class:`CheckpointError` for a refused, unreadable or foreign file."""
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


def load_checkpoint(path: Path, method: Method) -> tuple[int, float]:
    """Load the checkpoint folder ``path`` into ``method`` (nets, optimiser state) and restore the
    RNG states. Returns (its step, the run's elapsed training seconds then). Raises
    :class:`CheckpointError` for damaged files, :class:`ModelFileError` for a checkpoint that does
    not fit this run's settings."""
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


def newest_valid_checkpoint(rd: RunDir, say: Callable[[str], object] = print) -> tuple[int, Path] | None:
    """The newest checkpoint whose files match their checksums, as (step, folder); the damaged
    ones after it are named (``say``) and skipped. None when there is none."""
    for step, path in reversed(rd.checkpoints()):
        problem = rd.verify_checkpoint(path)
        if problem is None:
            return step, path
        say(f"warning: checkpoint {path.name} is damaged ({problem}); using the one before it")
    return None


def resume_checkpoint(rd: RunDir, method: Method, say: Callable[[str], object] = print,
                      set_aside: bool = True) -> tuple[int, float, Path] | None:
    """Load the newest usable checkpoint into ``method``: its files match their checksums and load
    as tensors only. Newer damaged ones are named and, with ``set_aside`` (rank 0 only), moved
    aside as ``damaged-step-N``. Returns (step, elapsed seconds, folder); None when the run has no
    checkpoint; raises :class:`CheckpointError` when it has some but none is usable (nothing is
    moved then, nothing trained over), :class:`ModelFileError` when the newest intact one does not
    fit this run's settings."""
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
