"""The aligned layout of pix2pix: each file holds A and B side by side, in ``train/``, ``val/``
and ``test/`` folders under the dataset root (junyanz's ``AlignedDataset``)."""
from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from trainer.data.imageio import ImageError, open_image_to_resize, scan_images
from trainer.data.transforms import Augment, load_size_for, resize_target, to_tensor


def split_pair(im):
    """Split an AB image down the middle into (A, B)."""
    w, h = im.size
    half = w // 2
    return im.crop((0, 0, half, h)), im.crop((half, 0, 2 * half, h))


class AlignedDataset(Dataset):
    """Pairs (A, B) read from ``root/phase``; keys are ``(index, seed)`` with ``seed=None`` for
    evaluation. Returns ``{"A", "B", "path"}`` with A the input for ``direction == "AtoB"``."""

    def __init__(self, root, phase="train", image_size=256, load_size=None, preprocess="resize_and_crop",
                 flip=True, direction="AtoB", log=print):
        if direction not in ("AtoB", "BtoA"):
            raise ValueError(f"direction must be AtoB or BtoA, got {direction!r}")
        self.root = Path(root)
        folder = self.root / phase
        if not folder.is_dir():
            raise ImageError(f"{folder}: no such folder (the aligned layout needs {self.root}/{phase}/ "
                             "with A and B side by side in each image)")
        self.paths = scan_images(folder, log=log).images
        self.image_size = image_size
        self.load_size = load_size or load_size_for(image_size)
        self.preprocess, self.flip, self.direction = preprocess, flip, direction

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, None)
        path = self.paths[index]
        target = resize_target(seed, self.preprocess, self.load_size, self.image_size)
        a, b = split_pair(open_image_to_resize(path, target, pair=True))
        aug = Augment.draw(seed, self.load_size, self.image_size, self.flip, self.preprocess, a.size)
        a, b = to_tensor(aug(a)), to_tensor(aug(b))
        if self.direction == "BtoA":
            a, b = b, a
        return {"A": a, "B": b, "path": str(path)}
