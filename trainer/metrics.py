"""Quality and health metrics shared by training and evaluation."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageFilter


def mean_pairwise_distance(images: torch.Tensor) -> float:
    """Mean L2 distance between every pair of a batch of images (per pixel, RMS): the diversity
    of a fixed batch of samples. A collapse to one mode drives it towards 0."""
    x = images.detach().float().flatten(1)
    n = x.shape[0]
    if n < 2:
        return 0.0
    d = torch.cdist(x, x) / x.shape[1] ** 0.5
    return float(d.sum() / (n * (n - 1)))


# --- quality against ground truth (uint8 HWC arrays or PIL images in, floats out) -----------------

def _float(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def mean_l1(a, b) -> float:
    """Mean absolute difference in [0, 1] units."""
    return float(np.abs(_float(a) - _float(b)).mean() / 255.0)


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio in dB for 8-bit images (capped at 100 for identical ones)."""
    mse = float(((_float(a) - _float(b)) ** 2).mean())
    return 100.0 if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(a, b) -> float:
    """Structural similarity (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 0.01,
    K2 0.03, 8-bit range, averaged over the valid window positions and the channels."""
    x = torch.from_numpy(_float(a)).reshape(*np.shape(a)[:2], -1).permute(2, 0, 1)[:, None]
    y = torch.from_numpy(_float(b)).reshape(*np.shape(b)[:2], -1).permute(2, 0, 1)[:, None]
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * 1.5 ** 2))
    w = (g[:, None] * g[None, :] / g.sum() ** 2)[None, None]
    if min(x.shape[-2:]) < 11:
        w = w[..., :min(11, x.shape[-2]), :min(11, x.shape[-1])]
        w = w / w.sum()
    f = lambda t: torch.nn.functional.conv2d(t, w)  # noqa: E731
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(s.mean())


def saturation(image) -> float:
    """Mean HSV saturation of an RGB image: (max - min) / max per pixel, 0 for black."""
    x = _float(image)
    hi, lo = x.max(-1), x.min(-1)
    return float(np.where(hi > 0, (hi - lo) / np.maximum(hi, 1e-9), 0.0).mean())


def colourfulness(image) -> float:
    """Hasler and Suesstrunk's colourfulness: spread and mean of the opponent channels
    rg = R - G and yb = (R + G) / 2 - B (0 for a grey image), in [0, 1] units."""
    x = _float(image) / 255.0
    rg, yb = x[..., 0] - x[..., 1], 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two sets of features (N, D), as FID does with
    Inception's: |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2). The square-root trace comes from
    the eigenvalues of S_a^1/2 S_b S_a^1/2 (symmetric, so no complex parts to drop)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Frechet distance needs at least 2 feature vectors in each set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root_a @ s_b @ root_a
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(max(0.0, ((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * cross))


def line_mask(image, threshold: int = 128) -> np.ndarray:
    """Dark pixels of a sketch (black lines on white) as a boolean mask."""
    image = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    return np.asarray(image.convert("L")) < threshold


def edge_agreement(sketch, photo, tolerance: int = 2) -> dict[str, float]:
    """How well a photo keeps a sketch's content: the photo's edges (the studio's edges-from-photo)
    against the sketch's lines, each counted as found when the other lies within ``tolerance``
    pixels. Returns precision (photo edges on a line), recall (lines with an edge) and F1."""
    from trainer.data.edges import edges
    photo = photo if isinstance(photo, Image.Image) else Image.fromarray(np.asarray(photo))
    lines = line_mask(sketch)
    found = line_mask(edges(photo, size=lines.shape[0] if photo.size != lines.shape[::-1] else None))
    near = lambda m: np.asarray(Image.fromarray(m.astype(np.uint8) * 255).filter(  # noqa: E731
        ImageFilter.MaxFilter(2 * tolerance + 1))) > 0
    precision = float((found & near(lines)).sum() / max(found.sum(), 1))
    recall = float((lines & near(found)).sum() / max(lines.sum(), 1))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
