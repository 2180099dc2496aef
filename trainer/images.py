"""Pictures made of tensors: the sample grids a run saves and the evaluation pictures."""
from __future__ import annotations

import torch
from PIL import Image

from trainer.data.transforms import to_uint8

GAP = 2  # pixels of white between the cells of a grid


def image_grid(rows: list[list[torch.Tensor]]) -> Image.Image:
    """Rows of equally sized RGB CHW tensors (values in [-1, 1]) as one RGB image, cells separated
    by 2 white pixels; a short row leaves its last cells white.

    Raises IndexError for no rows or an empty first row."""
    h, w = rows[0][0].shape[-2:]
    cols = max(len(r) for r in rows)
    grid = Image.new("RGB", (cols * w + (cols - 1) * GAP, len(rows) * h + (len(rows) - 1) * GAP), "white")
    for i, row in enumerate(rows):
        for j, t in enumerate(row):
            grid.paste(Image.fromarray(to_uint8(t)), (j * (w + GAP), i * (h + GAP)))
    return grid
