"""Which pixels of a line drawing belong to which drawn object: a small U-Net trained on the
procedural sketches and their objects' visible masks, so that objects whose outlines touch or
overlap are told apart (the enclosure rule of :func:`trainer.region_codes.sketch_regions` joins
them: half of the two-object training scenes).

The net predicts two maps from the sketch (the contour-aware nuclei segmentation of Chen, Qi, Yu,
Heng, "DCAN: Deep Contour-Aware Networks for Accurate Gland Segmentation", CVPR 2016, in its
seed-and-grow form): **foreground**, the pixels any object covers; and **seeds**, each object's
pixels farther than ``SEED_MARGIN`` of the side from any other object or the background, so that
two touching objects' seeds never touch. :func:`segment` numbers the seeds' connected components
and grows them over the foreground; every grown seed is one object.

``gan-trainer segmenter train`` makes ``assets/segmenters/sketches.safetensors``: training
scenes from the evaluators' training seeds, held-out ones from their held-out seeds; the card keeps
the held-out fraction of scenes whose objects are found exactly (one region per object).
"""
from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import CancelledError, ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trainer.modelfile import ModelFileError, load_model, load_strict, save_model
from trainer.nets.unet import UnetGenerator, unet_depth
from trainer.region_codes import compact_labels, components, sketch_regions

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "segmenters"
SEED_MARGIN = 0.016  # a seed keeps this fraction of the side (2 px at 128) from any other label
MIN_SEED = 0.0004  # seeds smaller than this fraction of the image are dropped (6 px at 128)
MAX_GROWTH = 0.05  # seeds grow this fraction of the side at most (6 px at 128): the held-out scores are
# the same as unbounded growth, and scribbles (many seeds over wide foreground) stay cheap
SIZE = 128  # the side it reads (sketches are resized to it; the labels come back at the input's size)


def default_path() -> Path:
    return ASSETS / "sketches.safetensors"


def targets(masks: np.ndarray, size: int) -> np.ndarray:
    """The two target maps (2, size, size) float32 in {0, 1} from an (n, size, size) array of
    visible coverage (:func:`trainer.data.sketches.visible_masks`): foreground (coverage > 0.5 of
    some object) and seeds (object pixels with no other label within ``SEED_MARGIN`` of the side)."""
    t = torch.from_numpy(np.asarray(masks, np.float32))
    if not len(t):
        return np.zeros((2, size, size), np.float32)
    best, owner = t.max(0)
    label = torch.where(best > 0.5, owner + 1, 0)  # 0: background
    onehot = F.one_hot(label, len(t) + 1).permute(2, 0, 1).float()[None]
    r = max(1, round(SEED_MARGIN * size))
    near = F.max_pool2d(onehot, 2 * r + 1, 1, r)[0]  # which labels lie within r of each pixel
    seed = (label > 0) & (near.sum(0) == 1)
    return np.stack([(label > 0).numpy(), seed.numpy()]).astype(np.float32)


def _example(args):
    seed, size = args
    from trainer.data.sketches import render
    _, sketch, labels = render(seed, size, object_masks=True)
    return np.asarray(sketch, np.uint8), targets(labels["masks"], size), labels["masks"]


def make_examples(first_seed: int, n: int, size: int = SIZE, workers: int = 0):
    """``n`` scenes from seed ``first_seed`` on: sketches (n, size, size, 3) uint8, targets
    (n, 2, size, size) float32 and each scene's visible masks (a list)."""
    jobs = [(first_seed + k, size) for k in range(n)]
    workers = workers or max(1, min(os.cpu_count() or 1, 8))
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        out = list(pool.map(_example, jobs, chunksize=32) if pool else map(_example, jobs))
    finally:
        if pool:
            pool.shutdown()
    return (np.stack([o[0] for o in out]), np.stack([o[1] for o in out]), [o[2] for o in out])


def build(width: int = 8, size: int = SIZE) -> UnetGenerator:
    """The segmenter: pix2pix's U-Net, ``width`` channels at its first level, 2 output maps."""
    return UnetGenerator(3, 2, unet_depth(size), width, norm="batch")


