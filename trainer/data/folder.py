"""Image folders: a folder of images (unlabelled), or one subfolder per class (RaFD's layout,
torchvision's ImageFolder), optionally under ``train/`` and ``test/``."""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from trainer.data.attributes import load_square
from trainer.data.imageio import ImageError, scan_images


class FolderDataset(Dataset):
    """Returns ``{"image", "class_index", "path"}``; ``classes`` lists the class names (empty when
    the images are not in class subfolders)."""

    def __init__(self, root, phase="train", image_size=64, crop_size=0, flip=True, log=print):
        root = Path(root)
        if not root.is_dir():
            raise ImageError(f"{root}: no such folder")
        if (root / phase).is_dir():
            root = root / phase
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        self.classes = [p.name for p in subdirs]
        self.items = []
        if subdirs:
            for i, d in enumerate(subdirs):
                self.items += [(p, i) for p in scan_images(d, log=log).images]
        else:
            self.items = [(p, -1) for p in scan_images(root, log=log).images]
        self.root, self.image_size, self.crop_size, self.flip = root, image_size, crop_size, flip

    def __len__(self):
        return len(self.items)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, None)
        path, cls = self.items[index]
        image = load_square(path, self.crop_size, self.image_size, self.flip, seed)
        return {"image": image, "class_index": torch.tensor(cls), "path": str(path)}
