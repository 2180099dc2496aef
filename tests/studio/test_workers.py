"""The inference lanes: a page's slow render never holds back another page, a newer request
interrupts a long render, the views say when their output is not current, and closing the studio
in the middle of a render exits cleanly."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests import tiny_models
from tests.conftest import ROOT, domain_verdict
from studio.workers import PREEMPT_SECONDS, RenderRequest

SLOW = 4000  # variants of a 32 px StarGAN: seconds of work, interruptible between modules


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {name: getattr(tiny_models, name)(d / f"{name}.safetensors") for name in ("pix2pix", "stargan")}


def loaded(qtbot, window, path, name):
    page = window.pages[name]
    assert window.add_model(path)
    qtbot.waitUntil(lambda: page.info is not None and page.info.path == str(path), timeout=60000)
    qtbot.waitUntil(page.settled, timeout=60000)
    return page


def slow_request(page, channel="out"):
    face = np.full((32, 32, 3), 128, np.uint8)
    return RenderRequest(page.info.path, page.channel(channel), face, {}, kind="variants", variants=[{}] * SLOW)


def test_a_slow_render_on_one_page_does_not_hold_back_another(qtbot, window, models):
    faces = loaded(qtbot, window, models["stargan"], "attributes")
    sketch = loaded(qtbot, window, models["pix2pix"], "sketch")
    faces.post(slow_request(faces))
    qtbot.wait(200)
    n = sketch.render_count
    sketch.canvas.clear()
    sketch.refresh()
    qtbot.waitUntil(lambda: sketch.render_count > n and sketch.settled(), timeout=60000)
    assert not faces.settled()  # the sketch came back while the faces page was still rendering
    assert faces.output_view.busy  # ... and the faces page says its output is not current
    assert not sketch.output_view.busy


def test_a_newer_request_interrupts_a_long_render_and_clears_the_busy_mark(qtbot, window, models):
    faces = loaded(qtbot, window, models["stargan"], "attributes")
    shown = []
    window.worker.rendered.connect(lambda channel, stamp, *_: shown.append(stamp))
    slow = faces.post(slow_request(faces))
    qtbot.wait(int(PREEMPT_SECONDS * 1000) + 300)
    assert faces.output_view.busy
    quick = faces.post(RenderRequest(faces.info.path, faces.channel(), np.full((32, 32, 3), 90, np.uint8), {}))
    qtbot.waitUntil(lambda: quick in shown, timeout=60000)
    assert slow not in shown  # interrupted, never presented
    assert faces.settled() and not faces.output_view.busy


def test_an_urgent_render_goes_before_a_domain_check_posted_earlier(qtbot, window, models):
    faces = loaded(qtbot, window, models["stargan"], "attributes")
    order = []
    window.worker.rendered.connect(lambda channel, stamp, *_: order.append(channel))
    face = np.full((32, 32, 3), 128, np.uint8)
    faces.post(RenderRequest(faces.info.path, faces.channel("strip"), face, {}, kind="variants",
                             variants=[{}] * 40))  # keeps the lane busy while the next two queue
    faces.post(RenderRequest(faces.info.path, faces.channel("domain"), face, kind="domain"))
    faces.post(RenderRequest(faces.info.path, faces.channel(), face, {}, urgent=True))
    qtbot.waitUntil(lambda: {faces.channel(), faces.channel("domain")} <= set(order), timeout=60000)
    assert order.index(faces.channel()) < order.index(faces.channel("domain"))


def test_closing_in_the_middle_of_a_slow_render_exits_0(models, tmp_path):
    script = textwrap.dedent(f"""
        import os, sys, time
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        sys.path[:0] = [{str(ROOT)!r}]
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from studio.app import MainWindow
        from tests.studio.test_workers import slow_request
        w = MainWindow(QSettings({str(tmp_path / "s.ini")!r}, QSettings.IniFormat), scan_user=False)
        w.confirm_imports = False
        w.show()
        w.add_model({str(models["stargan"])!r})
        page = w.pages["attributes"]
        end = time.time() + 300
        while (page.info is None or not page.settled()) and time.time() < end:
            app.processEvents(); time.sleep(0.01)
        page.post(slow_request(page))
        end = time.time() + 0.5
        while time.time() < end:
            app.processEvents(); time.sleep(0.01)
        assert not page.settled(), "the render ended before the window closed"
        w.close()
        print("closed", flush=True)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "closed" in out.stdout
    assert "QThread" not in out.stderr, out.stderr[-2000:]


def test_a_face_model_says_when_its_input_is_not_a_face(qtbot, window, models, tmp_path):
    """The faces evaluator judges the input of a model trained on procedural faces: a photo of
    something else gets a one-line warning over the output; a procedural face none."""
    from PIL import Image

    from trainer.data.faces import render
    faces = loaded(qtbot, window, models["stargan"], "attributes")  # its card: trained on "faces"
    render(5, None, 64).save(tmp_path / "face.png")
    x = np.linspace(0, 1, 160)
    photo = np.stack([np.outer(np.sin(6 * x + i), np.cos(4 * x + 2 * i)) for i in range(3)], 2) * 100 + 128
    Image.fromarray(photo.astype(np.uint8)).save(tmp_path / "photo.png")
    for name, warned in (("photo.png", True), ("face.png", False)):
        assert bool(domain_verdict(qtbot, window, faces, tmp_path / name)) == warned, name
