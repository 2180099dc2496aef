"""Which reference layout a dataset folder is in, with a specific message when it is none.

The layouts are those of the reference implementations (junyanz's aligned and unaligned folders,
CelebA's attribute file, a plain image folder). Which layouts a method reads is the method's own
declaration (``Method.layouts``); :func:`check_layout` checks a folder against such a set."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from trainer.data.imageio import IMAGE_EXTENSIONS

#: layout name -> what it looks like on disk
LAYOUTS = {
    "aligned": "aligned (train/, val/, test/ with A|B side by side)",
    "unaligned": "unaligned (trainA/, trainB/, testA/, testB/)",
    "attributes": "attributes (images + list_attr_celeba.txt)",
    "image folder": "image folder (images, or one subfolder per class)",
}


def _images(folder: Path, limit: int = 50) -> list[Path]:
    out = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
            out.append(p)
            if len(out) >= limit:
                break
    return out


def detect(root) -> tuple[str, str]:
    """(layout, a one-line description with counts); raises ValueError naming what is wrong."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"{root}: {'a file, not a folder' if root.exists() else 'no such folder'}")
    if (root / "trainA").is_dir() and (root / "trainB").is_dir():
        a, b = len(_images(root / "trainA", 10 ** 6)), len(_images(root / "trainB", 10 ** 6))
        if not a or not b:
            raise ValueError(f"{root}: trainA/ has {a} and trainB/ {b} images; both need some")
        return "unaligned", f"unaligned: {a} images in trainA/, {b} in trainB/"
    if list(root.glob("list_attr_celeba.txt")) or list(root.glob("*/list_attr_celeba.txt")):
        n = len(_images(root, 10 ** 6))
        if not n:
            raise ValueError(f"{root}: an attribute file but no images")
        return "attributes", f"attributes: {n} images with list_attr_celeba.txt"
    if (root / "train").is_dir():
        sample = _images(root / "train", 20)
        if not sample:
            raise ValueError(f"{root}/train: no readable images")
        wide = 0
        for p in sample:
            try:
                with Image.open(p) as im:
                    wide += im.width == 2 * im.height
            except OSError:
                continue
        n = len(_images(root / "train", 10 ** 6))
        if wide == len(sample):
            return "aligned", f"aligned: {n} A|B pairs in train/"
        return "image folder", f"image folder: {n} images in train/"
    n = len(_images(root, 10 ** 6))
    if not n:
        raise ValueError(f"{root}: no images found (looked for {', '.join(IMAGE_EXTENSIONS[:5])}, ...)")
    return "image folder", f"image folder: {n} images"


def check_layout(root, wanted, who: str) -> str:
    """The description of ``root``'s layout (:func:`detect`), or ValueError when it is none of
    ``wanted`` (layout names of :data:`LAYOUTS`; empty: any) saying what ``who`` (a method's name)
    needs instead."""
    layout, text = detect(root)
    wanted = set(wanted) or set(LAYOUTS)
    if layout not in wanted:
        need = " or ".join(LAYOUTS[w] for w in sorted(wanted))
        raise ValueError(f"{Path(root).name} is {text.split(':')[0]}; {who} needs {need}")
    return text
