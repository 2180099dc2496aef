"""The bundled sketch2photo on sketches drawn by hand: mouse strokes on the studio's canvas
(press, moves with the button held, release), scored by the sketches evaluator. Not dataset
sketches: our own lines, widths and proportions, the way a newcomer draws."""
import math
from pathlib import Path

import numpy as np
import pytest

from PySide6.QtCore import QEvent, QPointF, QSettings, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from conftest import USER_SKETCHES  # noqa: E402
from studio.app import MainWindow  # noqa: E402
from studio.library import BUNDLED  # noqa: E402
from trainer.evaluators import Evaluator  # noqa: E402
from trainer.data.shapes import KINDS  # noqa: E402
from trainer.metrics import saturation  # noqa: E402

MODEL = Path(BUNDLED) / "sketch2photo.safetensors"
# mean saturation of real procedural photos at 128 px (`gan-trainer eval` reports it as saturation_real);
# the L1-only model's outputs sit at 0.02, the bundled model's at 0.39 on average. Real photos vary:
# 1 % of them lie below half the mean (pale walls and floors), 5 % below 0.6 of it
REAL_SATURATION = 0.367
SEEDS = 8  # the bundled model is BicycleGAN: each seed is one colouring of the same sketch


def circle(cx, cy, r, n=40):
    return [(cx + r * math.cos(2 * math.pi * k / n), cy + r * math.sin(2 * math.pi * k / n)) for k in range(n + 1)]


DRAWINGS = {  # strokes in canvas fractions, as a person would draw them
    "ball": [circle(0.5, 0.47, 0.25), [(0.08, 0.73), (0.92, 0.73)]],
    "box": [[(0.3, 0.4), (0.62, 0.4), (0.62, 0.78), (0.3, 0.78), (0.3, 0.4)],
            [(0.3, 0.4), (0.42, 0.28), (0.74, 0.28), (0.62, 0.4)],
            [(0.74, 0.28), (0.74, 0.66), (0.62, 0.78)]],
    "pyramid": [[(0.22, 0.78), (0.55, 0.16), (0.85, 0.72), (0.62, 0.84), (0.22, 0.78)],
                [(0.55, 0.16), (0.62, 0.84)]],
}


def mouse(canvas, kind, pos, buttons):
    button = Qt.LeftButton if kind != QEvent.MouseMove else Qt.NoButton
    e = QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons, Qt.NoModifier)
    QApplication.sendEvent(canvas, e)


def draw_with_mouse(qtbot, canvas, strokes):
    r = canvas.target_rect()
    for stroke in strokes:
        pts = [QPointF(r.x() + x * r.width(), r.y() + y * r.height()) for x, y in stroke]
        mouse(canvas, QEvent.MouseButtonPress, pts[0], Qt.LeftButton)
        for a, b in zip(pts, pts[1:]):  # the pointer passes through in small steps
            for t in np.linspace(0.25, 1.0, 4):
                mouse(canvas, QEvent.MouseMove, a + (b - a) * float(t), Qt.LeftButton)
        mouse(canvas, QEvent.MouseButtonRelease, pts[-1], Qt.NoButton)
        qtbot.wait(5)


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator.load("sketches")


@pytest.fixture
def sketch_page(qtbot, tmp_path):
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat), scan_user=False)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    page = w.pages["sketch"]
    n = page.render_count
    assert w.add_model(MODEL)
    qtbot.waitUntil(lambda: page.info is not None and page.render_count > n and page.settled(), timeout=30000)
    yield page
    w.close()


@pytest.mark.parametrize("kind", list(DRAWINGS))
def test_mouse_drawn_sketch_becomes_a_photo_of_that_object(qtbot, sketch_page, evaluator, kind, tmp_path):
    page = sketch_page
    page.canvas.clear()
    page.canvas.set_brush(6)
    n = page.render_count
    draw_with_mouse(qtbot, page.canvas, DRAWINGS[kind])
    drawing = page.canvas.to_array()
    assert (drawing < 128).mean() > 0.01  # lines, not dots: the moves drew
    qtbot.waitUntil(lambda: page.render_count > n and page.settled(), timeout=30000)
    outs = []
    for seed in range(SEEDS):  # turned through the page's Seed control, as a user would
        if seed:
            n = page.render_count
            page.panel.set_values({"seed": seed})
            qtbot.waitUntil(lambda: page.render_count > n and page.settled(), timeout=30000)
        assert page.output.shape == (128, 128, 3)
        outs.append(page.output)
        page.export_both().save(tmp_path / f"{kind}-{seed}.png")
    assert len({o.tobytes() for o in outs}) == SEEDS  # each seed its own photo
    counts = evaluator.predict(outs)
    found = [{k: int(counts[f"count_{k}"][i]) for k in KINDS} for i in range(SEEDS)]
    # measured on 16 seeds: ball, box and pyramid found in all 16
    assert sum(f[kind] == 1 for f in found) >= SEEDS - 1, found
    sat = [saturation(o) for o in outs]  # colour photos, not the grey average
    assert min(sat) > 0.5 * REAL_SATURATION and np.mean(sat) > 0.8 * REAL_SATURATION, sat


def test_reference_user_sketches(evaluator):
    """Sketches people drew with a mouse on the canvas (512 px, thin lines), kept as test fixtures."""
    folder = USER_SKETCHES
    from trainer import inference
    from trainer.data.imageio import open_image
    t = inference.load(MODEL)
    kinds = {"ball-on-ground": "ball", "cube": "box", "mug": "mug", "pyramid": "pyramid"}
    found = {}
    for stem, kind in kinds.items():
        image = open_image(folder / f"{stem}.png")
        counts = evaluator.predict([t.run_array(image, seed=seed) for seed in range(SEEDS)])
        found[kind] = sum(int(counts[f"count_{kind}"][i]) == 1 for i in range(SEEDS))
    # measured on 16 seeds: ball and pyramid 16 each, the cube 15, the mug 15 and all of the first 8 (no rim
    # drawn, a thin handle: the one seed missed paints a box; the ngf-32 model: 10 of 16, pix2pix: 0)
    assert all(found[k] >= SEEDS - 1 for k in ("ball", "box", "pyramid")), found
    assert found["mug"] >= SEEDS - 2, found
