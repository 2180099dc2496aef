"""What every method shares: its nets and optimisers, the linear-decay schedule, mixed-precision
backward steps, sampling without disturbing training, and export to a model file."""
from __future__ import annotations

import bisect
import contextlib
import dataclasses
import time

import torch
from PIL import Image
from torch import nn

from trainer.data.transforms import to_uint8
from trainer.device import autocast
from trainer.nets.init import spread_columns


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite; training stops at once instead of going on silently."""


class LossBlowUp(NonFiniteLoss):
    """A loss stayed finite but grew by orders of magnitude (a diverging run): it stops as a NaN does."""


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
        import math
        import statistics
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


def set_requires_grad(nets, flag: bool) -> None:
    for net in nets if isinstance(nets, (list, tuple)) else [nets]:
        for p in net.parameters():
            p.requires_grad_(flag)


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


def image_grid(rows: list[list[torch.Tensor]]) -> Image.Image:
    """Rows of equally sized CHW tensors in [-1, 1] as one image, with 2-pixel gaps."""
    h, w = rows[0][0].shape[-2:]
    gap = 2
    cols = max(len(r) for r in rows)
    grid = Image.new("RGB", (cols * w + (cols - 1) * gap, len(rows) * h + (len(rows) - 1) * gap), "white")
    for i, row in enumerate(rows):
        for j, t in enumerate(row):
            grid.paste(Image.fromarray(to_uint8(t)), (j * (w + gap), i * (h + gap)))
    return grid


class Method:
    """Base class; a method sets ``name``, ``ModelConfig`` and ``task`` and fills the hooks."""

    name = ""
    task = ""
    ModelConfig = None

    def __init__(self, cfg, device: torch.device, amp_dtype=None, channels_last: bool = False):
        self.cfg, self.device, self.amp_dtype, self.channels_last = cfg, device, amp_dtype, channels_last
        self.nets: dict[str, nn.Module] = {}
        self.train_nets: dict[str, nn.Module] = {}  # the same nets, DDP-wrapped when distributed
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        # ORs a local flag over all ranks; the run loop replaces it under DDP so that every rank
        # raises together instead of leaving the others waiting in a collective.
        self.any_rank = lambda flag: flag

    # -- set-up helpers
    @classmethod
    def validate(cls, cfg) -> None:
        """Raise ConfigError for a configuration this method cannot run."""

    @staticmethod
    def check_common(cfg, layout: str, example: str) -> None:
        """The checks every folder-reading method shares: a known GAN mode, and a dataset root
        that exists (or a procedural dataset)."""
        from pathlib import Path

        from trainer.config import ConfigError
        from trainer.losses import GAN_MODES
        mode = getattr(cfg.model, "gan_mode", "vanilla")
        if mode not in GAN_MODES:
            raise ConfigError(f"model.gan_mode = {mode!r}; choose one of {', '.join(GAN_MODES)}")
        if not cfg.data.root and not cfg.data.synth:
            raise ConfigError(f"data.root is empty: set it to a folder in the {layout}, "
                              f"e.g. --set data.root={example}")
        if cfg.data.root and not Path(cfg.data.root).expanduser().is_dir():
            raise ConfigError(f"data.root = {cfg.data.root!r}: no such folder")

    def data_root(self, log=print):
        """``data.root``, or the procedural ``data.synth`` dataset (made once, then cached)."""
        from pathlib import Path

        from trainer.data.synth import cached_dataset
        d = self.cfg.data
        if d.root:
            return Path(d.root).expanduser()
        return cached_dataset(d.synth, d.synth_n, d.image_size, log=log)

    def image_root(self, log=print):
        """The dataset root for methods that learn from images alone; in the CelebA layout, its
        image folder (the attributes unused)."""
        from trainer.data.attributes import find_image_folder
        root = self.data_root(log)
        if (root / "list_attr_celeba.txt").is_file():
            root = find_image_folder(root)
        return root

    def add_net(self, name: str, net: nn.Module) -> nn.Module:
        net = net.to(self.device)
        if self.channels_last:  # 4-d weights only (StyleGAN's modulated weights are 5-d)
            for t in [*net.parameters(), *net.buffers()]:
                if t.dim() == 4:
                    t.data = t.data.contiguous(memory_format=torch.channels_last)
        self.nets[name] = self.train_nets[name] = net
        return net

    def add_optimizer(self, name: str, params, lr: float, betas: tuple[float, float]) -> None:
        t = self.cfg.train
        if name.startswith("D") and t.lr_D > 0:  # keeps a method's own scaling of the rate (StyleGAN's lazy R1)
            lr = lr * t.lr_D / t.lr
        opt = torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
        self.optimizers[name] = opt
        self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(opt, linear_decay(t.steps, t.decay_steps, t.restarts))
        if self.amp_dtype == torch.float16:
            self.scalers[name] = torch.amp.GradScaler(self.device.type)

    def autocast(self):
        return autocast(self.device, self.amp_dtype)

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
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
        import warnings
        with warnings.catch_warnings():  # G of StarGAN steps every n_critic: its schedule still counts steps
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            for s in self.schedulers.values():
                s.step()

    def learning_rates(self) -> dict[str, float]:
        return {f"lr_{k}": o.param_groups[0]["lr"] for k, o in self.optimizers.items()}

    # -- state for checkpoints
    def state(self) -> dict:
        return {"optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
                "scalers": {k: s.state_dict() for k, s in self.scalers.items()}}

    def load_state(self, state: dict) -> None:
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
        raise NotImplementedError

    def train_step(self, batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def sample(self, batch) -> Image.Image:
        raise NotImplementedError

    def export(self) -> tuple[dict[str, torch.Tensor], dict]:
        raise NotImplementedError

    # -- shared by export()
    def card(self, nets: dict, **extra) -> dict:
        cfg = self.cfg
        return {"method": self.name, "task": extra.pop("task", self.task), "nets": nets,
                "image_size": cfg.data.image_size, "channels": 3, "value_range": [-1, 1],
                "preset": cfg.preset,
                "training": {"preset": cfg.preset, "steps": cfg.train.steps, "batch_size": cfg.train.batch_size,
                             "dataset": cfg.data.synth or cfg.data.root,
                             "date": time.strftime("%Y-%m-%d"),
                             "model": dataclasses.asdict(cfg.model)},
                **extra}
