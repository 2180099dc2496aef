"""Hand-drawn strokes: polylines resampled and wobbled the way a mouse drawing wobbles, drawn
with round caps, sometimes left a little open or overshooting where they should close."""
from __future__ import annotations

import math
import random

from PIL import ImageDraw


def resample(points, step: float, closed: bool = False):
    """Points along the polyline every ``step`` pixels (the vertices are kept)."""
    pts = list(points) + ([points[0]] if closed else [])
    out = [pts[0]]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        n = max(1, int(math.hypot(x1 - x0, y1 - y0) / step))
        out += [(x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n) for k in range(1, n + 1)]
    return out


def wobble(points, rng: random.Random, amplitude: float):
    """Offset each point across the stroke by a smooth random curve of the given amplitude."""
    if len(points) < 2 or amplitude <= 0:
        return list(points)
    waves = [(rng.uniform(0.5, 3.5), rng.uniform(0, 2 * math.pi), rng.uniform(0.4, 1.0)) for _ in range(3)]
    n = len(points)
    out = []
    for i, (x, y) in enumerate(points):
        a, b = points[max(0, i - 1)], points[min(n - 1, i + 1)]
        dx, dy = b[0] - a[0], b[1] - a[1]
        norm = math.hypot(dx, dy) or 1.0
        t = i / (n - 1)
        off = amplitude * sum(w * math.sin(2 * math.pi * f * t + p) for f, p, w in waves) / 1.5
        off += rng.gauss(0, amplitude * 0.15)
        out.append((x - dy / norm * off, y + dx / norm * off))
    return out


def draw_stroke(draw: ImageDraw.ImageDraw, points, width: float, rng: random.Random,
                closed: bool = False, amplitude: float = 0.0, fill=0):
    """Draw one hand-drawn polyline. Closed shapes are sometimes left open by a small gap or
    drawn past their start, as people do."""
    step = max(2.0, width * 0.75)
    pts = resample(points, step, closed)
    if closed and len(pts) > 8:
        r = rng.random()
        k = max(1, int(len(pts) * rng.uniform(0.01, 0.05)))
        if r < 0.3:
            pts = pts[:-k]  # not quite closed
        elif r < 0.5:
            pts = pts + pts[1:k + 1]  # overshoot
    pts = wobble(pts, rng, amplitude)
    w = max(1, int(round(width)))
    draw.line(pts, fill=fill, width=w, joint="curve")
    rad = width / 2
    for x, y in (pts[0], pts[-1]):
        draw.ellipse((x - rad, y - rad, x + rad, y + rad), fill=fill)


def ellipse_points(cx, cy, rx, ry, start=0.0, end=2 * math.pi, n=48):
    return [(cx + rx * math.cos(start + (end - start) * k / n), cy + ry * math.sin(start + (end - start) * k / n))
            for k in range(n + 1)]
