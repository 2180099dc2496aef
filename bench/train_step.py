"""Seconds per training step of a preset, per precision and memory format, on synthetic batches.

    python bench/train_step.py pix2pix-sketches pix2pix-facades [--steps 10] [--device auto]

Data loading is left out (batches are made once) so the figure is the step itself; the
first steps are warm-up and not counted.
"""
from __future__ import annotations

import argparse
import time

import torch

from trainer import config
from trainer.device import resolve_device
from trainer.methods import get_method


def make_batch(cfg):
    s, b = cfg.data.image_size, cfg.train.batch_size
    g = torch.Generator().manual_seed(0)
    return {"A": torch.rand(b, 3, s, s, generator=g) * 2 - 1, "B": torch.rand(b, 3, s, s, generator=g) * 2 - 1}


def seconds_per_step(preset: str, precision: str, channels_last: str, steps: int, warmup: int, device: str,
                     overrides=()) -> float:
    cfg = config.load(preset, [f"train.precision={precision}", f"train.channels_last={channels_last}",
                               "data.root=.", *overrides])
    dev = resolve_device(device)
    from trainer.device import resolve_precision, use_channels_last
    torch.manual_seed(0)
    method = get_method(cfg.method)(cfg, dev, resolve_precision(precision, dev), use_channels_last(channels_last, dev))
    batch = make_batch(cfg)
    for _ in range(warmup):
        method.train_step(batch)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        method.train_step(batch)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def main():
    p = argparse.ArgumentParser()
    p.add_argument("presets", nargs="+")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", nargs="+", default=["off", "bf16"])
    p.add_argument("--channels-last", nargs="+", default=["off", "on"])
    p.add_argument("--set", action="append", default=[])
    a = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {resolve_device(a.device)}")
    for preset in a.presets:
        for prec in a.precision:
            for cl in a.channels_last:
                s = seconds_per_step(preset, prec, cl, a.steps, a.warmup, a.device, a.set)
                print(f"{preset:22s} precision={prec:5s} channels_last={cl:3s} {s:7.3f} s/step  {1 / s:6.2f} it/s",
                      flush=True)


if __name__ == "__main__":
    main()
