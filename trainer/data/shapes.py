"""The objects of the procedural ``sketches`` scenes: geometry, shading under one light, and the
lines a person would draw for them (outlines plus the main inner edges).

Each shape knows its silhouette, how to paint itself onto a float RGB canvas and which
polylines make its sketch. Colour is chosen by the scene, independently of shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from trainer.data.strokes import ellipse_points

KINDS = ("ball", "box", "pyramid", "star", "house", "mug")


def _polygon_mask(size, polygons, ellipses=()):
    m = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(m)
    for poly in polygons:
        d.polygon(poly, fill=255)
    for box in ellipses:
        d.ellipse(box, fill=255)
    return np.asarray(m, dtype=np.float32) / 255.0


def _unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def lambert(normal, light) -> float:
    return float(max(0.0, np.dot(_unit(normal), light)))


def _blend(canvas, mask, colour):
    """canvas = canvas * (1 - mask) + colour * mask, colour an RGB triple or an HxWx3 array."""
    m = mask[..., None]
    canvas *= 1.0 - m
    canvas += m * colour


def _vertical_shade(size, y0, y1, top=1.05, bottom=0.9):
    y = np.arange(size, dtype=np.float32)[:, None, None]
    t = np.clip((y - y0) / max(1.0, y1 - y0), 0, 1)
    return top + (bottom - top) * t


@dataclass
class Shape:
    kind: str
    cx: float
    base_y: float
    size: float  # overall height in pixels
    colour: np.ndarray  # RGB in [0, 1]
    facing: int = 1  # +1: the visible side (or handle) is on the right
    accent: np.ndarray | None = None  # a second colour (roof, door)

    # Subclasses fill these three.
    def silhouette(self, res: int) -> np.ndarray:
        raise NotImplementedError

    def paint(self, canvas: np.ndarray, light: np.ndarray) -> None:
        raise NotImplementedError

    def lines(self) -> list:
        """[(points, closed), ...] in canvas pixels."""
        raise NotImplementedError


class Ball(Shape):
    def _geom(self):
        r = self.size / 2
        return self.cx, self.base_y - r, r

    def silhouette(self, res):
        cx, cy, r = self._geom()
        return _polygon_mask(res, [], [(cx - r, cy - r, cx + r, cy + r)])

    def paint(self, canvas, light):
        res = canvas.shape[0]
        cx, cy, r = self._geom()
        y, x = np.mgrid[0:res, 0:res].astype(np.float32)
        nx, ny = (x - cx) / r, (y - cy) / r
        inside = np.clip(1 - nx ** 2 - ny ** 2, 0, None)
        nz = np.sqrt(inside)
        diffuse = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0, None)
        half = _unit(light + np.array([0, 0, 1], np.float32))
        spec = np.clip(nx * half[0] + ny * half[1] + nz * half[2], 0, None) ** 40
        colour = self.colour * (0.22 + 0.85 * diffuse)[..., None] + 0.55 * spec[..., None]
        _blend(canvas, self.silhouette(res), colour)

    def lines(self):
        cx, cy, r = self._geom()
        start = np.random.default_rng(int(self.cx * 7 + self.size)).uniform(0, 2 * math.pi)
        return [(ellipse_points(cx, cy, r, r, start, start + 2 * math.pi, 64)[:-1], True)]


class Box(Shape):
    def _geom(self):
        h = self.size * 0.72
        w = h * (0.9 + 0.35 * ((self.cx * 13) % 1))
        d = h * 0.42
        dx, dy = self.facing * d * 0.75, -d * 0.65
        x0 = self.cx - w / 2 - dx / 2
        x1, y1 = x0 + w, self.base_y
        y0 = y1 - h
        front = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        top = [(x0, y0), (x1, y0), (x1 + dx, y0 + dy), (x0 + dx, y0 + dy)]
        xs = x1 if self.facing > 0 else x0
        side = [(xs, y0), (xs + dx, y0 + dy), (xs + dx, y1 + dy), (xs, y1)]
        return front, top, side

    def silhouette(self, res):
        return _polygon_mask(res, self._geom())

    def paint(self, canvas, light):
        res = canvas.shape[0]
        front, top, side = self._geom()
        shade = _vertical_shade(res, front[0][1], front[2][1])
        for poly, normal in ((front, (0, 0, 1)), (top, (0, -1, 0.15)), (side, (self.facing, 0, 0.15))):
            tone = 0.22 + 0.85 * lambert(normal, light)
            _blend(canvas, _polygon_mask(res, [poly]), self.colour * tone * shade)

    def lines(self):
        front, top, side = self._geom()
        (x0, y0), (x1, _), (_, y1), _ = front
        far_top = top[2] if self.facing > 0 else top[3]
        near_top = top[3] if self.facing > 0 else top[2]
        xs = x1 if self.facing > 0 else x0
        return [(front, True),
                ([(x0, y0) if self.facing > 0 else (x1, y0), near_top, far_top, (xs, y0)], False),
                ([far_top, side[2], side[3]], False)]


class Pyramid(Shape):
    def _geom(self):
        w = self.size * 1.15
        apex = (self.cx + self.facing * w * 0.06, self.base_y - self.size)
        left = (self.cx - w / 2, self.base_y - self.size * 0.1)
        right = (self.cx + w / 2, self.base_y - self.size * 0.1)
        mid = (self.cx + self.facing * w * 0.12, self.base_y)
        return apex, left, mid, right

    def silhouette(self, res):
        apex, left, mid, right = self._geom()
        return _polygon_mask(res, [[apex, left, mid, right]])

    def paint(self, canvas, light):
        res = canvas.shape[0]
        apex, left, mid, right = self._geom()
        shade = _vertical_shade(res, apex[1], mid[1], 1.05, 0.92)
        for poly, normal in (([apex, left, mid], (-0.7, -0.35, 0.6)), ([apex, mid, right], (0.7, -0.35, 0.6))):
            tone = 0.22 + 0.85 * lambert(normal, light)
            _blend(canvas, _polygon_mask(res, [poly]), self.colour * tone * shade)

    def lines(self):
        apex, left, mid, right = self._geom()
        return [([apex, left, mid, right], True), ([apex, mid], False)]


class Star(Shape):
    def _points(self):
        r_out = self.size / 2
        cy = self.base_y - r_out * 0.95
        rot = -math.pi / 2 + self.facing * 0.12
        pts = []
        for k in range(10):
            r = r_out if k % 2 == 0 else r_out * 0.45
            a = rot + k * math.pi / 5
            pts.append((self.cx + r * math.cos(a), cy + r * math.sin(a)))
        return (self.cx, cy), pts

    def silhouette(self, res):
        return _polygon_mask(res, [self._points()[1]])

    def paint(self, canvas, light):
        res = canvas.shape[0]
        (cx, cy), pts = self._points()
        for k in range(10):  # a bevelled star: each facet tilts outward
            a, b = pts[k], pts[(k + 1) % 10]
            mx, my = (a[0] + b[0]) / 2 - cx, (a[1] + b[1]) / 2 - cy
            n = math.hypot(mx, my) or 1
            tone = 0.25 + 0.8 * lambert((mx / n * 0.8, my / n * 0.8, 0.6), light)
            _blend(canvas, _polygon_mask(res, [[(cx, cy), a, b]]), self.colour * tone)

    def lines(self):
        return [(self._points()[1], True)]


class House(Shape):
    def _geom(self):
        body_h = self.size * 0.58
        w = self.size * 0.8
        x0, x1 = self.cx - w / 2, self.cx + w / 2
        y1, y0 = self.base_y, self.base_y - body_h
        e = w * 0.08
        roof = [(x0 - e, y0), (self.cx, self.base_y - self.size), (x1 + e, y0)]
        dw, dh = w * 0.22, body_h * 0.5
        dx = self.cx + self.facing * w * 0.18
        door = [(dx - dw / 2, y1 - dh), (dx + dw / 2, y1 - dh), (dx + dw / 2, y1), (dx - dw / 2, y1)]
        ws = w * 0.2
        wx = self.cx - self.facing * w * 0.22
        wy = y0 + body_h * 0.25
        window = [(wx - ws / 2, wy), (wx + ws / 2, wy), (wx + ws / 2, wy + ws), (wx - ws / 2, wy + ws)]
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], roof, door, window

    def silhouette(self, res):
        body, roof, _, _ = self._geom()
        return _polygon_mask(res, [body, roof])

    def paint(self, canvas, light):
        res = canvas.shape[0]
        body, roof, door, window = self._geom()
        accent = self.accent if self.accent is not None else self.colour * 0.5
        wall = self.colour * (0.3 + 0.75 * lambert((0, 0, 1), light))
        _blend(canvas, _polygon_mask(res, [body]), wall * _vertical_shade(res, body[0][1], body[2][1]))
        _blend(canvas, _polygon_mask(res, [roof]), accent * (0.3 + 0.75 * lambert((0, -0.7, 0.7), light))
               * _vertical_shade(res, roof[1][1], roof[0][1], 1.1, 0.85))
        _blend(canvas, _polygon_mask(res, [door]), accent * 0.45)
        _blend(canvas, _polygon_mask(res, [window]), np.array([0.75, 0.85, 0.95], np.float32)
               * _vertical_shade(res, window[0][1], window[2][1], 1.0, 0.8))

    def lines(self):
        body, roof, door, window = self._geom()
        (wx0, wy0), (wx1, _), (_, wy1), _ = window
        return [(body, True), (roof, False), (door[3:] + door[:3], False), (window, True),
                ([((wx0 + wx1) / 2, wy0), ((wx0 + wx1) / 2, wy1)], False),
                ([(wx0, (wy0 + wy1) / 2), (wx1, (wy0 + wy1) / 2)], False)]


class Mug(Shape):
    def _geom(self):
        h = self.size * 0.82
        w = h * 0.78
        e = w * 0.14
        x0, x1 = self.cx - w / 2 - self.facing * w * 0.12, self.cx + w / 2 - self.facing * w * 0.12
        y1 = self.base_y - e
        y0 = y1 - h + e
        return x0, x1, y0, y1, e

    def _handle(self):
        x0, x1, y0, y1, e = self._geom()
        w, h = x1 - x0, y1 - y0
        side = x1 if self.facing > 0 else x0
        return side, y0 + h * 0.5, w * 0.32, h * 0.3  # centre x, centre y, rx, ry

    def silhouette(self, res):
        x0, x1, y0, y1, e = self._geom()
        hx, hy, rx, ry = self._handle()
        ring = _polygon_mask(res, [], [(hx - rx, hy - ry, hx + rx, hy + ry)])
        hole = _polygon_mask(res, [], [(hx - rx * 0.55, hy - ry * 0.55, hx + rx * 0.55, hy + ry * 0.55)])
        body = _polygon_mask(res, [[(x0, y0), (x1, y0), (x1, y1), (x0, y1)]],
                             [(x0, y0 - e, x1, y0 + e), (x0, y1 - e, x1, y1 + e)])
        return np.maximum(body, ring * (1 - hole))

    def paint(self, canvas, light):
        res = canvas.shape[0]
        x0, x1, y0, y1, e = self._geom()
        cx, r = (x0 + x1) / 2, (x1 - x0) / 2
        x = np.arange(res, dtype=np.float32)[None, :, None]
        nx = np.clip((x - cx) / r, -1, 1)
        nz = np.sqrt(1 - nx ** 2)
        diffuse = np.clip(nx * light[0] + nz * light[2] * 0.9 - 0.1 * light[1], 0, None)
        half = _unit(light + np.array([0, 0, 1], np.float32))
        spec = np.clip(nx * half[0] + nz * half[2], 0, None) ** 30
        colour = self.colour * (0.22 + 0.85 * diffuse) + 0.45 * spec
        colour = np.broadcast_to(colour, (res, res, 3))
        _blend(canvas, self.silhouette(res), colour)
        _blend(canvas, _polygon_mask(res, [], [(x0, y0 - e, x1, y0 + e)]), self.colour * 0.9 + 0.08)
        inner = (x0 + r * 0.08, y0 - e * 0.8, x1 - r * 0.08, y0 + e * 0.8)
        _blend(canvas, _polygon_mask(res, [], [inner]), self.colour * 0.3)

    def lines(self):
        x0, x1, y0, y1, e = self._geom()
        cx, r = (x0 + x1) / 2, (x1 - x0) / 2
        hx, hy, rx, ry = self._handle()
        a0, a1 = (-math.pi / 2, math.pi / 2) if self.facing > 0 else (math.pi / 2, 3 * math.pi / 2)
        return [(ellipse_points(cx, y0, r, e)[:-1], True),
                ([(x0, y0), (x0, y1)], False), ([(x1, y0), (x1, y1)], False),
                (ellipse_points(cx, y1, r, e, 0, math.pi, 24), False),
                (ellipse_points(hx, hy, rx, ry, a0 + 0.15, a1 - 0.15, 20), False)]


SHAPES = {"ball": Ball, "box": Box, "pyramid": Pyramid, "star": Star, "house": House, "mug": Mug}
