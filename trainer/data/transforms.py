"""Preprocessing of the reference implementation (resize to load size, random crop, random flip),
driven by an explicit per-sample seed so that any step of a run can be reproduced exactly."""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

PREPROCESS_MODES = ("resize_and_crop", "crop", "resize")


@dataclass(frozen=True)
class Augment:
    """The geometry drawn for one sample; the same one is applied to every image of a pair."""
    load_size: int
    crop_size: int
    x: int = 0
    y: int = 0
    flip: bool = False
    mode: str = "resize_and_crop"

    @classmethod
    def draw(cls, seed: int | None, load_size: int, crop_size: int, flip: bool, mode: str,
             image_size: tuple[int, int]) -> "Augment":
        """Draw crop offsets and flip from ``seed``; ``seed=None`` means evaluation: resize to
        the crop size, no crop offset, no flip."""
        if mode not in PREPROCESS_MODES:
            raise ValueError(f"unknown preprocess {mode!r}; choose one of {', '.join(PREPROCESS_MODES)}")
        if seed is None:
            return cls(crop_size, crop_size, 0, 0, False, "resize")
        rng = random.Random(seed)
        w, h = (load_size, load_size) if mode == "resize_and_crop" else image_size
        x = rng.randint(0, max(0, w - crop_size))
        y = rng.randint(0, max(0, h - crop_size))
        return cls(load_size, crop_size, x, y, flip and rng.random() > 0.5, mode)

    def __call__(self, im: Image.Image) -> Image.Image:
        if self.mode == "resize_and_crop":
            im = im.resize((self.load_size, self.load_size), Image.BICUBIC)
        elif self.mode == "resize":
            im = im.resize((self.crop_size, self.crop_size), Image.BICUBIC)
        if self.mode != "resize":
            if min(im.size) < self.crop_size:  # small images are scaled up to the crop first
                scale = self.crop_size / min(im.size)
                im = im.resize((max(self.crop_size, round(im.width * scale)),
                                max(self.crop_size, round(im.height * scale))), Image.BICUBIC)
            x, y = min(self.x, im.width - self.crop_size), min(self.y, im.height - self.crop_size)
            im = im.crop((x, y, x + self.crop_size, y + self.crop_size))
        if self.flip:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        return im


def resize_target(seed: int | None, mode: str, load_size: int, crop_size: int) -> int | None:
    """The size (px) :meth:`Augment.draw`'s geometry resizes the whole image to, or None when it
    crops the image's own pixels (``crop``): what :func:`trainer.data.imageio.open_image_to_resize`
    may reduce a large image towards."""
    if seed is None or mode == "resize":
        return crop_size
    return load_size if mode == "resize_and_crop" else None


def load_size_for(crop_size: int) -> int:
    """The reference loads 286 for a 256 crop; other sizes scale proportionally (143 for 128)."""
    return int(round(crop_size * 286 / 256))


def to_tensor(im: Image.Image) -> torch.Tensor:
    """8-bit RGB PIL image -> float tensor CHW in [-1, 1]."""
    arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """Tensor CHW or NCHW in [-1, 1] -> uint8 HWC (or NHWC) array."""
    t = t.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).cpu()
    return (t.permute(1, 2, 0) if t.dim() == 3 else t.permute(0, 2, 3, 1)).numpy()
