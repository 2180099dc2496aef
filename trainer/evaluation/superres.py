"""Super-resolution (SRResNet / SRGAN): PSNR and SSIM of the model's upscale of a bicubic
downscale against the original, next to plain bicubic upscaling of the same input.

Ground truth: procedural photos at ``size`` (default 128 px) from held-out seeds, or the images
of a folder (``test/`` when it has one), centre-cropped to a multiple of the scale.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from trainer.data.imageio import open_image, scan_images
from trainer.data.superres import downscale
from trainer.evaluation import EvaluationError, bar, means, score_into
from trainer.evaluators.specs import EVAL_SEED
from trainer.metrics import psnr, ssim


def procedural_items(n: int, size: int, seed: int = EVAL_SEED):
    from trainer.data.sketches import render
    for k in range(n):
        yield render(seed + k, size)[0]


def folder_items(root, n: int | None):
    root = Path(root)
    folder = root / "test" if (root / "test").is_dir() else root
    paths = scan_images(folder, log=None).images[:n]
    if not paths:
        raise EvaluationError(f"no images in {folder}")
    for p in paths:
        yield open_image(p)


def evaluate(translator, data=None, n=None, progress=True, size=128, **_):
    scale = translator.scale
    n = n or 100
    items = procedural_items(n, size) if data is None else folder_items(data, n)
    rows = {}
    b = bar(n, "superres", progress)
    for hr in items:
        w, h = (hr.width // scale) * scale, (hr.height // scale) * scale
        if w == 0 or h == 0:
            raise EvaluationError(f"an image of {hr.size} is smaller than the scale {scale}")
        hr = hr.convert("RGB").crop(((hr.width - w) // 2, (hr.height - h) // 2, (hr.width - w) // 2 + w,
                                     (hr.height - h) // 2 + h))
        lr = downscale(hr, scale)
        out = translator.run_array(lr)
        bicubic = np.asarray(lr.resize(hr.size, Image.BICUBIC))
        truth = np.asarray(hr)
        score_into(rows, "", out, truth, psnr=psnr, ssim=ssim)
        score_into(rows, "_bicubic", bicubic, truth, psnr=psnr, ssim=ssim)
        b.update()
    b.close()
    metrics = {"n": len(rows["psnr"]), "scale": scale, **means(rows)}
    metrics["psnr_gain"] = metrics["psnr"] - metrics["psnr_bicubic"]
    return metrics
