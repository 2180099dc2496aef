"""Pictures made of tensors: the sample grids a run saves and the evaluation pictures."""
from __future__ import annotations

import textwrap

import torch
from PIL import Image, ImageDraw, ImageFont

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


def with_caption(image: Image.Image, text: str) -> Image.Image:
    """``image`` above a white strip holding ``text`` in black (Pillow's built-in font, wrapped to
    the image's width): what the rows and columns of an evaluation picture are. RGB, same width."""
    font = ImageFont.load_default()
    per_line = max(8, int(image.width // max(1.0, font.getlength("n"))) - 1)
    lines = textwrap.wrap(text, per_line)
    line_h = int(font.getbbox("Ag")[3]) + 3
    out = Image.new("RGB", (image.width, image.height + line_h * len(lines) + 4), "white")
    out.paste(image.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((2, image.height + 2 + i * line_h), line, fill="black", font=font)
    return out
