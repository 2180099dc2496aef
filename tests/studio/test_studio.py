"""The studio, offscreen with pytest-qt, each page on a tiny model made here."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QWheelEvent  # noqa: E402

from tests import tiny_models  # noqa: E402
from tests.conftest import domain_verdict  # noqa: E402
from studio.app import MainWindow  # noqa: E402
from studio.gap_meter import GapMeter  # noqa: E402
from trainer import inference  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {name: getattr(tiny_models, name)(d / f"{name}.safetensors")
            for name in ("pix2pix", "cyclegan", "stargan", "stylegan")}


def rendered(qtbot, page, since, timeout=15000):
    qtbot.waitUntil(lambda: page.render_count > since and page.settled(), timeout=timeout)
    qtbot.wait(50)


def open_model(qtbot, window, path, page_name):
    page = window.pages[page_name]
    n = page.render_count
    assert window.add_model(path)
    assert window.page() is page
    qtbot.waitUntil(lambda: page.info is not None and page.info.path == str(path), timeout=15000)
    return page, n


def draw(page, points, qtbot=None, pause=0):
    c = page.canvas
    c.begin_stroke(QPointF(*points[0]))
    for p in points[1:]:
        c.extend_stroke(QPointF(*p))
        if qtbot and pause:
            qtbot.wait(pause)
    c.end_stroke()


def test_sketch_page_draws_renders_the_newest_and_undoes(qtbot, window, models):
    page, n = open_model(qtbot, window, models["pix2pix"], "sketch")
    rendered(qtbot, page, n)
    page.canvas.clear()
    blank = page.canvas.to_array()
    assert (blank == 255).all()
    n = page.render_count
    for k in range(5):  # five quick strokes: requests pile up, only the newest counts
        draw(page, [(50 + 40 * k, 100), (80 + 40 * k, 400)])
    rendered(qtbot, page, n)
    drawn = page.canvas.to_array()
    assert (drawn < 128).any()
    t = inference.load(models["pix2pix"], precision="auto")  # as the studio loads it (its default precision)
    final = page.request()  # what the page sends for the canvas as it is now
    expected = t.run_array(final.image, **final.controls)
    assert np.array_equal(page.output, expected)  # the output shown is that of the final canvas
    assert page.output.shape == (32, 32, 3)
    stack = page.canvas.undo_stack
    assert stack.count() >= 7 and stack.undoLimit() >= 50
    for _ in range(5):
        stack.undo()
    assert np.array_equal(page.canvas.to_array(), blank)
    stack.redo()
    assert not np.array_equal(page.canvas.to_array(), blank)
    window.undo_action.trigger()
    assert np.array_equal(page.canvas.to_array(), blank)


def test_sketch_page_keeps_the_training_resolution_the_photo_page_offers_native(qtbot, window, models):
    """The canvas is drawn at the model's scale: the Sketch page asks for resolution "training"
    (its row hidden, as output_size's); the Photo page shows the control, native by default."""
    page, n = open_model(qtbot, window, models["pix2pix"], "sketch")
    rendered(qtbot, page, n)
    assert page.panel.values()["resolution"] == "training" and page.request().controls["resolution"] == "training"
    assert not page.panel.widgets["resolution"].isVisibleTo(window)
    page, n = open_model(qtbot, window, models["cyclegan"], "photo")
    rendered(qtbot, page, n)
    assert page.panel.values()["resolution"] == "native" and page.panel.widgets["resolution"].isVisibleTo(window)


def test_noise_seed_is_greyed_out_outside_paper_mode(qtbot, window, models):
    page, n = open_model(qtbot, window, models["pix2pix"], "sketch")
    rendered(qtbot, page, n)
    seed, label = page.panel.widgets["seed"], page.panel.labels["seed"]
    assert page.panel.values()["mode"] == "paper" and seed.isEnabled() and label.isEnabled()
    for mode, on in (("eval", False), ("deterministic", False), ("paper", True)):
        page.panel.widgets["mode"].setCurrentIndex(page.panel.widgets["mode"].findData(mode))
        assert seed.isEnabled() is on and label.isEnabled() is on, mode
    page.panel.set_values({"mode": "eval"}, emit=False)
    assert not seed.isEnabled()


def test_the_sketch_page_judges_the_drawing_once_a_stroke_ends(qtbot, window, models):
    page, n = open_model(qtbot, window, models["pix2pix"], "sketch")
    rendered(qtbot, page, n)
    posted = []
    post = page.post
    page.post = lambda req: posted.append(req.channel) or post(req)
    c = page.canvas
    c.begin_stroke(QPointF(60, 60))
    c.extend_stroke(QPointF(200, 220))
    page.refresh()  # a live render mid-stroke: no domain check for a half-drawn line
    assert page.channel() in posted and page.channel("domain") not in posted
    c.end_stroke()
    assert page.channel("domain") in posted
    assert posted.index(page.channel("domain")) > posted.index(page.channel())
    rendered(qtbot, page, n)


def test_sketch_mouse_strokes_wheel_and_save(qtbot, window, models, tmp_path):
    page, n = open_model(qtbot, window, models["pix2pix"], "sketch")
    rendered(qtbot, page, n)
    page.canvas.clear()
    r = page.canvas.target_rect()
    start = (int(r.x() + 20), int(r.y() + 20))
    qtbot.mousePress(page.canvas, Qt.LeftButton, pos=QPoint(*start))
    for i in range(1, 10):
        qtbot.mouseMove(page.canvas, QPoint(start[0] + 15 * i, start[1] + 10 * i))
    qtbot.mouseRelease(page.canvas, Qt.LeftButton, pos=QPoint(start[0] + 135, start[1] + 90))
    assert (page.canvas.to_array() < 128).any()
    before = page.canvas.brush
    ev = QWheelEvent(QPointF(50, 50), QPointF(50, 50), QPoint(0, 0), QPoint(0, 120), Qt.NoButton, Qt.NoModifier,
                     Qt.NoScrollPhase, False)
    page.canvas.wheelEvent(ev)
    assert page.canvas.brush > before and page.brush.value() == page.canvas.brush
    n = page.render_count
    page.refresh()
    rendered(qtbot, page, n)
    page.save_output(tmp_path / "out.png")
    qtbot.waitUntil(lambda: (tmp_path / "out.png").is_file(), timeout=60000)  # an upscale is written when done
    assert Image.open(tmp_path / "out.png").size == (512, 512)  # the canvas's resolution
    page.export_both().save(tmp_path / "both.png")
    assert Image.open(tmp_path / "both.png").size[0] > 64


def test_edges_from_photo_makes_a_sketch(qtbot, window, models, tmp_path):
    page, _ = open_model(qtbot, window, models["pix2pix"], "sketch")
    photo = Image.new("RGB", (300, 200), "white")
    photo.paste((200, 30, 30), (100, 50, 200, 150))
    photo.save(tmp_path / "p.jpg")
    before = page.canvas.undo_stack.count()
    page.load_edges(tmp_path / "p.jpg")  # decoded and traced off the UI thread
    qtbot.waitUntil(lambda: page.canvas.undo_stack.count() > before, timeout=60000)
    a = page.canvas.to_array()
    assert 0.005 < (a.mean(2) < 128).mean() < 0.2  # the square's outline, not a filled area
    ys, xs = np.nonzero(a.mean(2) < 128)
    assert 0.9 < (np.ptp(ys) + 1) / (np.ptp(xs) + 1) < 1.1  # still a square: the 3:2 photo is not squashed


def test_a_photo_opened_as_a_sketch_is_named_and_a_drawing_is_not(qtbot, window, models, tmp_path):
    """A sketch2photo model's input must be a line drawing: a photo opened on the Sketch page gets
    a one-line warning that points to Edges from photo; a wide drawing keeps its aspect."""
    from trainer import api
    page, _ = open_model(qtbot, window, models["pix2pix"], "sketch")
    api.sample_input("photo", 4, 96).save(tmp_path / "photo.png")
    drawing = Image.new("RGB", (300, 150), "white")
    ImageDraw.Draw(drawing).ellipse((110, 35, 190, 115), outline="black", width=4)  # a circle
    drawing.save(tmp_path / "wide.png")
    warning = domain_verdict(qtbot, window, page, tmp_path / "photo.png")
    assert warning and "Edges from photo" in warning
    assert domain_verdict(qtbot, window, page, tmp_path / "wide.png") is None
    ys, xs = np.nonzero(page.canvas.to_array().mean(2) < 128)
    assert 0.9 < (np.ptp(ys) + 1) / (np.ptp(xs) + 1) < 1.1  # the circle stays round on the square canvas


def test_drawing_renders_live_while_the_ui_thread_keeps_ticking(qtbot, window, models):
    """Behaviour only; the UI thread's longest gap is a figure of bench/studio_latency.py."""
    page, n = open_model(qtbot, window, models["pix2pix"], "sketch")
    rendered(qtbot, page, n)
    meter = GapMeter().start()
    for k in range(6):
        draw(page, [(30 + 10 * j + 60 * k, 50 + 7 * j) for j in range(25)], qtbot, pause=8)
    qtbot.wait(300)
    meter.stop()
    assert len(meter.gaps) > 50  # the event loop ran between the strokes
    assert page.render_count > n + 3  # it rendered live, during the strokes


def test_photo_page_translates_any_mode_with_cycle_and_folder(qtbot, window, models, tmp_path):
    page, n = open_model(qtbot, window, models["cyclegan"], "photo")
    assert page.cycle_box.isVisibleTo(window)
    Image.new("LA", (45, 30), (90, 200)).save(tmp_path / "grey.png")
    n = page.render_count
    assert window.open_image(tmp_path / "grey.png")
    qtbot.waitUntil(lambda: page.image_path == tmp_path / "grey.png", timeout=60000)
    rendered(qtbot, page, n)
    qtbot.waitUntil(lambda: page.output is not None and page.cycle_view.array is not None, timeout=15000)
    assert page.output.shape == (30, 45, 3)  # the input's resolution
    page.panel.set_values({"direction": "BtoA"})
    n = page.render_count
    rendered(qtbot, page, n)
    # broken image: a clear error in the view, nothing crashes
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    window.last_error = ""
    assert window.open_image(tmp_path / "broken.png")  # accepted; decoding fails off the UI thread
    qtbot.waitUntil(lambda: "broken.png" in window.last_error, timeout=60000)
    assert "broken" in page.input_view.message.lower() or page.input_view.message
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.new("RGB", (20 + i, 20), (i * 50, 0, 0)).save(src / f"{i}.png")
    (src / "bad.jpg").write_bytes(b"nope")
    # into their own folder the translations would replace the photos: refused, with the reason
    said = []
    page.status.connect(said.append)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    assert not page.translate_folder(src, src) and page.job is None
    assert "would have 3 of the input images written over" in said[-1]
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    # nor over an image of the user's in the chosen folder; a translation of before is replaced
    (tmp_path / "out").mkdir()
    Image.new("RGB", (5, 5)).save(tmp_path / "out" / "1.png")
    assert not page.translate_folder(src, tmp_path / "out") and "not written by a translation" in said[-1]
    (tmp_path / "out" / "1.png").unlink()
    page.status.disconnect(said.append)
    assert page.translate_folder(src, tmp_path / "out")
    qtbot.waitUntil(lambda: hasattr(page, "last_folder_result"), timeout=20000)
    assert page.last_folder_result == (3, 1, False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "1.png", "2.png"]
    for _ in range(2):  # into a subfolder of the photos, twice: the first run's translations are not inputs
        del page.last_folder_result
        qtbot.waitUntil(lambda: page.job is None, timeout=20000)
        assert page.translate_folder(src, src / "out")
        qtbot.waitUntil(lambda: hasattr(page, "last_folder_result"), timeout=20000)
        assert page.last_folder_result == (3, 1, False)


def test_attributes_checkboxes_rerender_and_stay_exclusive(qtbot, window, models, tmp_path):
    page, n = open_model(qtbot, window, models["stargan"], "attributes")
    rendered(qtbot, page, n)
    assert page.image is not None  # a sample face is shown at once
    boxes = page.panel.widgets
    assert list(boxes) == [*tiny_models.DOMAINS, "resolution"]  # a checkbox per domain, then Resolution
    for name in tiny_models.DOMAINS:
        boxes[name].setChecked(False)
    n = page.render_count
    boxes["Black_Hair"].setChecked(True)
    rendered(qtbot, page, n)
    first = page.output.copy()
    n = page.render_count
    boxes["Blond_Hair"].setChecked(True)
    rendered(qtbot, page, n)
    assert not boxes["Black_Hair"].isChecked() and boxes["Blond_Hair"].isChecked()
    assert not np.array_equal(first, page.output)
    boxes["Blond_Hair"].setChecked(False)  # a group may be all off
    assert not any(boxes[h].isChecked() for h in tiny_models.DOMAINS[:3])
    qtbot.waitUntil(lambda: len(page.strip_arrays) == 5, timeout=15000)
    t = inference.load(models["stargan"], precision="auto")  # as the studio loads it
    values = page.panel.values()
    rendered(qtbot, page, page.render_count - 1)
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(window.worker.threads)  # and runs it: bf16 sums round by the thread count
    try:
        assert np.array_equal(page.output, t.run_array(page.image, **values))
    finally:
        torch.set_num_threads(threads)
    image = page.strip_image()
    assert image.size[0] > 5 * 32
    window.tabs.setCurrentWidget(page)
    Image.new("RGB", (64, 80), "tan").save(tmp_path / "face.png")
    assert window.open_image(tmp_path / "face.png")


def test_a_sample_faces_boxes_stay_ticked_when_the_model_reloads(qtbot, window, models):
    """A sample face starts with its true attributes ticked, and a reload of the model (a new
    precision or device in Preferences) keeps them; a face of the user's does not get them."""
    from trainer import api
    page, n = open_model(qtbot, window, models["stargan"], "attributes")
    rendered(qtbot, page, n)
    page.samples.setCurrentIndex(2)
    truth = {k: v for k, v in api.face_attributes(1001).items() if k in tiny_models.DOMAINS}
    assert {k: page.panel.values()[k] for k in truth} == truth
    page.model_ready(page.info)  # what a reload does
    assert {k: page.panel.values()[k] for k in truth} == truth
    page.take_image(type("Decoded", (), {"image": Image.new("RGB", (64, 64), "tan"), "preview": None})())
    assert page.sample_attrs is None


def test_style_page_crossover_extremes_equal_pure_seeds(qtbot, window, models, tmp_path):
    page, n = open_model(qtbot, window, models["stylegan"], "style")
    rendered(qtbot, page, n)
    t = inference.load(models["stylegan"])
    w = page.panel.widgets  # built from the model's declared controls
    layer_checks = page.layer_set().checks  # one per layer the model declares
    assert len(layer_checks) == len(t.card["layer_resolutions"])
    w["seed"].setValue(5)
    w["style_seed"].setValue(9)
    common = {"psi": w["psi"].value(), "noise_mode": "const", "noise_strength": 1.0, "noise_seed": 0}
    for k, pure in ((0, 9), (len(layer_checks), 5)):
        n = page.render_count
        w["crossover"].setValue(k)
        rendered(qtbot, page, n)
        assert np.array_equal(page.output, t.run_array(seed=pure, style_seed=pure, **common)), k
        assert page.values()["style_layers"] == ",".join(str(i) for i in range(k, len(layer_checks)))
    n = page.render_count
    layer_checks[0].setChecked(True)  # any subset: only layer 0 from the style
    assert w["crossover"].label.text() == "custom layers"
    rendered(qtbot, page, n)
    assert page.values()["style_layers"] == "0"
    assert np.array_equal(page.output, t.run_array(seed=5, style_seed=9, style_layers="0", **common))
    # the grid: sources 5-7 alone, styles 9-11 alone, then each source with each style's layer 0
    qtbot.waitUntil(lambda: page.grid_arrays is not None and len(page.grid_arrays) == 15
                    and np.array_equal(page.grid_arrays[6], page.output), timeout=15000)
    assert np.array_equal(page.grid_arrays[0], t.run_array(seed=5, style_seed=5, **common))
    assert np.array_equal(page.grid_arrays[3], t.run_array(seed=9, style_seed=9, **common))
    assert np.array_equal(page.grid_arrays[14], t.run_array(seed=7, style_seed=11, style_layers="0", **common))
    image, h = np.asarray(page.grid_image()), page.output.shape[0]
    assert image.shape[0] > 4 * h and image.shape[1] > 4 * h and (image[:h, :h] == 255).all()  # a white corner
    assert np.array_equal(image[:h, -h:], page.grid_arrays[5])  # style 11 top right
    assert np.array_equal(image[-h:, :h], page.grid_arrays[2])  # source 7 bottom left
    page.save_latents(tmp_path / "l.json")
    saved = json.loads((tmp_path / "l.json").read_text())
    assert saved["seed"] == 5 and saved["style_layers"] == "0"
    w["seed"].setValue(1)
    page.load_latents(tmp_path / "l.json")
    assert page.values()["seed"] == 5 and page.values()["style_layers"] == "0"
    page.frames.setValue(4)
    page.export_gif(tmp_path / "i.gif")
    qtbot.waitUntil(lambda: (tmp_path / "i.gif").exists(), timeout=15000)
    assert Image.open(tmp_path / "i.gif").n_frames == 4
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="latents"):
        page.load_latents(tmp_path / "bad.json")


