"""Super-resolution pairs made on the fly: a random high-resolution crop of any image in the
folder (``root/<phase>/`` when it exists, else ``root``) and its bicubic downscale by the factor,
as SRGAN trains (Ledig et al. 2017)."""
from __future__ import annotations

from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from trainer.data.imageio import open_image, scan_images
from trainer.data.transforms import Augment, to_tensor


def downscale(image: Image.Image, factor: int) -> Image.Image:
    """Bicubic downscale by ``factor`` (sizes rounded down, at least 1 pixel)."""
    return image.resize((max(1, image.width // factor), max(1, image.height // factor)), Image.BICUBIC)


class SuperResDataset(Dataset):
    """Returns ``{"LR", "HR", "path"}``: HR a ``crop_size`` crop (a random one when training, the
    centre when evaluating), LR its downscale by ``factor``."""

    def __init__(self, root, phase="train", crop_size=96, factor=4, flip=True, log=print):
        root = Path(root)
        folder = root / phase if (root / phase).is_dir() else (root / "train" if (root / "train").is_dir() else root)
        self.paths = scan_images(folder, log=log).images
        if crop_size % factor:
            raise ValueError(f"crop size {crop_size} is not a multiple of the factor {factor}")
        self.crop_size, self.factor, self.flip = crop_size, factor, flip

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, None)
        image = open_image(self.paths[index])
        if seed is None:  # evaluation: the centre crop
            x, y = max(0, (image.width - self.crop_size) // 2), max(0, (image.height - self.crop_size) // 2)
            aug = Augment(self.crop_size, self.crop_size, x, y, False, "crop")
        else:
            aug = Augment.draw(seed, self.crop_size, self.crop_size, self.flip, "crop", image.size)
        hr = aug(image)
        return {"LR": to_tensor(downscale(hr, self.factor)), "HR": to_tensor(hr), "path": str(self.paths[index])}
