"""The bundled sketch2photo on sketches drawn by hand: mouse strokes on the studio's canvas
(press, moves with the button held, release), scored by the sketches evaluator. Not dataset
sketches: our own lines, widths and proportions, the way a newcomer draws."""
from pathlib import Path

import numpy as np
import pytest

from PySide6.QtCore import QEvent, QPointF, QSettings, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.conftest import USER_SKETCHES  # noqa: E402
from tests.drawings import DRAWINGS  # noqa: E402
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


# -- GitHub issue 31: any brush, every pointer event, output at the canvas's size

@pytest.mark.parametrize("brush, kind", [(1, "ball"), (1, "box"), (1, "pyramid"), (2, "ball"), (4, "box"),
                                         (8, "pyramid"), (16, "ball")])
def test_any_brush_size_gives_the_drawn_object(qtbot, sketch_page, evaluator, brush, kind):
    """The page sends the canvas as drawn (512 px) and the engine brings the lines to the training
    width: a 1 px brush draws the same object as a thick one (without it the 1 px drawings gave
    no object at all: tests/test_strokes.py)."""
    page = sketch_page
    page.canvas.clear()
    page.canvas.set_brush(brush)
    draw_with_mouse(qtbot, page.canvas, DRAWINGS[kind])
    req = page.request()
    assert req.image.shape == (512, 512, 3) and req.controls["output_size"] == "model"
    assert req.controls["strokes"] is True  # the panel's "Stroke normalisation", on by default
    outs = []
    for seed in range(4):
        n = page.render_count
        page.panel.set_values({"seed": seed})
        if seed == 0:
            page.refresh()
        qtbot.waitUntil(lambda: page.render_count > n and page.settled(), timeout=30000)
        assert page.output.shape == (128, 128, 3)
        outs.append(page.output)
    counts = evaluator.predict(outs)
    found = [{k: int(counts[f"count_{k}"][i]) for k in KINDS} for i in range(4)]
    assert sum(f[kind] == 1 and sum(f.values()) == 1 for f in found) >= 3, found


def test_canvas_keeps_every_pointer_event_while_the_ui_thread_is_busy(qtbot, sketch_page):
    """Mouse moves queued while the UI thread is busy (a render running, a photo being shown) are
    all drawn: each corner of a fine zigzag lies on the line, none is cut off by a merged event."""
    from studio.app import keep_every_pointer_event
    keep_every_pointer_event()  # what main() does before the QApplication exists
    assert not QApplication.testAttribute(Qt.AA_CompressHighFrequencyEvents)
    assert not QApplication.testAttribute(Qt.AA_CompressTabletEvents)
    import time
    page, canvas = sketch_page, sketch_page.canvas
    canvas.clear()
    canvas.set_brush(2)
    r = canvas.target_rect()
    # 160 corners 2.5 image px apart along x, alternating 24 image px up and down: a dropped corner
    # would be drawn straight past, its nearest line 5 px away
    k = r.width() / canvas.image.width()
    pts = [QPointF(r.x() + (50 + 2.5 * i) * k, r.y() + (250 + (12 if i % 2 else -12)) * k) for i in range(160)]

    def post(kind, pos, buttons):
        button = Qt.LeftButton if kind != QEvent.MouseMove else Qt.NoButton
        QApplication.postEvent(canvas, QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons,
                                                   Qt.NoModifier))

    post(QEvent.MouseButtonPress, pts[0], Qt.LeftButton)
    for i, p in enumerate(pts[1:], 1):
        post(QEvent.MouseMove, p, Qt.LeftButton)
        if i % 50 == 0:
            page.refresh()  # a render runs in its lane meanwhile
            time.sleep(0.1)  # and the UI thread is busy: the events queue up
    post(QEvent.MouseButtonRelease, pts[-1], Qt.NoButton)
    n = page.render_count
    qtbot.waitUntil(lambda: not canvas.in_stroke and page.render_count > n and page.settled(), timeout=30000)
    a = canvas.to_array().min(axis=2)
    missed = []
    for p in pts:
        q = canvas.to_image(p)
        x, y = int(round(q.x())), int(round(q.y()))
        if a[y - 1:y + 2, x - 1:x + 2].min() > 100:  # no dark pixel at the point
            missed.append((x, y))
    assert not missed, f"{len(missed)} of {len(pts)} points not drawn, e.g. {missed[:5]}"


def test_save_output_writes_the_canvas_size_with_super_resolution(qtbot, sketch_page, tmp_path, monkeypatch):
    """File > Save output: the 128 px photo at the canvas's 512 px, upscaled x4 by the bundled
    super-resolution model (off the UI thread), and the status bar says so."""
    from PIL import Image
    from PySide6.QtWidgets import QFileDialog
    page = sketch_page
    window = page.window()
    assert page.output is not None and page.output.shape == (128, 128, 3)
    assert "super-resolution model superres-x4" in page.save_photo.toolTip()
    path = tmp_path / "photo.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(path), "")))
    window.save_output_dialog()
    qtbot.waitUntil(lambda: path.is_file() and "super-resolution" in window.statusBar().currentMessage(),
                    timeout=60000)
    saved = Image.open(path)
    assert saved.size == (512, 512)
    message = window.statusBar().currentMessage()
    assert "512x512" in message and "superres-x4" in message, message
    lanczos = Image.fromarray(page.output).resize((512, 512), Image.LANCZOS)
    assert np.abs(np.asarray(saved.convert("RGB"), int) - np.asarray(lanczos, int)).mean() > 1  # not resampled
    # a second save of the same photo reuses the upscale at once
    again = tmp_path / "again.png"
    page.save_output(again)
    assert Image.open(again).size == (512, 512) and "superres-x4" in page.last_save


def test_save_output_without_super_resolution_resamples_and_says_so(qtbot, sketch_page, tmp_path, monkeypatch):
    from PIL import Image
    page = sketch_page
    monkeypatch.setattr(page, "superres_model", lambda: None)
    assert "LANCZOS" in page.save_note()
    messages = []
    page.status.connect(messages.append)
    path = tmp_path / "photo.png"
    page.save_output(path)
    assert Image.open(path).size == (512, 512)
    expected = Image.fromarray(page.output).resize((512, 512), Image.LANCZOS)
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), np.asarray(expected))
    qtbot.waitUntil(lambda: bool(messages), timeout=5000)
    assert "512x512" in messages[-1] and "LANCZOS" in messages[-1], messages
