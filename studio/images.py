"""Conversions between uint8 arrays, PIL images and QImages (on the UI thread)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtGui import QImage


def array_to_qimage(array: np.ndarray) -> QImage:
    """uint8 HWC RGB (or HW grey) -> a QImage that owns its pixels."""
    a = np.ascontiguousarray(array)
    if a.ndim == 2:
        return QImage(a.data, a.shape[1], a.shape[0], a.strides[0], QImage.Format_Grayscale8).copy()
    return QImage(a.data, a.shape[1], a.shape[0], a.strides[0], QImage.Format_RGB888).copy()


def qimage_to_array(image: QImage) -> np.ndarray:
    """QImage -> uint8 HWC RGB copy."""
    image = image.convertToFormat(QImage.Format_RGB888)
    h, w, bpl = image.height(), image.width(), image.bytesPerLine()
    buf = np.frombuffer(image.constBits(), np.uint8, count=h * bpl).reshape(h, bpl)
    return buf[:, :w * 3].reshape(h, w, 3).copy()


def side_by_side(arrays: list[np.ndarray], gap: int = 4) -> Image.Image:
    """Arrays (any sizes) in a row on white, top-aligned, as one PIL image."""
    w = sum(a.shape[1] for a in arrays) + gap * (len(arrays) - 1)
    h = max(a.shape[0] for a in arrays)
    out = Image.new("RGB", (w, h), "white")
    x = 0
    for a in arrays:
        out.paste(Image.fromarray(a), (x, 0))
        x += a.shape[1] + gap
    return out


def grid(rows: list[list[np.ndarray]], gap: int = 4) -> Image.Image:
    """Rows of arrays as one image (rows stacked, each row side by side)."""
    images = [side_by_side(r, gap) for r in rows]
    out = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images) + gap * (len(images) - 1)),
                    "white")
    y = 0
    for i in images:
        out.paste(i, (0, y))
        y += i.height + gap
    return out


def with_suffix(path, suffix: str) -> Path:
    """``path`` as given, or with ``suffix`` when it has none (a name typed without .png)."""
    path = Path(path)
    if path.name.endswith(".") and path.name.strip("."):  # "g." -> g.png, not g..png
        path = path.with_name(path.name.rstrip("."))
    return path if path.suffix else path.with_suffix(suffix)
