"""The attributes layout of CelebA: an image folder and ``list_attr_celeba.txt`` (a count line, a
header line of attribute names, then one row per image: file name and 1/-1 values), with
``list_eval_partition.txt`` for the splits when present. ``selected_attrs`` picks the domains;
center crop (178 for CelebA) then resize, as yunjey/stargan does."""
from __future__ import annotations

import random
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from trainer.data.imageio import ImageError, open_image_to_resize
from trainer.data.transforms import to_tensor
from trainer.errors import AttributeFileError  # noqa: F401  (re-exported)

DEFAULT_ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
HAIR_COLOURS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]


def parse_attr_file(path, selected: list[str] | None = None) -> tuple[list[str], list[tuple[str, list[bool]]]]:
    """(attribute names, [(file name, values of ``selected`` or of all)]), checking every line."""
    path = Path(path)
    if not path.is_file():
        raise AttributeFileError(f"{path}: no such attribute file")
    lines = path.read_text(errors="replace").splitlines()
    if len(lines) < 2:
        raise AttributeFileError(f"{path}: expected a count line and a header line")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise AttributeFileError(f"{path}, line 1: expected the number of images, found {lines[0][:40]!r}") from None
    names = lines[1].split()
    if not names:
        raise AttributeFileError(f"{path}, line 2: expected the attribute names")
    selected = list(selected) if selected else names
    missing = [a for a in selected if a not in names]
    if missing:
        raise AttributeFileError(f"{path}: no attribute {', '.join(missing)} in the header (line 2); "
                                 f"it has {', '.join(names)}")
    cols = [names.index(a) for a in selected]
    rows = []
    for no, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise AttributeFileError(f"{path}, line {no}: expected a file name and {len(names)} values, "
                                     f"found {len(parts)} fields")
        values = parts[1:]
        bad = [v for v in values if v not in ("1", "-1", "0")]
        if bad:
            raise AttributeFileError(f"{path}, line {no}: attribute values must be 1 or -1, found {bad[0]!r}")
        rows.append((parts[0], [values[c] == "1" for c in cols]))
    if len(rows) != count:
        raise AttributeFileError(f"{path}: line 1 says {count} images but {len(rows)} rows follow")
    return selected, rows


def read_partition(path) -> dict[str, int]:
    out = {}
    for no, line in enumerate(Path(path).read_text().splitlines(), start=1):
        parts = line.split()
        if parts:
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise AttributeFileError(f"{path}, line {no}: expected 'file 0|1|2'")
            out[parts[0]] = int(parts[1])
    return out


def split_rows(rows, root: Path, phase: str):
    """The rows of ``phase``: from list_eval_partition.txt if present (0 train, 1 val, 2 test), else
    the reference rule (shuffle with seed 1234, the first 2000, or 10 % if fewer, are test)."""
    part_file = root / "list_eval_partition.txt"
    if part_file.is_file():
        part = read_partition(part_file)
        want = {"train": 0, "val": 1, "test": 2}[phase]
        return [r for r in rows if part.get(r[0], 0) == want]
    rows = list(rows)
    random.Random(1234).shuffle(rows)
    n_test = min(2000, max(1, len(rows) // 10))
    return rows[n_test:] if phase == "train" else rows[:n_test]


def center_crop(im: Image.Image, crop: int) -> Image.Image:
    if crop <= 0 or (im.width <= crop and im.height <= crop):
        return im
    w, h = min(crop, im.width), min(crop, im.height)
    x, y = (im.width - w) // 2, (im.height - h) // 2
    return im.crop((x, y, x + w, y + h))


def load_square(path, crop_size: int, image_size: int, flip: bool, seed: int | None) -> torch.Tensor:
    """StarGAN's preprocessing: center crop, resize to a square, a random flip when training."""
    im = open_image_to_resize(path, image_size if crop_size <= 0 else None)  # a crop reads native pixels
    im = center_crop(im, crop_size).resize((image_size, image_size), Image.BICUBIC)
    if flip and seed is not None and random.Random(seed).random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    return to_tensor(im)


def find_image_folder(root: Path) -> Path:
    for name in ("images", "img_align_celeba", "Img/img_align_celeba"):
        if (root / name).is_dir():
            return root / name
    return root


class AttributeDataset(Dataset):
    """Returns ``{"image", "label" (float, one per selected attribute), "path"}``."""

    def __init__(self, root, attr_file="", selected_attrs=None, phase="train", image_size=128, crop_size=0,
                 flip=True, log=print):
        self.root = Path(root)
        attr_path = Path(attr_file) if attr_file else self.root / "list_attr_celeba.txt"
        if not attr_path.is_file():
            raise ImageError(f"{attr_path}: no attribute file (the attributes layout needs an image folder and "
                             "list_attr_celeba.txt)")
        self.attrs, rows = parse_attr_file(attr_path, selected_attrs or DEFAULT_ATTRS)
        self.folder = find_image_folder(self.root)
        rows = split_rows(rows, self.root, phase)
        present = [r for r in rows if (self.folder / r[0]).is_file()]
        if len(present) < len(rows) and log:
            log(f"skipped {len(rows) - len(present)} rows of {attr_path.name} whose image is missing in {self.folder}")
        if not present:
            raise ImageError(f"{self.folder}: none of the images listed in {attr_path.name} for '{phase}' is there")
        self.rows, self.image_size, self.crop_size, self.flip = present, image_size, crop_size, flip

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, None)
        name, values = self.rows[index]
        image = load_square(self.folder / name, self.crop_size, self.image_size, self.flip, seed)
        return {"image": image, "label": torch.tensor(values, dtype=torch.float32), "path": name}
