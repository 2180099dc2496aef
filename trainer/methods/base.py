"""The method contract: what every training method declares and implements, and the machinery
they share (nets and optimisers, the linear-decay schedule, mixed-precision backward steps,
sampling without disturbing training, export to a model file).

A method is one module of :mod:`trainer.methods` (or a plugin module): its ``ModelConfig``
dataclass (the ``[model]`` settings), a :class:`Method` subclass (nets, one training step, sample
grids, export), its ``Translator`` (:class:`trainer.translator.Translator`: the exported model at
run time, with its declared controls), the dataset layouts it reads and its image-size rule, and
its hooks for evaluation and for importing and exporting reference checkpoints. The registry
(:mod:`trainer.registry`) is the one table of methods; nothing else names them.

Conventions: images are float tensors NCHW in [-1, 1] (``to_device`` puts them on the method's
device, channels-last when asked); ``train_step`` returns 0-d loss tensors by name; a non-finite
total loss raises :class:`~trainer.errors.NonFiniteLoss` before any weight changes.
"""
from __future__ import annotations

import bisect
import contextlib
import dataclasses
import math
import statistics
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
from PIL import Image
from torch import nn

from trainer.data.attributes import find_image_folder
from trainer.data.layout import check_layout
from trainer.data.synth import DATASETS, cached_dataset
from trainer.device import autocast, use_winograd
from trainer.errors import ConfigError, EvaluationError, LossBlowUp, NonFiniteLoss
from trainer.images import image_grid
from trainer.loss_groups import DISCRIMINATOR, GENERATOR, LOSS_GROUPS, REGULARISATION
from trainer.losses import GAN_MODES
from trainer.nets.init import spread_columns
from trainer.nets.norm import NORMS
from trainer.nets.winograd import set_winograd

__all__ = ["Method", "NonFiniteLoss", "LossBlowUp", "BlowUpCheck", "linear_decay", "fit_moments",
           "set_requires_grad", "side_effect_free", "image_grid", "DISCRIMINATOR", "GENERATOR", "REGULARISATION",
           "LOSS_GROUPS"]



class BlowUpCheck:
    """Finds a diverging run before it turns into NaN: a loss above ``absolute``, or above ``ratio``
    times its median over the first ``early`` steps (the median taken as at least ``floor``, so that
    a loss that starts near zero may still grow to ordinary values). Call it with each step's
    losses; it returns what blew up (a sentence), else None."""

    def __init__(self, ratio: float = 1e6, absolute: float = 1e8, early: int = 50, min_early: int = 10,
                 floor: float = 1e-2):
        self.ratio, self.absolute, self.early, self.min_early, self.floor = ratio, absolute, early, min_early, floor
        self.history: dict[str, list[float]] = {}

    def __call__(self, losses: dict[str, float]) -> str | None:
        for name, value in losses.items():
            if not math.isfinite(value):
                continue  # the non-finite check names it
            size = abs(value)
            if size > self.absolute:
                return f"{name} = {value:.3g}, over the limit of {self.absolute:.0e}"
            seen = self.history.setdefault(name, [])
            if len(seen) >= self.min_early:
                median = statistics.median(seen)
                if size > self.ratio * max(median, self.floor):
                    return (f"{name} = {value:.3g}, {size / max(median, 1e-30):.2g} times its median of "
                            f"{median:.3g} over its first {len(seen)} steps")
            if len(seen) < self.early:
                seen.append(size)
        return None


def linear_decay(total_steps: int, decay_steps: int, restarts=()):
    """LR factor per step: 1 until ``total - decay``, then linearly to 0 (the reference's 'linear'
    policy, counted in steps instead of epochs). With ``restarts`` (SGDR's warm restarts, Loshchilov
    & Hutter 2017, annealed linearly instead of by a cosine) that first cycle ends at the first
    restart; from each restart the factor falls from 1 to 0 by the next restart or the end.
    Restarts at or after ``total_steps`` are ignored, as a shortened preset must still end at 0."""
    bounds = [r for r in restarts if r < total_steps] + [total_steps]
    cycles = [_one_cycle(bounds[0], decay_steps)]
    cycles += [_one_cycle(end, end - start) for start, end in zip(bounds, bounds[1:])]

    def factor(step: int) -> float:
        return cycles[bisect.bisect_right(bounds[:-1], step)](step)
    return factor