def test_style_page_refuses_bad_latents_and_keeps_working(qtbot, window, models, tmp_path):
    """A latents file with a bad value changes nothing and says which key is wrong; the page still
    renders afterwards. A crossover alone sets its layers; saving writes the slider's crossover
    (none for custom layers). The grid wraps at the largest seed; saving the grid or a GIF to a
    missing folder is reported, not raised."""
    page, n = open_model(qtbot, window, models["stylegan"], "style")
    rendered(qtbot, page, n)
    said = []
    page.status.connect(said.append)
    w, n_layers = page.panel.widgets, len(page.layer_set().checks)
    before = page.values()
    for bad, key in (({"seed": 5, "style_seed": 9, "style_layers": "a,b"}, "style_layers"),
                     ({"seed": 2 ** 70}, "seed"), ({"seed": None}, "seed"), ({"seed": -3}, "seed"),
                     ({"psi": 5}, "psi"), ({"style_layers": "0,99"}, "style_layers"),
                     ({"crossover": -1}, "crossover"), ({"noise_mode": "loud"}, "noise_mode"),
                     ({}, "not a latents file"), ([1, 2], "not a latents file")):
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=key):
            page.load_latents(tmp_path / "bad.json")
        assert page.values() == before, bad
    n = page.render_count
    w["seed"].setValue(42)  # the page is not left quiet: an edit renders
    rendered(qtbot, page, n)
    assert np.array_equal(page.output, inference.load(models["stylegan"]).run_array(**page.values()))
    (tmp_path / "x.json").write_text(json.dumps({"crossover": 2, "model": "elsewhere.safetensors"}))
    page.load_latents(tmp_path / "x.json")
    assert w["crossover"].value() == 2
    assert page.values()["style_layers"] == ",".join(map(str, range(2, n_layers)))
    page.save_latents(tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_text())["crossover"] == 2
    (tmp_path / "x.json").write_text(json.dumps({"style_layers": [1, 0]}))
    page.load_latents(tmp_path / "x.json")
    assert page.values()["style_layers"] == "0,1" and w["crossover"].label.text() == "custom layers"
    page.save_latents(tmp_path / "s.json")
    assert "crossover" not in json.loads((tmp_path / "s.json").read_text())
    page.load_latents(tmp_path / "s.json")
    assert page.values()["style_layers"] == "0,1"

    w["style_seed"].setValue(2 ** 31 - 1)  # the grid's next styles wrap to 0 and 1
    qtbot.waitUntil(lambda: page.grid_arrays is not None and "2147483647, 0, 1" in page.grid_caption.text()
                    and np.array_equal(page.grid_arrays[4], inference.load(models["stylegan"]).run_array(
                        **{**page.values(), "seed": 0, "style_seed": 0})), timeout=15000)
    shown = page.grid_caption.text()
    w["seed"].setValue(7)
    page.request()  # the caption names the grid on screen until the new one arrives
    assert page.grid_caption.text() == shown
    qtbot.waitUntil(lambda: "seeds 7, 8, 9" in page.grid_caption.text(), timeout=15000)
    assert page.save_grid(tmp_path / "missing" / "g.png") is None and "Grid not saved" in said[-1]
    assert page.save_grid(tmp_path / "g") == tmp_path / "g.png" and Image.open(tmp_path / "g.png").size[0] > 0
    page.export_gif(tmp_path / "missing" / "i.gif")
    assert "GIF not saved" in said[-1] and page.gif_path is None
    page.status.disconnect(said.append)


