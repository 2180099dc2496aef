"""Sample inputs of a model's own domain, so that a page shows a result as soon as a model loads:
a combo box of numbered samples (the Attributes page's "Pick a sample face...", as one widget), and
the samples themselves, drawn by the procedural generator of the dataset the model card names
(shaded photos or flat cartoons for a shapes CycleGAN, photos for super-resolution), or taken from
the model's training folder when that is on this machine. Domains are named from the card too, so
a direction reads "photo -> cartoon", not "AtoB"."""
from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox

from trainer import api

SAMPLES = 12
SAMPLE_SEED = 1000  # seeds from here on: the procedural generators' own seeds, not the training ones (0...)

# procedural dataset -> (name of domain A, name of domain B); one name for a dataset of one domain
DOMAIN_NAMES = {"shapes-unpaired": ("photo", "cartoon"), "sketches": ("sketch", "photo"), "photos": ("photo",),
                "shapes": ("photo",), "faces": ("face",), "expressions": ("face",)}
SIDE_FOLDERS = {"A": ("testA", "trainA", "valA"), "B": ("testB", "trainB", "valB"), "": ("test", "val", "train", "")}


def dataset_of(card: dict) -> str:
    return str((card.get("training") or {}).get("dataset") or "")


def domain_names(card: dict) -> tuple[str, str]:
    """(domain A, domain B) of a model: the card's ``domain_names`` if it has them, else those of its
    procedural dataset, else a folder named like ``horse2zebra``, else ("A", "B")."""
    named = card.get("domain_names")
    if isinstance(named, (list, tuple)) and len(named) == 2 and all(isinstance(n, str) and n for n in named):
        return named[0], named[1]
    dataset = dataset_of(card)
    if dataset in DOMAIN_NAMES:
        names = DOMAIN_NAMES[dataset]
        return names[0], names[-1]
    m = re.fullmatch(r"([a-z]+)_?2_?([a-z]+)", Path(dataset).name.lower())
    return (m.group(1), m.group(2)) if m else ("A", "B")


def direction_label(card: dict, direction: str) -> str:
    """``AtoB`` as "photo -> cartoon" (its domains), ``BtoA`` the other way round."""
    a, b = domain_names(card)
    return f"{b} -> {a}" if direction == "BtoA" else f"{a} -> {b}"


def input_side(card: dict, direction: str | None = None) -> str:
    """Which domain a model reads: "A" or "B" for a translation (its direction, or the card's), ""
    for a model of one domain (super-resolution, style transfer)."""
    if card.get("task") in ("superres", "stylize"):
        return ""
    return "B" if (direction or card.get("direction") or "AtoB") == "BtoA" else "A"


def input_domain(card: dict, direction: str | None = None) -> str:
    side = input_side(card, direction)
    a, b = domain_names(card)
    if side == "":
        dataset = dataset_of(card)
        return DOMAIN_NAMES[dataset][0] if dataset in DOMAIN_NAMES else "photo"
    return a if side == "A" else b


def _folder_images(card: dict, side: str) -> list[Path]:
    """The images of the model's training folder (its test split first) for ``side``, if that folder
    is on this machine."""
    root = Path(dataset_of(card)).expanduser()
    if not dataset_of(card) or not root.is_absolute() or not root.is_dir():
        return []
    for sub in SIDE_FOLDERS[side]:
        folder = root / sub if sub else root
        if folder.is_dir():
            found = sorted(p for p in folder.iterdir() if p.suffix.lower() in api.IMAGE_EXTENSIONS)[:SAMPLES]
            if found:
                return found
    return []


def has_samples(card: dict, direction: str | None = None) -> bool:
    side = input_side(card, direction)
    return dataset_of(card) in DOMAIN_NAMES or bool(_folder_images(card, side))


def sample_image(card: dict, index: int, direction: str | None = None):
    """Sample ``index`` (0...) of the input domain of a model with ``direction``: a PIL image, or None
    when its card names no dataset this can draw or find. A sample of the same index shows the same
    scene in either domain of a shapes CycleGAN."""
    size = max(64, int(card.get("image_size") or 128))
    side = input_side(card, direction)
    dataset, seed = dataset_of(card), SAMPLE_SEED + index
    if dataset == "shapes-unpaired":
        return api.sample_input("cartoon" if side == "B" else "photo", seed, size)
    if dataset in ("sketches", "photos", "shapes"):
        return api.sample_input("sketch" if dataset == "sketches" and side == "A" else "photo", seed, size)
    if dataset in ("faces", "expressions"):
        return api.sample_input("face", seed, size)
    paths = _folder_images(card, side)
    if paths:
        return api.open_image(paths[index % len(paths)])
    return None


class SamplePicker(QComboBox):
    """"Sample <domain>..." and numbered samples; ``chosen(index)`` when the user picks one, never
    for the first, placeholder entry."""
    chosen = Signal(int)

    def __init__(self, noun: str = "input", count: int = SAMPLES, parent=None):
        super().__init__(parent)
        self.count_ = count
        self.set_noun(noun)
        self.currentIndexChanged.connect(self._changed)

    def set_noun(self, noun: str) -> None:
        """Name the samples after the domain ("Sample cartoon 3"), keeping the one picked."""
        self.noun = noun
        index = self.currentIndex()
        self.blockSignals(True)
        self.clear()
        self.addItem(f"Sample {noun}...", None)
        for i in range(self.count_):
            self.addItem(f"Sample {noun} {i + 1}", i)
        self.setCurrentIndex(max(0, index))
        self.blockSignals(False)
        self.setToolTip(f"A {noun} to try the model on, drawn like its training data")

    def picked(self) -> int | None:
        return self.currentData()

    def reset(self, index: int | None = None) -> None:
        """Show sample ``index`` as picked, or (None) the placeholder (the input is no longer a
        sample), silently: the page has loaded it itself."""
        self.blockSignals(True)
        self.setCurrentIndex(0 if index is None else index + 1)
        self.blockSignals(False)

    def _changed(self, i: int) -> None:
        index = self.itemData(i)
        if index is not None:
            self.chosen.emit(index)
