"""Drawings as a person makes them on the canvas: strokes in fractions of the side (shared by the
hand-drawn and stroke-width tests)."""
import math


def circle(cx, cy, r, n=40):
    return [(cx + r * math.cos(2 * math.pi * k / n), cy + r * math.sin(2 * math.pi * k / n)) for k in range(n + 1)]


DRAWINGS = {  # strokes in fractions of the side
    "ball": [circle(0.5, 0.47, 0.25), [(0.08, 0.73), (0.92, 0.73)]],
    "box": [[(0.3, 0.4), (0.62, 0.4), (0.62, 0.78), (0.3, 0.78), (0.3, 0.4)],
            [(0.3, 0.4), (0.42, 0.28), (0.74, 0.28), (0.62, 0.4)],
            [(0.74, 0.28), (0.74, 0.66), (0.62, 0.78)]],
    "pyramid": [[(0.22, 0.78), (0.55, 0.16), (0.85, 0.72), (0.62, 0.84), (0.22, 0.78)],
                [(0.55, 0.16), (0.62, 0.84)]],
}
