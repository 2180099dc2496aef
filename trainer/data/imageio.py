"""Image decoding that never crashes a job.

Every image enters the engine through :func:`open_image`: EXIF orientation applied, any mode
(CMYK, 16-bit, float, palette, alpha, 1-bit) converted to 8-bit RGB, and a file that is not a
readable image raises :class:`ImageError` naming the file and the reason. :func:`scan_images`
lists the usable images of a folder, reporting each unusable one and the total.
"""
from __future__ import annotations

import os
import warnings
from collections import OrderedDict
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


FLOAT_SLACK = 1e-3  # float images a little outside [0, 1] (resampling, arithmetic) are clipped


def image_from_array(a) -> Image.Image:
    """An 8-bit RGB PIL image from an array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)
    (alpha over white): uint8 as it is, bool as black and white, other integers in 0-255, floats in
    [0, 1] (times 255, rounded; within ``FLOAT_SLACK`` outside it, clipped). Raises
    :class:`ImageError` naming the type, shape, dtype or values that do not fit (a torch tensor:
    use run_tensor; channels first; NaN; a float above 1: pass uint8 for 0-255; integers other
    than uint8 holding only 0 and 1: pass bool), or a size over ``MAX_PIXELS``."""
    if not isinstance(a, np.ndarray):
        raise ImageError(f"an image array must be a numpy array, got {type(a).__module__}.{type(a).__name__}"
                         + (" (for torch tensors in [-1, 1] use run_tensor)" if type(a).__module__ == "torch" else ""))
    shape = a.shape  # as passed, for the messages
    hint = " (channels first? pass a.transpose(1, 2, 0))" if a.ndim == 3 and shape[0] in (1, 3, 4) else ""
    if a.ndim == 3 and shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ImageError(f"image array of shape {shape}: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4){hint}")
    if a.size == 0:
        raise ImageError(f"image array of shape {shape} has no pixels")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise ImageError(f"image array of {a.shape[1]}x{a.shape[0]} is over the limit of {MAX_PIXELS:,} pixels")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError("image array holds NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < -FLOAT_SLACK or hi > 1 + FLOAT_SLACK:
            hint = "pass (x + 1) / 2 for values in [-1, 1]" if lo >= -1 and hi <= 1 else "pass uint8 for 0-255 values"
            raise ImageError(f"a float image array must hold values in [0, 1], got {lo:.6g} to {hi:.6g} ({hint})")
        a = np.round(np.clip(a.astype(np.float64), 0, 1) * 255).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise ImageError(f"an integer image array must hold values in 0-255, got {lo} to {hi}")
        if hi == 1 and a.dtype != np.uint8:  # a mask (int64 from numpy's arithmetic), not a nearly black image
            raise ImageError("an integer image array holding only 0 and 1 reads as 0-255, nearly black: pass "
                             "a.astype(bool) for black and white, or a * 255")
        a = a.astype(np.uint8)
    else:
        raise ImageError(f"image array of dtype {a.dtype}: pass uint8 (0-255) or float (0-1)")
    return _to_8bit_rgb(Image.fromarray(np.ascontiguousarray(a)))


@dataclass
class ScanReport:
    """The usable images of a folder and the files skipped, with reasons."""
    folder: Path
    images: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (path, reason)
    large: list = field(default_factory=list)  # (path, (width, height)) of usable images over LARGE_SIDE px

    def summary(self) -> str:
        return (f"{self.folder}: {len(self.images)} images, {len(self.skipped)} skipped")


LARGE_SIDE = 4096  # px: an image with a longer side is decoded in full at every training step: slow


REDUCED_CACHE_BYTES = 256 * 2 ** 20  # per process: large training images kept reduced
_reduced: OrderedDict = OrderedDict()  # (path, mtime, target, pair) -> reduced RGB image


def open_image_to_resize(path, target: int | None, pair: bool = False) -> Image.Image:
    """:func:`open_image` for a loader that resizes the whole image to about ``target`` px (each
    half of a side-by-side ``pair``; None: it crops native pixels, so :func:`open_image`). An image over :data:`LARGE_SIDE` px on a side is reduced
    once by an integer box filter (``Image.reduce``; each half on its own) to at least 4 x
    ``target`` on its shorter side and kept in a per-process cache of
    :data:`REDUCED_CACHE_BYTES`, so that it is not decoded again at every step; smaller images
    come back exactly as :func:`open_image` gives them. Raises :class:`ImageError` as it does."""
    path = Path(path)
    if not target:
        return open_image(path)
    try:
        key = (str(path), path.stat().st_mtime_ns, int(target), pair)
    except OSError:
        return open_image(path)  # its error names the file
    hit = _reduced.get(key)
    if hit is not None:
        _reduced.move_to_end(key)
        return hit.copy()
    im = open_image(path)
    if max(im.size) <= LARGE_SIDE:  # the common case: as open_image gives it, nothing more
        return im
    half = im.width // 2
    boxes = [(0, 0, half, im.height), (half, 0, 2 * half, im.height)] if pair else [(0, 0, im.width, im.height)]
    factor = min(min(b[2] - b[0], b[3]) for b in boxes) // (4 * int(target))
    if factor < 2:
        return im
    halves = [im.reduce(factor, box) for box in boxes]
    reduced = Image.new("RGB", (sum(h.width for h in halves), halves[0].height))
    for i, h in enumerate(halves):
        reduced.paste(h, (i * halves[0].width, 0))
    _reduced[key] = reduced
    while len(_reduced) > 1 and sum(3 * r.width * r.height for r in _reduced.values()) > REDUCED_CACHE_BYTES:
        _reduced.popitem(last=False)
    return reduced.copy()


def _check(path: Path) -> tuple[str | None, tuple[int, int] | None]:
    """(why ``path`` cannot be used, or None; its size when it can)."""
    try:
        return None, open_image(path).size
    except ImageError as e:
        return str(e), None


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
        results = [(None, None)] * len(candidates)
    for p, (problem, size) in zip(candidates, results):
        if problem is None:
            report.images.append(p)
            if size and max(size) > LARGE_SIDE:
                report.large.append((p, size))
        else:
            report.skipped.append((p, problem))
    report.skipped.sort()
    if log is not None:
        for _, reason in report.skipped:
            log(f"skipped {reason}")
        if report.skipped:
            log(f"{report.summary()}")
        if report.large:
            p, (w, h) = max(report.large, key=lambda item: item[1][0] * item[1][1])
            log(f"note: {len(report.large)} image(s) over {LARGE_SIDE} px on a side (largest: {p.name}, {w}x{h}) "
                "take seconds to decode: a resizing preprocess reduces each once and keeps it in memory, a "
                "cropping one decodes it at every step; shrinking them first is faster either way")
    if not report.images:
        raise ImageError(f"{folder}: no usable image in this folder"
                         + (f" ({len(report.skipped)} files skipped)" if report.skipped else ""))
    return report


OUTPUT_MARK = ("Software", "GAN Studio")  # a PNG text chunk in every translation written


def save_output(image: Image.Image, target) -> None:
    """``image`` as a PNG at ``target`` (a path or a binary file), marked as a GAN Studio
    translation (:data:`OUTPUT_MARK`), so that a later translation may replace it and never a
    file of the user's (:func:`foreign_files`)."""
    from PIL.PngImagePlugin import PngInfo
    info = PngInfo()
    info.add_text(*OUTPUT_MARK)
    image.save(target, format="PNG", pnginfo=info)


def foreign_files(paths) -> list[Path]:
    """Of ``paths``, the existing ones that are not translations GAN Studio wrote (a PNG with
    :data:`OUTPUT_MARK`): what a translation into them would destroy (a folder is foreign too)."""
    foreign = []
    for p in map(Path, paths):
        if not p.exists() and not p.is_symlink():
            continue
        try:
            with Image.open(p) as im:
                ours = im.format == "PNG" and im.info.get(OUTPUT_MARK[0]) == OUTPUT_MARK[1]
        except (OSError, ValueError, Image.DecompressionBombError):
            ours = False
        if not ours:
            foreign.append(p)
    return foreign


def overwritten_inputs(inputs, out_dir, names) -> list[Path]:
    """The ``inputs`` (paths) that a folder translation into ``out_dir`` would write over: each
    whose file is one of the outputs (``out_dir / name`` for ``names``, :func:`output_names`), as
    when PNGs are translated into their own folder. Empty when none is."""
    def key(p: Path):
        try:
            st = p.stat()
            return st.st_dev, st.st_ino  # the same file whatever the path (links, case-insensitive disks)
        except OSError:
            return str(p.resolve())
    outputs = {key(Path(out_dir) / name) for name in names}
    return [Path(p) for p in inputs if key(Path(p)) in outputs]


def folder_images(folder, out_dir=None) -> list[Path]:
    """The images (by :data:`IMAGE_EXTENSIONS`) under ``folder``, sorted, less those inside
    ``out_dir`` when it is a subfolder of it (an earlier translation of the folder into it)."""
    folder = Path(folder)
    outputs = Path(out_dir).resolve() if out_dir is not None else None
    inside = outputs is not None and outputs != folder.resolve()
    return sorted(q for q in folder.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS
                  and not (inside and outputs in q.resolve().parents))


def translation_refusal(inputs, out_dir, names) -> str | None:
    """Why a translation of ``inputs`` into ``out_dir`` as ``names`` (:func:`output_names`) must not
    run, or None: an output would replace one of the inputs (:func:`overwritten_inputs`) or an
    existing file no translation wrote (:func:`foreign_files`)."""
    clobbered = overwritten_inputs(inputs, out_dir, names)
    if clobbered:
        return (f"{out_dir} would have {len(clobbered)} of the input images written over (e.g. {clobbered[0]}): "
                "the translations take the inputs' names; choose another output folder")
    foreign = foreign_files(Path(out_dir) / n for n in names)
    if foreign:
        return (f"{out_dir} already holds {len(foreign)} of the files this would write, not written by a "
                f"translation (e.g. {foreign[0]}): choose another output folder")
    return None


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