def test_style_page_files_as_a_newcomer_writes_them(qtbot, window, models, tmp_path, monkeypatch):
    """Latents written by hand read as the engine reads them ("" layers with a crossover: the
    crossover's; psi exact; a byte-order mark); hostile files are refused by name; a tail of layers
    ticked by hand moves the slider; a GIF goes to the export that asked for it, and a suffix that
    cannot animate is refused before rendering; Save output adds .png; a .json dropped on the page
    loads as latents."""
    from PySide6.QtWidgets import QFileDialog
    page, n = open_model(qtbot, window, models["stylegan"], "style")
    rendered(qtbot, page, n)
    said = []
    page.status.connect(said.append)
    w, n_layers = page.panel.widgets, len(page.layer_set().checks)
    (tmp_path / "a.json").write_text(json.dumps({"style_layers": "", "crossover": 2, "psi": 0.123}))
    page.load_latents(tmp_path / "a.json")
    assert page.values()["style_layers"] == ",".join(map(str, range(2, n_layers))) and w["crossover"].value() == 2
    assert page.values()["psi"] == 0.123
    page.save_latents(tmp_path / "b.json")
    assert json.loads((tmp_path / "b.json").read_text())["psi"] == 0.123
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"seed": 17}).encode())
    page.load_latents(tmp_path / "bom.json")
    assert page.values()["seed"] == 17
    for text, match in (("[" * 30000 + "]" * 30000, "nested too deeply"), (" " * 100000 + "{}", "100,002 bytes"), ('{"seed": ' + "9" * 400 + "}",
                                                                             r"seed = 9{30}\.\.\.: out of range")):
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(ValueError, match=match):
            page.load_latents(tmp_path / "bad.json")
    assert page.values()["seed"] == 17
    page.layer_set().checks[2].click()  # unticked by hand: 3.. is a tail, what the slider sets
    assert w["crossover"].value() == 3 and "from layer 3" in w["crossover"].label.text()
    page.layer_set().checks[n_layers - 1].click()
    assert w["crossover"].label.text() == "custom layers"

    page.export_gif(tmp_path / "i.jpg")
    assert "cannot hold an animation" in said[-1] and page.gif_path is None
    n = page.render_count
    page.frames.setValue(5)
    page.export_gif(tmp_path / "first.gif")
    page.frames.setValue(3)
    page.export_gif(tmp_path / "second")
    assert "instead of" in said[-1]
    qtbot.waitUntil(lambda: (tmp_path / "second.gif").exists() and page.settled(), timeout=30000)
    assert Image.open(tmp_path / "second.gif").n_frames == 3 and not (tmp_path / "first.gif").exists()
    assert not any("None" in line for line in said) and page.gif_path is None

    window.open_paths([tmp_path / "a.json"])  # dropped on the window while the Style page shows
    assert w["crossover"].value() == 2 and "Loaded latents" in said[-1]
    rendered(qtbot, page, n)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(tmp_path / "mine"), "")))
    window.save_output_dialog()
    assert Image.open(tmp_path / "mine.png").size == page.output.shape[1::-1]
    assert page.output_view.message in (None, "")
    page.status.disconnect(said.append)


