"""Inference precision on the bundled models: per model, the generator forward in fp32 and in
reduced precision (bf16 on a CPU with native bf16, on CUDA; fp16 where asked), their ratio, and
how far the reduced output is from fp32 in 8-bit levels over many procedural inputs.

    python bench/inference_precision.py [--models sketch2photo faces-style ...] [--inputs 16]
                                        [--rounds 7] [--steps 3] [--threads 1] [--precision bf16]
                                        [--device cpu]

Timing: each model's two translators (``trainer.api.load_model`` with precision fp32 and
``--precision``) run ``run_tensor`` on one input at the model's size (the generator forward with
the Translator's checks; sketch2photo without stroke normalisation, StyleGAN from a seed), timed
interleaved round by round (bench/timing.py); the median of the rounds is printed, as process
CPU time (at 1 thread the work done, whatever share of the cores the scheduler gave) and wall
time. Differences: ``run_array`` (what the studio shows) of each input under each control setting
listed in CASES, fp32 against reduced, as uint8: the largest difference (the goal: <= 2), the mean,
and the fraction of values off by more than 2. ``auto`` is what precision auto picks for the model
on this machine (a method whose reduced output was not measured to hold runs fp32 in auto).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from timing import machine_line, median, time_interleaved
from trainer import api

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("sketch2photo", "shapes-cyclegan", "faces-attributes", "superres-x4", "faces-style")
# model: (sample_input kind, input side, side given to the model, control settings compared)
CASES = {
    "sketch2photo": ("sketch", 128, 128, [{}, {"seed": 3}, {"strokes": False}, {"mode": "deterministic"},
                                          {"mode": "paper", "seed": 5}]),
    "shapes-cyclegan": ("photo", 64, 64, [{"direction": "AtoB"}, {"direction": "BtoA"},
                                          {"output": "reconstruction"}]),
    "faces-attributes": ("face", 64, 64, [{}, {"Blond_Hair": True}, {"Male": True}, {"Young": False}]),
    "superres-x4": ("photo", 128, 32, [{}]),
    "faces-style": (None, 0, 0, [{}, {"psi": 1.0}, {"crossover": 4}]),
}


def inputs(name: str, n: int) -> list:
    kind, side, size, _ = CASES[name]
    if kind is None:
        return [None] * n  # a generator from seeds: the seed is the input
    return [api.sample_input(kind, 1000 + k, side).resize((size, size)) for k in range(n)]


def differences(fp32, reduced, name: str, n: int) -> tuple[int, float, float]:
    """(max, mean, fraction > 2) of |fp32 - reduced| in 8-bit levels over the inputs and settings."""
    worst, means, over = 0, [], []
    for k, image in enumerate(inputs(name, n)):
        for controls in CASES[name][3]:
            c = {"seed": k, **controls} if image is None else controls
            a = fp32.run_array(image, **c).astype(np.int16)
            b = reduced.run_array(image, **c).astype(np.int16)
            d = np.abs(a - b)
            worst, means, over = max(worst, int(d.max())), means + [float(d.mean())], over + [float((d > 2).mean())]
    return worst, float(np.mean(means)), float(np.mean(over))


def forward(translator, name: str):
    """run_tensor on one input at the model's size."""
    kind, _, size, _ = CASES[name]
    if kind is None:
        return lambda: translator.run_tensor(seed=0)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    x = x.to(translator.device)
    extra = {"strokes": False} if any(c.name == "strokes" for c in translator.controls) else {}
    return lambda: translator.run_tensor(x, **extra)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--inputs", type=int, default=16, help="procedural inputs per model for the differences")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=3, help="forwards per variant and round")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: PyTorch's default)")
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp16"], help="the reduced precision")
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = api.resolve_device(a.device)
    print(machine_line(device))
    print(f"{'model':17s} {'auto':5s} {'fp32 ms':>8s} {a.precision + ' ms':>8s} {'ratio':>6s} {'wall ratio':>10s} "
          f"{'max diff':>8s} {'mean diff':>9s} {'>2':>8s}")
    for name in a.models:
        path = ROOT / "assets" / "models" / f"{name}.safetensors"
        fp32 = api.load_model(path, device, "fp32")
        reduced = api.load_model(path, device, a.precision)
        auto = api.load_model(path, device, "auto").precision
        t = time_interleaved({"fp32": forward(fp32, name), "reduced": forward(reduced, name)}, a.rounds, a.steps,
                             device)
        f32, red = median(t.cpu["fp32"]) * 1000, median(t.cpu["reduced"]) * 1000
        wall = median(t.wall["fp32"]) / median(t.wall["reduced"])
        worst, mean, over = differences(fp32, reduced, name, a.inputs)
        print(f"{name:17s} {auto:5s} {f32:8.1f} {red:8.1f} {f32 / red:5.2f}x {wall:9.2f}x {worst:8d} {mean:9.3f} "
              f"{over:8.5f}", flush=True)
    print(machine_line(device))


if __name__ == "__main__":
    main()