def _one_cycle(end: int, decay_steps: int):
    decay_steps = min(decay_steps, end)  # a preset shortened with --set train.steps keeps decaying
    keep = end - decay_steps

    def factor(step: int) -> float:
        if decay_steps <= 0:
            return 1.0
        return max(0.0, 1.0 - max(0, step + 1 - keep) / float(decay_steps + 1))
    return factor


def fit_moments(state: dict, shape) -> None:
    """Adam's moments of a weight whose checkpoint had fewer inputs (spread as its values were, see
    :func:`trainer.nets.init.spread_columns`); moments that cannot be spread start afresh."""
    if "exp_avg" not in state or state["exp_avg"].shape == shape:
        return
    moments = {k: spread_columns(state[k], shape[1], power) if len(shape) == 2 else None
               for k, power in (("exp_avg", 1), ("exp_avg_sq", 2))}
    if any(m is None or m.shape != shape for m in moments.values()):
        state.clear()
    else:
        state.update(moments)


def require_doubling_size(size: int, who: str) -> None:
    """A generator that doubles from 4x4 (DCGAN, StyleGAN) draws a power of two of at least 8 px:
    ConfigError naming ``data.image_size`` and ``who`` otherwise."""
    if size < 8 or size & (size - 1):
        raise ConfigError(f"data.image_size = {size}: {who} needs a power of two of at least 8 "
                          "(its generator doubles from 4x4), e.g. 64")


def set_requires_grad(nets, flag: bool) -> None:
    """Turn training of the nets' parameters on or off; a parameter marked ``frozen`` (a net's
    weight that is never used, such as a left-out StyleGAN ToRGB) stays off."""
    for net in nets if isinstance(nets, (list, tuple)) else [nets]:
        for p in net.parameters():
            p.requires_grad_(flag and not getattr(p, "frozen", False))


@contextlib.contextmanager
def side_effect_free(*nets: nn.Module):
    """Run nets for a preview without touching training: the RNG state (dropout) and the
    buffers (batch-norm running statistics) are restored afterwards."""
    saved = [{k: v.detach().clone() for k, v in net.named_buffers()} for net in nets]
    cuda = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda), torch.no_grad():
        yield
    for net, buffers in zip(nets, saved):
        for k, v in net.named_buffers():
            v.copy_(buffers[k])