def test_style_page_is_built_from_the_declared_controls(qtbot, window, models, tmp_path):
    """A StyleGAN whose card names no layer resolutions (an imported rosinality model) still gets
    one box per declared layer, labelled with the resolution its control declares, and its
    crossover; a model that only samples
    (DCGAN) gets its declared controls and no mixing grid."""
    import torch
    from trainer.modelfile import load_model, save_model
    from trainer.nets import build
    tensors, card = load_model(models["stylegan"])
    imported = save_model(tmp_path / "imported.safetensors", tensors,
                          {k: v for k, v in card.items() if k not in ("layer_resolutions", "n_latent")})
    page, n = open_model(qtbot, window, imported, "style")
    rendered(qtbot, page, n)
    layers = next(c for c in inference.load(imported).controls if c.kind == "layers")
    assert layers.data and [c.text() for c in page.layer_set().checks] == [f"{i}: {r}" for i, r in
                                                                           enumerate(layers.data)]
    n = page.render_count
    page.panel.widgets["crossover"].setValue(2)
    rendered(qtbot, page, n)
    assert page.panel.widgets["crossover"].label.text() == f"from layer 2 ({layers.data[2]} px, coarse)"
    assert page.values()["style_layers"] == ",".join(str(i) for i in range(2, len(layers.choices)))
    assert page.grid_view.parentWidget().isVisibleTo(window) and page.controls_box.title() == "Latents"

    torch.manual_seed(0)
    g = build("dcgan_G", nz=8, ngf=8, nc=3, image_size=32)
    dcgan = save_model(tmp_path / "dcgan.safetensors", {f"G.{k}": v for k, v in g.state_dict().items()},
                       {"method": "dcgan", "task": "sample", "image_size": 32, "channels": 3, "value_range": [-1, 1],
                        "nets": {"G": {"name": "dcgan_G", "args": {"nz": 8, "ngf": 8, "nc": 3, "image_size": 32}}}})
    page, n = open_model(qtbot, window, dcgan, "style")
    rendered(qtbot, page, n)
    assert set(page.panel.widgets) == {c.name for c in inference.load(dcgan).controls} == {"seed"}
    assert not page.grid_view.parentWidget().isVisibleTo(window) and page.controls_box.title() == "Controls"
    n = page.render_count
    page.panel.widgets["seed"].setValue(3)
    rendered(qtbot, page, n)
    assert np.array_equal(page.output, inference.load(dcgan).run_array(None, seed=3))


