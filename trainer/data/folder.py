"""Image folders: a folder of images (unlabelled), or one subfolder per class (RaFD's layout,
torchvision's ImageFolder), optionally under ``train/`` and ``test/``."""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from trainer.data.attributes import load_square
from trainer.data.imageio import ImageError, scan_images


def class_names(root, phase="train") -> list[str]:
    """The class subfolders of a class-folder dataset (under ``phase/`` when it exists), without
    reading any image."""
    root = Path(root)
    if phase and (root / phase).is_dir():
        root = root / phase
    if not root.is_dir():
        raise ImageError(f"{root}: no such folder")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


class FolderDataset(Dataset):
    """Returns ``{"image", "class_index", "path"}``; ``classes`` lists the class names (empty when
    the images are not in class subfolders)."""

    def __init__(self, root, phase="train", image_size=64, crop_size=0, flip=True, log=print):
        root = Path(root)
        if not root.is_dir():
            raise ImageError(f"{root}: no such folder")
        if (root / phase).is_dir():
            root = root / phase
        elif (root / "train").is_dir():  # no such split (val): the training images, never the split folders
            root = root / "train"
        self.classes = class_names(root, phase="")  # root is already the phase folder
        self.items = []
        if self.classes:
            for i, name in enumerate(self.classes):
                self.items += [(p, i) for p in scan_images(root / name, log=log).images]
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