def probabilities(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(N, 2, H, W) foreground and seed probabilities for sketches ``x`` (N, C, H, W) in [-1, 1]
    (resized to the net's side and back when they differ)."""
    h, w = x.shape[2:]
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    small = x if (h, w) == (SIZE, SIZE) else F.interpolate(x.float(), (SIZE, SIZE), mode="area")
    # fp32 with autocast off: at this size a CPU runs it faster than bf16 (7.3 against 9.1 ms, 1 thread)
    with torch.autocast(small.device.type, enabled=False):
        p = net(small.float()).float().add(1).mul(0.5)  # the U-Net's tanh, read as a probability
    return p if (h, w) == (SIZE, SIZE) else F.interpolate(p, (h, w), mode="bilinear", align_corners=False)


def _check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise CancelledError("object segmentation stopped: its render was cancelled")


def segment(net: torch.nn.Module, x: torch.Tensor, stop: threading.Event | None = None) -> torch.Tensor:
    """Objects of sketches ``x`` (N, C, H, W) in [-1, 1]: (N, H, W) int64, 0 for the background and
    1..K per object (numbered in raster order of first pixel). Seeds (components of the seed map
    above 0.5, less those under ``MIN_SEED`` of the image) grow over the foreground (above 0.5),
    one pixel a round, until the foreground is covered, nothing grows, or they have grown
    ``MAX_GROWTH`` of the side. No gradient. Once ``stop`` is set (its render was cancelled) it
    raises :class:`concurrent.futures.CancelledError` at the next step."""
    _check(stop)
    with torch.no_grad():
        n, _, h, w = x.shape
        was = net.training
        if was:  # a segmenter in training; the one a model file carries is in eval mode already
            net.eval()
        try:
            p = probabilities(net, x)
        finally:
            if was:
                net.train()
        _check(stop)
        fg, seeds = p[:, 0] > 0.5, (p[:, 1] > 0.5) & (p[:, 0] > 0.5)
        lab = components(seeds)
        _check(stop)
        if seeds.any():
            sizes = torch.bincount(lab.flatten(), minlength=n * h * w + 1)
            lab = torch.where(sizes[lab] >= max(1, round(MIN_SEED * h * w)), lab, 0)
        lab = lab.float()
        for _ in range(max(1, round(MAX_GROWTH * max(h, w)))):
            grown = F.max_pool2d(lab[:, None], 3, 1, 1)[:, 0]
            new = torch.where(fg & (lab == 0), grown, lab)
            if torch.equal(new, lab):
                break
            lab = new
        return compact_labels(lab.long())


def card_spec(net: UnetGenerator) -> dict:
    """The model card's entry for a segmenter net carried in another model file (net ``S``)."""
    return {"name": "unet", "args": {"input_nc": 3, "output_nc": 2, "num_downs": unet_depth(SIZE),
                                     "ngf": net.model.model[0].out_channels, "norm": "batch"}}


def object_regions(x: torch.Tensor, segmenter=None, stop: threading.Event | None = None) -> torch.Tensor:
    """(N, H, W) int64 object numbers (0: background) of sketches ``x`` (N, C, H, W) in [-1, 1]:
    the learned ``segmenter``'s (:func:`segment`, which ``stop`` can interrupt) or, without one, the
    enclosure rule's (:func:`trainer.region_codes.sketch_regions`)."""
    return sketch_regions(x) if segmenter is None else segment(segmenter, x, stop)


def load(path=None, device="cpu") -> torch.nn.Module:
    """The segmenter of ``path`` (default the bundled one) in eval mode. Raises
    :class:`ModelFileError` for a file that is not one."""
    path = Path(path).expanduser() if path else default_path()
    tensors, card = load_model(path)
    if card.get("kind") != "segmenter":
        raise ModelFileError(f"{path}: not an object segmenter (kind {card.get('kind')!r})")
    net = build(int(card.get("width", 16)), int(card.get("input_size", SIZE)))
    load_strict(net, {k[2:]: v for k, v in tensors.items() if k.startswith("S.")}, f"segmenter {path}")
    return net.eval().to(device)


def exact_rate(net, sketches: np.ndarray, masks: list) -> dict:
    """Held-out score: the fraction of scenes whose every object (coverage > 0.5, 6 px or more)
    has most of its pixels in one region of its own (none shared, none left out), overall and by
    object count; and the fraction of objects split (a second region holds over 20 % of it)."""
    found = {}
    split = objects = 0
    for i in range(0, len(sketches), 32):
        x = torch.from_numpy(sketches[i:i + 32]).permute(0, 3, 1, 2).float().div(127.5).sub(1)
        for lab, m in zip(segment(net, x), masks[i:i + 32]):
            owners = []
            for mm in np.asarray(m) > 0.5:
                if mm.sum() < 6:
                    continue
                v = lab[torch.from_numpy(mm)]
                v = v[v > 0]
                vals, cnt = torch.unique(v, return_counts=True)
                objects += 1
                split += int((cnt > 0.2 * mm.sum()).sum() > 1)
                owners.append(int(vals[cnt.argmax()]) if v.numel() >= 0.5 * mm.sum() else 0)
            ok = all(o > 0 for o in owners) and len(set(owners)) == len(owners)
            found.setdefault(len(owners), []).append(ok)
    every = [ok for v in found.values() for ok in v]
    return {"exact": float(np.mean(every)), "n": len(every), "split_objects": split / max(1, objects),
            **{f"exact_{k}_objects": float(np.mean(v)) for k, v in sorted(found.items()) if k > 0}}


def train(out=None, n_train: int = 8000, n_held_out: int = 600, steps: int = 8000, batch_size: int = 16,
          width: int = 8, lr: float = 2e-3, workers: int = 0, log=print) -> dict:
    """Train the segmenter on ``n_train`` procedural sketches (Adam, cosine schedule, binary cross
    entropy on both maps) and write it with its held-out scores (:func:`exact_rate`) to ``out``
    (default the bundled path). Returns the card."""
    from trainer.evaluators.specs import HELD_OUT_SEED, TRAIN_SEED
    from trainer.progress import Progress
    started = time.time()
    log(f"drawing {n_train} training and {n_held_out} held-out scenes")
    xs, ts, _ = make_examples(TRAIN_SEED, n_train, workers=workers)
    hx, _, hmasks = make_examples(HELD_OUT_SEED, n_held_out, workers=workers)
    torch.manual_seed(0)
    net = build(width)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999))
    x_all = torch.from_numpy(xs).permute(0, 3, 1, 2)
    t_all = torch.from_numpy(ts)
    g = torch.Generator().manual_seed(0)
    bar = Progress(steps, desc="segmenter", unit="step")
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        pick = torch.randint(len(x_all), (batch_size,), generator=g)
        x = x_all[pick].float().div(127.5).sub(1)
        flip = torch.rand(batch_size, generator=g) < 0.5
        x[flip], t = x[flip].flip(-1), t_all[pick].clone()
        t[flip] = t[flip].flip(-1)
        p = net(x).float().add(1).mul(0.5).clamp(1e-4, 1 - 1e-4)
        loss = F.binary_cross_entropy(p, t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.update(postfix=f"loss {loss.item():.4f}" if step % 50 == 0 else None)
    bar.close()
    net.eval()
    scores = exact_rate(net, hx, hmasks)
    card = {"kind": "segmenter", "dataset": "sketches", "input_size": SIZE, "width": width,
            "training": {"scenes": n_train, "steps": steps, "batch_size": batch_size, "lr": lr,
                         "seconds": round(time.time() - started),
                         "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")},
            "held_out": {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}}
    out = Path(out) if out else default_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(out, {f"S.{k}": v for k, v in net.state_dict().items()}, card, dtype=torch.float16)
    log(f"wrote {out}: held-out {card['held_out']}")
    return card