def drop(window, path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    ev = QDropEvent(QPointF(100, 100), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    window.dropEvent(ev)


def test_dropped_model_file_loads(qtbot, window, models):
    drop(window, models["stylegan"])
    page = window.pages["style"]
    assert window.page() is page
    qtbot.waitUntil(lambda: page.info is not None, timeout=15000)
    assert page.info.card["method"] == "stylegan"


def test_dropped_hostile_pickle_is_refused_and_runs_nothing(qtbot, window, tmp_path):
    import torch
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    torch.save({"G": Evil()}, tmp_path / "latest_net_G.pth")
    drop(window, tmp_path / "latest_net_G.pth")
    assert not marker.exists()
    assert "refused" in window.last_error
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 3)
    drop(window, tmp_path / "junk.safetensors")
    assert "junk.safetensors" in window.last_error
    assert window.isVisible()


def test_settings_persist_recent_files(qtbot, tmp_path, models):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)
    w = MainWindow(settings, scan_user=False)
    qtbot.addWidget(w)
    w.add_model(models["pix2pix"])
    w.close()
    w2 = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat), scan_user=False)
    qtbot.addWidget(w2)
    assert str(models["pix2pix"]) in (w2.settings.value("recent") or [])
    assert w2.recent_menu.actions()
    w2.close()


