"""Image decoding that never crashes a job.

Every image enters the engine through :func:`open_image`: EXIF orientation applied, any mode
(CMYK, 16-bit, float, palette, alpha, 1-bit) converted to 8-bit RGB, and a file that is not a
readable image raises :class:`ImageError` naming the file and the reason. :func:`scan_images`
lists the usable images of a folder, reporting each unusable one and the total.
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
MAX_PIXELS = 100_000_000  # 100 megapixels; larger files are refused as possible decompression bombs


from trainer.errors import ImageError  # noqa: E402  (re-exported)


def _to_8bit_rgb(im: Image.Image, background=(255, 255, 255)) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if im.mode == "F":
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            arr = (arr - lo) / max(hi - lo, 1e-12) * 255.0
        else:
            arr = arr / hi * 255.0
        im = Image.fromarray(np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        base = Image.new("RGB", im.size, background)
        base.paste(im, mask=im.getchannel("A"))
        return base
    if im.mode != "RGB":
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, L, 1
    return im


def open_image(source, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode ``source`` (a path, a file object or a PIL image) into an 8-bit RGB PIL image.

    Raises :class:`ImageError` for empty, truncated, non-image or oversized files.
    """
    name = getattr(source, "filename", None) or str(source)
    if isinstance(source, Image.Image):
        im = source
    else:
        if isinstance(source, (str, os.PathLike)) and os.path.isfile(source) and os.path.getsize(source) == 0:
            raise ImageError(f"{name}: empty file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im = Image.open(source)
        except FileNotFoundError:
            raise ImageError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise ImageError(f"{name}: is a folder, not an image") from None
        except UnidentifiedImageError:
            raise ImageError(f"{name}: not an image file (or a format Pillow cannot read)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(f"{name}: too many pixels (possible decompression bomb; limit "
                             f"{min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels):,})") from None
        except OSError as e:
            raise ImageError(f"{name}: cannot open ({e})") from None
    w, h = im.size
    if w * h > max_pixels:
        raise ImageError(f"{name}: {w}x{h} is {w * h:,} pixels, over the limit of {max_pixels:,} "
                         "(possible decompression bomb)")
    if w == 0 or h == 0:
        raise ImageError(f"{name}: image has no pixels")
    try:
        im.load()
        im = ImageOps.exif_transpose(im)
        return _to_8bit_rgb(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"{name}: truncated or corrupt image ({e})") from None


@dataclass
class ScanReport:
    """The usable images of a folder and the files skipped, with reasons."""
    folder: Path
    images: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (path, reason)

    def summary(self) -> str:
        return (f"{self.folder}: {len(self.images)} images, {len(self.skipped)} skipped")


def _check(path: Path) -> str | None:
    try:
        open_image(path)
        return None
    except ImageError as e:
        return str(e)


def scan_images(folder, log: Callable[[str], None] | None = print, verify: bool = True,
                recursive: bool = True) -> ScanReport:
    """List the images of ``folder`` in sorted order, decoding each once when ``verify``.

    Files with an image extension that fail to decode, and other non-hidden files, are
    skipped and reported one line each through ``log``, then a total. A folder with no
    usable image raises :class:`ImageError` naming it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: no such folder")
    files = sorted(p for p in (folder.rglob("*") if recursive else folder.iterdir())
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    report = ScanReport(folder)
    candidates = []
    for p in files:
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            candidates.append(p)
        elif p.suffix.lower() not in (".txt", ".json", ".csv", ".md", ".toml"):
            report.skipped.append((p, f"{p}: not an image file (extension {p.suffix or 'none'})"))
    if verify:
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            results = list(pool.map(_check, candidates))
    else:
        results = [None] * len(candidates)
    for p, problem in zip(candidates, results):
        if problem is None:
            report.images.append(p)
        else:
            report.skipped.append((p, problem))
    report.skipped.sort()
    if log is not None:
        for _, reason in report.skipped:
            log(f"skipped {reason}")
        if report.skipped:
            log(f"{report.summary()}")
    if not report.images:
        raise ImageError(f"{folder}: no usable image in this folder"
                         + (f" ({len(report.skipped)} files skipped)" if report.skipped else ""))
    return report


def output_names(relatives) -> list[Path]:
    """The output file (relative to the output folder) of each input of a folder translation: the
    input's path relative to its folder is kept (sub/a.png -> sub/a.png); a PNG keeps its name and
    any other format gets ".png" after its whole name (a.jpg -> a.jpg.png), so that a.png, a.jpg
    and sub/a.png never overwrite each other. A name that still clashes (a.jpg beside a file named
    a.jpg.png; case-insensitively) gets -2, -3, ... before its ".png"."""
    used, out = set(), []
    for rel in relatives:
        rel = Path(rel)
        name = rel.name if rel.suffix.lower() == ".png" else rel.name + ".png"
        candidate, k = rel.with_name(name), 1
        while candidate.as_posix().lower() in used:
            k += 1
            candidate = rel.with_name(f"{name[:-4]}-{k}.png")
        used.add(candidate.as_posix().lower())
        out.append(candidate)
    return out
