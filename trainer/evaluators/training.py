"""Training an evaluator on real procedural images and measuring it on held-out ones.

``gan-trainer evaluator train sketches`` draws ``n_train`` examples from the training seeds and
``n_held_out`` from the held-out seeds (:mod:`trainer.evaluators.specs`), trains with Adam and a
cosine schedule (bf16 autocast where the CPU or GPU has it), and writes the evaluator with its
held-out scores in the card.

A spec with ``nuisance`` set (``sketches``) trains on half of each batch under :func:`nuisance`:
pixel noise, smooth colour blotches, greying and blur, the ways a generator's photo differs from a
rendered one without changing which objects it shows. An evaluator trained only on clean
renderings reads such blotches as extra objects (the clean ``sketches`` evaluator read 37 % of
the 16,000-step sketch2photo's one-object outputs wrongly, mostly as two or three objects, where
people see the one drawn). The spec's ``appearance`` regressions (how the clean photo looks) are
not learnt from the changed half, so the features keep colour. The card keeps the held-out
scores on clean images and the counts' under nuisance.
"""
from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone

import numpy as np
import torch
import torch.nn.functional as F

from trainer.device import autocast, resolve_device, resolve_precision
from trainer.evaluators import Evaluator, default_path
from trainer.evaluators.specs import HELD_OUT_SEED, IGNORE, TRAIN_SEED, get_spec
from trainer.modelfile import save_model
from trainer.nets.evaluator import EvaluatorNet
from trainer.progress import Progress


def _example(args):
    name, seed, size = args
    return get_spec(name).example(seed, size)


def make_examples(name: str, first_seed: int, n: int, workers: int = 0, desc: str = "examples",
                  size: int | None = None):
    """``n`` examples from seeds ``first_seed`` on: uint8 images (N, H, W, 3) and targets per head."""
    spec = get_spec(name)
    jobs = [(name, first_seed + k, size or spec.input_size) for k in range(n)]
    workers = workers or max(1, min(os.cpu_count() or 1, 8))
    bar = Progress(n, desc=desc, unit="img")
    images, targets = [], {h: [] for h in spec.heads}
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for img, t in (pool.map(_example, jobs, chunksize=32) if pool else map(_example, jobs)):
            images.append(img)
            for h in spec.heads:
                targets[h].append(t[h])
            bar.update()
    finally:
        if pool:
            pool.shutdown()
    bar.close()
    return np.stack(images), {h: np.asarray(v, dtype=np.float32 if spec.heads[h] == 1 else np.int64)
                              for h, v in targets.items()}