@pytest.mark.parametrize("page,model", [("sketch", "pix2pix"), ("photo", "cyclegan"), ("attributes", "stargan"),
                                        ("style", "stylegan")])
def test_screenshot_writes_a_non_blank_png(page, model, models, tmp_path):
    out = tmp_path / f"{page}.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "studio", "--screenshot", str(out), "--page", page, "--model",
                        str(models[model])], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and "note:" not in r.stderr, r.stderr
    a = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert a.shape[:2] == (800, 1280)
    assert a.std() > 10 and len(np.unique(a.reshape(-1, 3), axis=0)) > 200  # a rendered model output, not a blank


def test_screenshot_command_line_as_a_newcomer_types_it(models, tmp_path):
    """--page in any case; a page that does not exist and a missing folder exit 2 at once (no
    abort); a model shown on another page than its own is noted; a name without a suffix gets .png."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}

    def studio(*args):
        return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, timeout=120,
                              env=env)
    r = studio("--screenshot", str(tmp_path / "shot"), "--page", "Style", "--model", str(models["stargan"]))
    assert r.returncode == 0 and (tmp_path / "shot.png").is_file(), r.stderr
    assert "opens on the Attributes page; the Style page shows its own model" in r.stderr
    r = studio("--screenshot", str(tmp_path / "x.png"), "--page", "styles")
    assert r.returncode == 2 and "invalid choice: 'styles'" in r.stderr
    r = studio("--screenshot", str(tmp_path / "missing" / "x.png"))
    assert r.returncode == 2 and "no folder" in r.stderr and "Abort" not in r.stderr


def test_screenshot_of_a_refused_model_says_why_and_exits_2(tmp_path):
    import pickle
    class Evil:
        def __reduce__(self):  # unpickling would call print("pwned")
            return print, ("pwned",)
    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Evil()))
    out = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "studio", "--screenshot", str(out), "--model", str(tmp_path / "evil.pt")],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "evil.pt" in r.stderr and "refused" in r.stderr, r.stderr
    assert "pwned" not in r.stdout and out.exists()  # nothing ran; the window as it shows the refusal


def test_opening_a_bundled_model_by_path_lists_it_once(qtbot, window, monkeypatch):
    from studio import library
    bundled = sorted(library.BUNDLED.glob("*.safetensors"))[0]
    monkeypatch.chdir(library.BUNDLED.parent)
    assert window.add_model(os.path.relpath(bundled))
    names = [str(e.path.resolve()) for e in window.entries]
    assert names.count(str(bundled.resolve())) == 1


def test_status_bar_names_the_model_of_the_page_in_view(qtbot, window):
    photo, style = window.pages["photo"], window.pages["style"]
    window.tabs.setCurrentWidget(photo)
    window.statusBar().clearMessage()
    style.status.emit("Loaded faces-style.safetensors")  # a page out of view finishing its load
    assert window.statusBar().currentMessage() == ""
    photo.status.emit("Loaded shapes-cyclegan.safetensors")
    assert window.statusBar().currentMessage() == "Loaded shapes-cyclegan.safetensors"
    window.show_status("Cannot open trunc.png: truncated")  # a page's error is not shown on the next page
    window.tabs.setCurrentWidget(style)
    assert window.statusBar().currentMessage() == ""


def test_opening_an_image_ends_with_opened_not_opening(qtbot, window, tmp_path):
    page = window.pages["photo"]
    window.tabs.setCurrentWidget(page)
    Image.new("RGB", (40, 30), "white").save(tmp_path / "p.png")
    said = []
    page.status.connect(said.append)
    assert page.open_async(tmp_path / "p.png")
    qtbot.waitUntil(lambda: any(t.startswith("Opened") for t in said), timeout=60000)
    assert said[0] == "Opening p.png..." and "Opened p.png (40 x 30 px)" in said


def test_photo_page_opens_with_a_sample_of_the_models_domain_named_directions(qtbot, window, models, tmp_path):
    from trainer.data.sketches import render
    from studio.widgets.samples import SAMPLE_SEED
    page, n = open_model(qtbot, window, models["cyclegan"], "photo")  # trained on shapes-unpaired
    rendered(qtbot, page, n)
    direction = page.panel.widgets["direction"]
    assert [direction.itemText(i) for i in range(direction.count())] == ["photo -> cartoon", "cartoon -> photo"]
    assert [direction.itemData(i) for i in range(direction.count())] == ["AtoB", "BtoA"]  # what the model takes
    photo = np.asarray(render(SAMPLE_SEED, 64, style="photo")[0])
    assert np.array_equal(np.asarray(page.image), photo) and page.output is not None  # a result at once
    assert page.samples.currentText() == "Sample photo 1" and page.input_box.title() == "Input: photo"
    n = page.render_count
    direction.setCurrentIndex(1)  # cartoon -> photo: the same scene as a cartoon
    rendered(qtbot, page, n)
    assert np.array_equal(np.asarray(page.image), np.asarray(render(SAMPLE_SEED, 64, style="cartoon")[0]))
    assert page.samples.currentText() == "Sample cartoon 1" and page.output_box.title() == "Output: photo"
    n = page.render_count
    page.samples.setCurrentIndex(3)  # the user picks another
    rendered(qtbot, page, n)
    assert np.array_equal(np.asarray(page.image), np.asarray(render(SAMPLE_SEED + 2, 64, style="cartoon")[0]))
    Image.new("RGB", (40, 30), (10, 200, 30)).save(tmp_path / "mine.png")
    assert window.open_image(tmp_path / "mine.png")  # the user's own image stays on a new direction
    qtbot.waitUntil(lambda: page.image_path is not None, timeout=60000)
    direction.setCurrentIndex(0)
    assert np.asarray(page.image).shape == (30, 40, 3) and page.samples.currentIndex() == 0


def test_photo_page_offers_photos_to_a_super_resolution_model(qtbot, window, tmp_path):
    from trainer.data.sketches import render
    from studio.widgets.samples import SAMPLE_SEED
    page, n = open_model(qtbot, window, tiny_models.srresnet(tmp_path / "sr.safetensors"), "photo")
    rendered(qtbot, page, n)
    assert np.array_equal(np.asarray(page.image), np.asarray(render(SAMPLE_SEED, 64)[0]))
    assert page.output.shape == (256, 256, 3)  # enlarged 4x
    assert page.samples.isEnabled() and page.samples.currentText() == "Sample photo 1"


def test_domain_names_come_from_the_card():
    from studio.widgets.samples import direction_label, domain_names, has_samples
    assert domain_names({"training": {"dataset": "shapes-unpaired"}}) == ("photo", "cartoon")
    assert domain_names({"training": {"dataset": "/data/horse2zebra"}}) == ("horse", "zebra")
    assert domain_names({"domain_names": ["day", "night"], "training": {"dataset": "shapes-unpaired"}}) == \
        ("day", "night")
    assert direction_label({"training": {"dataset": "/somewhere/else"}}, "BtoA") == "B -> A"
    assert not has_samples({"task": "photo2photo", "training": {"dataset": "/not/here"}})


def test_sketch_test_time_mode_explains_each_choice(qtbot, window, models):
    from PySide6.QtCore import Qt as QtNs
    page, n = open_model(qtbot, window, models["pix2pix"], "sketch")
    mode = page.panel.widgets["mode"]
    tip = mode.toolTip()
    assert all(f"<b>{m}</b>:" in tip for m in ("paper", "deterministic", "eval"))
    assert "same sketch always gives the same photo" in tip and "seed" in tip
    assert page.panel.labels["mode"].toolTip() == tip
    for i in range(mode.count()):  # each choice says what it does when pointed at in the list
        assert mode.itemData(i, QtNs.ToolTipRole)


def test_opening_a_large_photo_decodes_off_the_ui_thread_and_shows_a_preview(qtbot, window, models, tmp_path):
    page, _ = open_model(qtbot, window, models["cyclegan"], "photo")
    qtbot.waitUntil(page.settled, timeout=60000)
    Image.new("RGB", (4000, 3000), "navy").save(tmp_path / "big.png")
    before = page.image
    assert window.open_image(tmp_path / "big.png")
    assert page.image is before  # the call returned before the file was decoded
    qtbot.waitUntil(lambda: page.image_path == tmp_path / "big.png", timeout=120000)
    assert page.image.size == (4000, 3000)  # the model gets the whole photo
    assert page.input_view.array.shape[:2] == (1536, 2048)  # the view a preview
