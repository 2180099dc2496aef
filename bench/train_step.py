"""Seconds per training step of a preset: the reference implementation's configuration (fp32,
NCHW, PyTorch's default for-loop Adam, as junyanz/pytorch-CycleGAN-and-pix2pix runs on this
device; oneDNN's direct convolutions: no small-map products, no Winograd) against GAN Studio's
(fused Adam; bf16 autocast; channels_last; the small-map products; Winograd in float32 on the CPU).

    python bench/train_step.py pix2pix-sketches pix2pix-facades [--rounds 5] [--steps 3]
    python bench/train_step.py pix2pix-facades --profile [--top 15] [--threads 1] [--variants bf16]

Batches are made once, so the figure is the step itself. Variants are interleaved round by
round and the median is reported, because a shared 2-core machine is noisy. ``--profile`` times
nothing: it runs ``--steps`` steps of each variant under torch.profiler (CPU, shapes recorded)
and prints the ``--top`` operators by self CPU time, what docs/performance.md's "Training step:
profile and changes" reads.

Measured on a lent H100 (torch 2.11, 2026-11-23, --rounds 5 --steps 10; reference = fp32 with
torch's default foreach Adam on CUDA): pix2pix-facades 0.017 s/step, fp32 (fused Adam) 1.28x,
bf16 1.03x, bf16 + channels_last 1.11x; cyclegan-horse2zebra 0.099 s, 1.22x / 1.11x / 1.10x;
stargan-celeba 0.029 s, 1.06x / 1.00x / 1.08x; pix2pix-sketches 0.019 s, 1.35x / 1.18x / 1.21x.
At batch 1-16 and 128-256 px these steps are bound by kernel launches, not arithmetic, so bf16
autocast (extra casts) does not pay on that GPU and the 1.8x target is not met there; CUDA graphs
or torch.compile(mode="reduce-overhead") are the next step for CUDA.
"""
from __future__ import annotations

import argparse

import torch

from timing import load_average, machine_line, median, time_interleaved
from trainer import config, registry
from trainer.device import resolve_device
from trainer.registry import get_method

VARIANTS = {  # name: (precision, channels_last, reference optimiser)
    "reference (fp32, loop Adam)": ("off", False, True),
    "fp32": ("off", False, False),
    "bf16": ("bf16", False, False),
    "bf16 + channels_last": ("bf16", True, False),
    "fp32 + channels_last": ("off", True, False),
}


def build(preset: str, device: torch.device, precision: str, channels_last: bool, reference_adam: bool, extra,
          warmup: int | None = None):
    """The method of ``preset`` in a variant's configuration and a synthetic batch, after ``warmup``
    training steps (default: two n_critic cycles)."""
    raw = config.read_toml(config.preset_path(preset)).get("data", {})
    root = [] if raw.get("synth") or raw.get("root") else ["data.root=."]  # user-data presets: batches are synthetic
    plain = ["train.winograd=off"] if reference_adam else []  # the reference's direct convolutions
    cfg = registry.load_config(preset, [f"train.precision={precision}", *root, *plain, *extra])
    torch.manual_seed(0)
    amp = None if precision == "off" else torch.bfloat16
    method = get_method(cfg.method)(cfg, device, amp, channels_last)
    if reference_adam:  # torch.optim.Adam's default: a for-loop on CPU tensors, foreach on CUDA ones
        for opt in method.optimizers.values():
            for group in opt.param_groups:
                group["fused"], group["foreach"] = False, (None if device.type == "cuda" else False)
        from trainer.nets.small_conv import SmallMapConv2d, SmallMapConvTranspose2d
        from trainer.nets.stylegan import ModulatedConv2d
        for net in method.nets.values():  # rosinality trains with the grouped (fused=True) modulated conv
            for m in net.modules():
                if isinstance(m, ModulatedConv2d):
                    m.grouped = True
                if isinstance(m, (SmallMapConv2d, SmallMapConvTranspose2d)):  # oneDNN's convolution, as theirs
                    m.direct = True
        if hasattr(method, "plain_passes"):  # StarGAN: yunjey's passes, without the step's shortcuts
            method.plain_passes = True
    s, b = cfg.data.image_size, cfg.train.batch_size
    g = torch.Generator().manual_seed(0)
    image = lambda: torch.rand(b, 3, s, s, generator=g) * 2 - 1  # noqa: E731
    if cfg.method == "stargan":
        labels = (torch.rand(b, len(cfg.model.selected_attrs), generator=g) > 0.5).float()
        batch = {"image": image(), "label": labels}
    elif cfg.method in ("dcgan", "wgan_gp"):
        n_classes = max(1, len(getattr(method, "classes", [])))
        batch = {"image": image(), "class_index": torch.randint(0, n_classes, (b,), generator=g)}
    elif cfg.method in ("stylegan", "fast_style"):
        batch = {"image": image()}
    elif cfg.method == "srgan":
        k = cfg.model.scale
        batch = {"HR": image(), "LR": torch.rand(b, 3, s // k, s // k, generator=g) * 2 - 1}
    else:
        batch = {"A": image(), "B": image()}
    for _ in range(2 * getattr(cfg.model, "n_critic", 1) if warmup is None else warmup):
        method.train_step(batch)
    return method, batch


def profile(preset: str, variant: str, method, batch, steps: int, top: int) -> None:
    """``steps`` steps of ``method`` under torch.profiler; the ``top`` operators by self CPU time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            method.train_step(batch)
    print(f"\n== {preset}, {variant}: {steps} steps, top {top} operators by self CPU time", flush=True)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=40),
          flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("presets", nargs="+")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=5, help="steps per round and variant (StarGAN: a multiple of "
                   "n_critic, so that G steps are counted fairly)")
    p.add_argument("--device", default="auto")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--warmup", type=int, default=None, help="steps before timing (default: two n_critic cycles)")
    p.add_argument("--profile", action="store_true", help="profile --steps steps per variant instead of timing")
    p.add_argument("--top", type=int, default=15, help="operators --profile lists")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    if device.type == "cuda":  # as trainer.run does (and the reference's train.py), for every variant
        torch.backends.cudnn.benchmark = True
    print(machine_line(device))
    for preset in a.presets:
        made = {v: build(preset, device, *VARIANTS[v], a.set, warmup=a.warmup) for v in a.variants}
        if a.profile:
            for v, (m, b) in made.items():
                profile(preset, v, m, b, a.steps, a.top)
            continue
        timed = time_interleaved({v: (lambda m=m, b=b: m.train_step(b)) for v, (m, b) in made.items()},
                                 a.rounds, a.steps, device)
        base, base_cpu = median(timed.wall[a.variants[0]]), median(timed.cpu[a.variants[0]])
        for v, ts in timed.wall.items():
            med, cpu = median(ts), median(timed.cpu[v])
            print(f"{preset:20s} {v:28s} {med:7.3f} s/step (min {min(ts):.3f})  {base / med:5.2f}x   "
                  f"CPU {cpu:7.3f} s/step  {base_cpu / cpu:5.2f}x", flush=True)
        print(f"load average {load_average()}", flush=True)


if __name__ == "__main__":
    main()