class Method:
    """Base class of every training method; a subclass with a non-empty :attr:`name` is
    registered with :func:`trainer.registry.register`.

    Class attributes a method declares:

    - ``name``: the registry key and the ``method`` of its presets and cards (``"pix2pix"``);
      ``aliases``: older names that still read.
    - ``task``: what its models do, one of ``sketch2photo``, ``photo2photo``, ``attributes``,
      ``style``, ``superres``, ``stylize``, ``sample`` (the studio's page follows it); ``paper``:
      the citation of the method.
    - ``ModelConfig``: the dataclass of its ``[model]`` settings; ``Translator``: the runtime class
      of its exported models (:class:`trainer.translator.Translator`, with declared controls).
    - ``layouts``: the dataset layouts it reads (names of :data:`trainer.data.layout.LAYOUTS`).
    - ``discriminator_optimizers``: the optimisers that take ``train.lr_D`` when it is set.
    - ``loss_groups``: every loss key :meth:`train_step` may return -> :data:`DISCRIMINATOR`,
      :data:`GENERATOR` or :data:`REGULARISATION` (the plots' groups,
      :mod:`trainer.loss_groups`; a loss key not declared is plotted with REGULARISATION).
    - ``import_kinds``: ``gan-trainer import --kind`` name -> :class:`trainer.importers.ImportKind`
      (reference checkpoints it reads); ``export_formats``: ``gan-trainer export --format`` name ->
      planner ``(tensors, card, out) -> trainer.exporters.ReferenceExport`` (or ExportRefused).
    - ``presets``: presets a plugin ships in code, name -> raw dict as a preset's TOML would give.

    Hooks (class methods unless said): :meth:`reads_card`, :meth:`reads_config`, :meth:`upgrade`,
    :meth:`validate`, :meth:`check_image_size`, :meth:`check_dataset`, :meth:`evaluate`; per
    instance :meth:`dataset`, :meth:`train_step`, :meth:`sample`, :meth:`sample_outputs`,
    :meth:`export` (and :meth:`state` / :meth:`load_state` for state beyond the optimisers).
    """

    name = ""
    aliases: tuple[str, ...] = ()
    task = ""
    paper = ""
    ModelConfig = None
    Translator = None
    layouts: frozenset[str] = frozenset()
    discriminator_optimizers: tuple[str, ...] = ("D",)
    loss_groups: dict[str, str] = {}
    import_kinds: dict = {}
    export_formats: dict = {}
    presets: dict[str, dict] = {}

    def __init__(self, cfg, device: torch.device, amp_dtype=None, channels_last: bool = False,
                 any_rank: Callable[[bool], bool] | None = None):
        """``cfg``: a validated :class:`trainer.config.Config` for this method; ``amp_dtype``:
        torch.float16 or torch.bfloat16 for mixed precision (None: float32); ``any_rank``: ORs a
        local flag over all ranks under DDP (default: the flag itself), so that every rank raises
        :class:`NonFiniteLoss` together instead of leaving the others waiting in a collective."""
        self.cfg, self.device, self.amp_dtype, self.channels_last = cfg, device, amp_dtype, channels_last
        self.nets: dict[str, nn.Module] = {}
        self.train_nets: dict[str, nn.Module] = {}  # the same nets, DDP-wrapped when distributed
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.any_rank = any_rank or (lambda flag: flag)
        self._sample_outputs: torch.Tensor | None = None

    # -- what a method is (class-level hooks)
    @classmethod
    def reads_card(cls, card: dict) -> bool:
        """Whether a model file's card is this method's (default: its ``method`` is :attr:`name`
        or one of :attr:`aliases`). :func:`trainer.registry.method_of_card` asks every method."""
        return card.get("method") in (cls.name, *cls.aliases)

    @classmethod
    def reads_config(cls, raw: dict) -> bool:
        """Whether a raw configuration (a preset's TOML with overrides) is this method's (default:
        its ``method`` is :attr:`name` or one of :attr:`aliases`)."""
        return raw.get("method") in (cls.name, *cls.aliases)

    @classmethod
    def upgrade(cls, raw: dict) -> dict:
        """A raw configuration of an older version brought to this method's keys (default: as it
        is); raises ConfigError for old settings that have no meaning here."""
        return raw

    @classmethod
    def validate(cls, cfg) -> None:
        """Raise :class:`~trainer.errors.ConfigError` for a configuration this method cannot run."""

    @staticmethod
    def check_norm(norm: str) -> None:
        """Raise :class:`~trainer.errors.ConfigError` for a ``model.norm`` that is not one of
        :data:`trainer.nets.norm.NORMS`."""
        if norm not in NORMS:
            raise ConfigError(f"model.norm = {norm!r}; choose {', '.join(NORMS[:-1])} or {NORMS[-1]}")

    @classmethod
    def check_image_size(cls, size: int, model=None) -> None:
        """The method's image-size rule: raise :class:`~trainer.errors.ConfigError` when
        ``data.image_size`` = ``size`` pixels cannot train; ``model`` is the ``[model]`` settings
        the rule may depend on (default: the ModelConfig's defaults). Default: any size in
        :data:`trainer.config.INT_RANGES`."""

    @classmethod
    def check_dataset(cls, root) -> str:
        """The description of ``root``'s layout (:func:`trainer.data.layout.detect`), or ValueError
        when it is not one of :attr:`layouts`."""
        return check_layout(root, cls.layouts, cls.name)

    @classmethod
    def evaluate(cls, translator, data=None, n: int | None = None, progress: bool = True, **options) -> dict:
        """Score an exported model (``translator``) against ground truth: the procedural dataset it
        was trained on (held-out seeds) or, with ``data``, a folder in its layout; ``n`` test items
        (None: the evaluation's default). Returns nested metrics (numbers by name). Raises
        :class:`~trainer.errors.EvaluationError` when there is no evaluation for the method or
        the data cannot be scored."""
        raise EvaluationError(f"no evaluation for method {cls.name!r}")

    @classmethod
    def has_evaluation(cls) -> bool:
        """Whether the method overrides :meth:`evaluate`."""
        return cls.evaluate.__func__ is not Method.evaluate.__func__

    @staticmethod
    def check_common(cfg, layout: str, example: str) -> None:
        """The checks every folder-reading method shares: a known GAN mode, and a dataset root
        that exists (or a procedural dataset)."""
        mode = getattr(cfg.model, "gan_mode", "vanilla")
        if mode not in GAN_MODES:
            raise ConfigError(f"model.gan_mode = {mode!r}; choose one of {', '.join(GAN_MODES)}")
        if cfg.data.synth and not cfg.data.root and cfg.data.synth not in DATASETS:
            raise ConfigError(f"data.synth = {cfg.data.synth!r}: no such procedural dataset; known: "
                              f"{', '.join(DATASETS)}")
        if not cfg.data.root and not cfg.data.synth:
            raise ConfigError(f"data.root is empty: set it to a folder in the {layout}, "
                              f"e.g. --set data.root={example}")
        if cfg.data.root and not Path(cfg.data.root).expanduser().is_dir():
            what = "a file, not a folder" if Path(cfg.data.root).expanduser().exists() else "no such folder"
            raise ConfigError(f"data.root = {cfg.data.root!r}: {what}")

    # -- set-up helpers
    def data_root(self, log=print) -> Path:
        """``data.root``, or the procedural ``data.synth`` dataset (made once, then cached)."""
        d = self.cfg.data
        if d.root:
            return Path(d.root).expanduser()
        return cached_dataset(d.synth, d.synth_n, d.image_size, log=log)

    def image_root(self, log=print) -> Path:
        """The dataset root for methods that learn from images alone; in the CelebA layout, its
        image folder (the attributes unused)."""
        root = self.data_root(log)
        if (root / "list_attr_celeba.txt").is_file():
            root = find_image_folder(root)
        return root

    def add_net(self, name: str, net: nn.Module) -> nn.Module:
        """``net`` on the method's device (channels-last when asked; Winograd convolutions as
        ``train.winograd`` says) under ``name``: checkpointed, and DDP-wrapped by the run loop in
        :attr:`train_nets`."""
        net = net.to(self.device)
        set_winograd(net, use_winograd(self.cfg.train.winograd, self.device, self.amp_dtype, self.cfg.train.steps))
        if self.channels_last:  # 4-d weights only (StyleGAN's modulated weights are 5-d)
            for t in [*net.parameters(), *net.buffers()]:
                if t.dim() == 4:
                    t.data = t.data.contiguous(memory_format=torch.channels_last)
        self.nets[name] = self.train_nets[name] = net
        return net

    def add_optimizer(self, name: str, params, lr: float, betas: tuple[float, float]) -> None:
        """Adam for ``params`` with the linear-decay schedule of ``train.steps`` / ``decay_steps`` /
        ``restarts``. An optimiser named in :attr:`discriminator_optimizers` takes ``train.lr_D``
        when it is set (> 0), as the factor ``lr_D / lr`` on ``lr`` so that a method's own scaling
        of the rate stays (StyleGAN's lazy R1)."""
        t = self.cfg.train
        if name in self.discriminator_optimizers and t.lr_D > 0:
            lr = lr * t.lr_D / t.lr
        opt = torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
        self.optimizers[name] = opt
        self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(opt, linear_decay(t.steps, t.decay_steps, t.restarts))
        if self.amp_dtype == torch.float16:
            self.scalers[name] = torch.amp.GradScaler(self.device.type)

    def autocast(self):
        """The mixed-precision context of the method's ``amp_dtype`` (a no-op in float32)."""
        return autocast(self.device, self.amp_dtype)

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        """A batch tensor on the method's device (non-blocking; channels-last for NCHW when asked)."""
        t = t.to(self.device, non_blocking=True)
        if self.channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        """zero_grad, backward (scaled for fp16), step for optimiser ``name``. A non-finite total
        loss raises :class:`NonFiniteLoss` before any weight is touched."""
        if self.any_rank(not bool(torch.isfinite(loss.detach()))):
            value = loss.detach().float().item()
            raise NonFiniteLoss(f"{name} total = {value}")
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        scaler = self.scalers.get(name)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    def end_step(self) -> None:
        """Advance every schedule by one step (call once at the end of :meth:`train_step`)."""
        with warnings.catch_warnings():  # G of StarGAN steps every n_critic: its schedule still counts steps
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            for s in self.schedulers.values():
                s.step()

    def learning_rates(self) -> dict[str, float]:
        """``{"lr_<optimiser>": rate}``, the rates the next step uses."""
        return {f"lr_{k}": o.param_groups[0]["lr"] for k, o in self.optimizers.items()}

    # -- state for checkpoints
    def state(self) -> dict:
        """What a checkpoint keeps beside the nets' weights (optimisers, schedules, scalers; a
        method adds its own, e.g. CycleGAN's image pools)."""
        return {"optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
                "scalers": {k: s.state_dict() for k, s in self.scalers.items()}}

    def load_state(self, state: dict) -> None:
        """:meth:`state` back, with the configured rates (a resume may change train.lr or steps)."""
        for group, objs in (("optimizers", self.optimizers), ("schedulers", self.schedulers),
                            ("scalers", self.scalers)):
            for k, obj in objs.items():
                if k in state.get(group, {}):
                    base_lrs = getattr(obj, "base_lrs", None)
                    obj.load_state_dict(state[group][k])
                    if base_lrs is not None:  # the configured rates, not the checkpoint's: --set train.lr
                        obj.base_lrs = base_lrs
        for opt in self.optimizers.values():  # weights that adapt_state widened: their moments alike
            for group in opt.param_groups:
                for p in group["params"]:
                    fit_moments(opt.state.get(p, {}), p.shape)
        for s in self.schedulers.values():  # a resume with another train.steps or lr changes the
            for group, base, f in zip(s.optimizer.param_groups, s.base_lrs, s.lr_lambdas):  # schedule:
                group["lr"] = base * f(s.last_epoch)  # its rate from the first step on

    # -- hooks for each method
    def dataset(self, phase: str = "train", log=print):
        """The dataset of ``phase`` ("train", or "val" for the fixed preview batch; a method falls
        back to train when its layout has no such split). Items are dicts of CHW tensors in
        [-1, 1] (and labels), indexed by ``(index, augmentation seed)``."""
        raise NotImplementedError

    def train_step(self, batch) -> dict[str, torch.Tensor]:
        """One optimisation step on ``batch`` (collated dataset items); returns the 0-d losses by
        name (each key declared in :attr:`loss_groups`) and ends with :meth:`end_step`."""
        raise NotImplementedError

    def sample(self, batch) -> Image.Image:
        """A preview grid of ``batch`` (:func:`trainer.images.image_grid`) without disturbing
        training (:func:`side_effect_free`); keeps the generated images for :meth:`sample_outputs`."""
        raise NotImplementedError

    def sample_outputs(self) -> torch.Tensor | None:
        """The generated part of the last :meth:`sample` (N, C, H, W) in [-1, 1], for the loop's
        sample-diversity metric; None when the method keeps none."""
        return self._sample_outputs

    def export(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, card) of the model file: the generator's weights under ``<net>.`` and the card
        (:meth:`card`) that its :attr:`Translator` reads."""
        raise NotImplementedError

    # -- shared by export()
    def card(self, nets: dict, **extra) -> dict:
        """A model card: method, task, ``nets`` ({name: {"name": network, "args": {...}}}), image size,
        channels, value range [-1, 1], the preset and the training settings, plus ``extra``."""
        cfg = self.cfg
        return {"method": self.name, "task": extra.pop("task", self.task), "nets": nets,
                "image_size": cfg.data.image_size, "channels": 3, "value_range": [-1, 1],
                "preset": cfg.preset,
                "training": {"preset": cfg.preset, "steps": cfg.train.steps, "batch_size": cfg.train.batch_size,
                             "dataset": cfg.data.synth or cfg.data.root,
                             "date": time.strftime("%Y-%m-%d"),
                             "model": dataclasses.asdict(cfg.model)},
                **extra}
