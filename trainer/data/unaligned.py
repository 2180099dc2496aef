"""The unaligned layout of CycleGAN: ``trainA/`` and ``trainB/`` (``testA/``, ``testB/``) under the
dataset root, paired at random (or serially), each image with its own random crop and flip, as
junyanz's ``UnalignedDataset``."""
from __future__ import annotations

import random
from pathlib import Path

from torch.utils.data import Dataset

from trainer.data.imageio import ImageError, open_image_to_resize, scan_images
from trainer.data.transforms import Augment, load_size_for, resize_target, to_tensor


class UnalignedDataset(Dataset):
    """Keys ``(index, seed)``; returns ``{"A", "B", "A_path", "B_path"}``. The length is the larger
    domain's; B is drawn at random from the seed unless ``serial``."""

    def __init__(self, root, phase="train", image_size=256, load_size=None, preprocess="resize_and_crop",
                 flip=True, serial=False, log=print):
        self.root = Path(root)
        folders = {d: self.root / f"{phase}{d}" for d in "AB"}
        for d, folder in folders.items():
            if not folder.is_dir():
                raise ImageError(f"{folder}: no such folder (the unaligned layout needs {self.root}/{phase}A/ and "
                                 f"{self.root}/{phase}B/)")
        self.A = scan_images(folders["A"], log=log).images
        self.B = scan_images(folders["B"], log=log).images
        self.image_size = image_size
        self.load_size = load_size or load_size_for(image_size)
        self.preprocess, self.flip, self.serial = preprocess, flip, serial

    def __len__(self):
        return max(len(self.A), len(self.B))

    def _load(self, path, seed):
        im = open_image_to_resize(path, resize_target(seed, self.preprocess, self.load_size, self.image_size))
        return to_tensor(Augment.draw(seed, self.load_size, self.image_size, self.flip, self.preprocess, im.size)(im))

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, None)
        a_path = self.A[index % len(self.A)]
        if self.serial or seed is None:
            b_path = self.B[index % len(self.B)]
        else:
            b_path = self.B[random.Random(seed ^ 0xB).randrange(len(self.B))]
        seed_b = None if seed is None else seed ^ 0x5A5A5A
        return {"A": self._load(a_path, seed), "B": self._load(b_path, seed_b),
                "A_path": str(a_path), "B_path": str(b_path)}