def nuisance(x: torch.Tensor, gen: torch.Generator, p: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """A fraction ``p`` of a batch in [-1, 1] (N, 3, H, W) with pixel noise (sigma up to 0.15), colour
    blotches (a random 4x4 or 8x8 colour field upsampled, amplitude up to 0.35), on a third a pull
    towards grey and on a third a 3x3 box blur; the objects stay where they are. Returns the batch
    and which images changed."""
    n, _, h, w = x.shape
    pick = torch.rand(n, generator=gen) < p
    if not pick.any():
        return x, pick
    y = x[pick].float()
    m = len(y)
    grid = 4 if torch.rand(1, generator=gen).item() < 0.5 else 8
    field = torch.randn(m, 3, grid, grid, generator=gen) * torch.rand(m, 1, 1, 1, generator=gen) * 0.35
    y = y + F.interpolate(field, size=(h, w), mode="bilinear", align_corners=False)
    y = y + torch.randn(y.shape, generator=gen) * torch.rand(m, 1, 1, 1, generator=gen) * 0.15
    grey = torch.rand(m, generator=gen) < 1 / 3  # towards grey by up to all the way (L1's muddy average)
    if grey.any():
        luma = (y[grey] * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        keep = torch.rand(int(grey.sum()), 1, 1, 1, generator=gen)
        y[grey] = keep * y[grey] + (1 - keep) * luma
    blur = torch.rand(m, generator=gen) < 1 / 3
    if blur.any():
        y[blur] = F.avg_pool2d(F.pad(y[blur], (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    x = x.clone()
    x[pick] = y.clamp(-1, 1).to(x.dtype)
    return x, pick


def forget_appearance(spec, targets: dict, changed: torch.Tensor) -> dict:
    """Appearance targets describe the clean image: not learnt (NaN) where nuisance changed it."""
    targets = dict(targets)
    for h in spec.appearance:
        targets[h] = targets[h].clone()
        targets[h][changed] = float("nan")
    return targets


def head_losses(spec, logits: dict, targets: dict) -> torch.Tensor:
    """Cross-entropy per class head (IGNORE targets skipped), MSE per regression head (NaN skipped)."""
    total = 0.0
    for h, n in spec.heads.items():
        out, t = logits[h].float(), targets[h]
        if n == 1:
            keep = ~torch.isnan(t)
            if keep.any():
                total = total + F.mse_loss(out[keep, 0], t[keep])
        elif (t != IGNORE).any():
            total = total + F.cross_entropy(out, t, ignore_index=IGNORE)
    return total


def train(name: str, out=None, n_train: int = 20000, n_held_out: int = 2000, steps: int = 3000,
          batch_size: int = 64, lr: float = 2e-3, width: int = 32, feature_dim: int = 128, device: str = "auto",
          precision: str = "auto", seed: int = 0, workers: int = 0, input_size: int | None = None,
          log=print) -> dict:
    spec = get_spec(name)
    size = input_size or spec.input_size
    out = out or default_path(name)
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    torch.manual_seed(seed)
    t0 = time.time()
    images, targets = make_examples(name, TRAIN_SEED, n_train, workers, desc=f"{name} train", size=size)
    held_images, held_targets = make_examples(name, HELD_OUT_SEED, n_held_out, workers, desc=f"{name} held-out",
                                              size=size)
    net_args = {"heads": spec.heads, "width": width, "feature_dim": feature_dim}
    net = EvaluatorNet(**net_args).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    warmup = max(1, steps // 30)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    x_all = torch.from_numpy(images)
    t_all = {h: torch.from_numpy(v) for h, v in targets.items()}
    gen = torch.Generator().manual_seed(seed)
    bar = Progress(steps, desc=f"train {name}", unit="step")
    net.train()
    perm, pos = torch.randperm(len(x_all), generator=gen), 0
    for step in range(steps):
        if pos + batch_size > len(perm):
            perm, pos = torch.randperm(len(x_all), generator=gen), 0
        idx = perm[pos:pos + batch_size]
        pos += batch_size
        x = x_all[idx].permute(0, 3, 1, 2).float() / 127.5 - 1
        t = {h: v[idx] for h, v in t_all.items()}
        if spec.nuisance:
            x, changed = nuisance(x, gen)
            t = forget_appearance(spec, t, changed)
        x = x.to(dev).contiguous(memory_format=torch.channels_last)
        t = {h: v.to(dev) for h, v in t.items()}
        with autocast(dev, dtype):
            loss = head_losses(spec, net(x), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.update(postfix=f"loss {loss.item():.4f}" if step % 20 == 0 else None)
    bar.close()
    net = net.to(memory_format=torch.contiguous_format).eval().cpu()
    card = {"kind": "evaluator", "dataset": name, "net": net_args, "input_size": size, "notes": spec.notes,
            "training": {"n_train": n_train, "steps": steps, "batch_size": batch_size, "lr": lr,
                        "nuisance": spec.nuisance, "train_seed": TRAIN_SEED, "held_out_seed": HELD_OUT_SEED,
                        "n_held_out": n_held_out,
                        "seconds": round(time.time() - t0, 1),
                        "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    evaluator = Evaluator(spec, net, card)
    card["held_out"] = spec.score(evaluator.predict(list(held_images)), held_targets)
    if spec.nuisance:
        noisy, changed = nuisance(torch.from_numpy(held_images).permute(0, 3, 1, 2).float() / 127.5 - 1,
                                  torch.Generator().manual_seed(seed + 1), p=1.0)
        noisy = ((noisy + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
        kept = {h: v for h, v in held_targets.items() if h not in spec.appearance}
        card["held_out_nuisance"] = spec.score(evaluator.predict(list(noisy)), kept)
    save_model(out, net.state_dict(), card)
    if log:
        log(f"wrote {out}: held-out " + ", ".join(f"{k} {v:.4f}" for k, v in card["held_out"].items()))
    return card
