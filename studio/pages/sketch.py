"""Sketch page (pix2pix): draw on the canvas and watch the photo follow, live while drawing
(throttled during a stroke, a final render at stroke end)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence
import numpy as np
from PySide6.QtWidgets import (QButtonGroup, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton,
                               QSpinBox, QToolButton, QVBoxLayout)

from studio.images import side_by_side
from studio.pages.base import Page
from studio.widgets.canvas import SketchCanvas
from studio.widgets.controls import ControlPanel
from studio.widgets.image_view import ImageView
from studio.workers import RenderRequest
from trainer import api

STROKE_INTERVAL_MS = 30  # at most ~33 live renders a second while a stroke goes on
SUPERRES = "superres-x4.safetensors"  # bundled: Save output upscales the photo to the canvas's size with it
SUPERRES_SCALE = 4  # its factor: used when it takes the photo exactly to the canvas's size
RESAMPLING = "LANCZOS resampling"  # without it
# controls the page sets itself (rows hidden): the photo at the model's own size, from a sketch
# drawn at the model's scale (the canvas is that scale, not a native-resolution photo)
FIXED = {"output_size": "model", "resolution": "training"}
# the test-time modes (trainer.inference.TEST_MODES) in a user's words: what each does to the photo
MODE_TIPS = {
    "paper": "varied, as in the pix2pix paper: a little random noise inside the model, so each noise seed "
             "gives a slightly different photo of the same sketch",
    "deterministic": "repeatable: no noise, the same sketch always gives the same photo; brightness and "
                     "contrast are judged from this sketch alone",
    "eval": "repeatable and steady: no noise, and brightness and contrast follow what the model learned over "
            "all its training photos rather than this sketch; often the most even colours, sometimes duller",
}


class SketchPage(Page):
    name = "sketch"
    title = "Sketch"
    tasks = ("sketch2photo",)
    empty_hint = ("No sketch-to-photo model yet.\nAdd one with File > Open model... or by dropping a "
                  ".safetensors file here,\nor train one: gan-trainer train pix2pix-sketches")

    def __init__(self, worker, parent=None):
        super().__init__(worker, parent)
        self.canvas = SketchCanvas()
        self.output_view = ImageView("The photo appears here as you draw.")
        self.output_view.files_dropped.connect(self.files_dropped)
        self.panel = ControlPanel()
        self.panel.changed.connect(lambda _: self.refresh())
        self.throttle = QTimer(self, singleShot=True, interval=STROKE_INTERVAL_MS)
        self.throttle.timeout.connect(self.refresh)
        self.canvas.changed.connect(self._canvas_changed)

        tools = QGroupBox("Drawing")
        grid = QGridLayout(tools)
        self.pen_button = QToolButton(text="Pen", checkable=True, checked=True, toolTip="Draw black lines (P)")
        self.eraser_button = QToolButton(text="Eraser", checkable=True, toolTip="Erase to white (E)")
        self.pen_button.setShortcut(QKeySequence("P"))
        self.eraser_button.setShortcut(QKeySequence("E"))
        group = QButtonGroup(self)
        group.addButton(self.pen_button)
        group.addButton(self.eraser_button)
        self.eraser_button.toggled.connect(self.canvas.set_eraser)
        self.brush = QSpinBox(minimum=1, maximum=64, value=self.canvas.brush, suffix=" px",
                              toolTip="Brush size (also the mouse wheel over the canvas; [ and ])")
        self.brush.valueChanged.connect(self.canvas.set_brush)
        self.canvas.brush_changed.connect(self.brush.setValue)
        clear = QPushButton("Clear", toolTip="Clear the canvas (undoable)")
        clear.clicked.connect(self.canvas.clear)
        undo = QPushButton("Undo", toolTip="Undo the last stroke (Ctrl+Z)")
        undo.clicked.connect(self.canvas.undo_stack.undo)
        redo = QPushButton("Redo", toolTip="Redo (Ctrl+Shift+Z)")
        redo.clicked.connect(self.canvas.undo_stack.redo)
        self.canvas.undo_stack.canUndoChanged.connect(undo.setEnabled)
        self.canvas.undo_stack.canRedoChanged.connect(redo.setEnabled)
        undo.setEnabled(False)
        redo.setEnabled(False)
        load = QPushButton("Load sketch...", toolTip="Open an image as the sketch")
        load.clicked.connect(self.load_sketch_dialog)
        edges = QPushButton("Edges from photo...", toolTip="Open a photo and draw its edges as the sketch")
        edges.clicked.connect(self.edges_dialog)
        sample = QPushButton("Sample sketch", toolTip="Start from a procedural sketch (a new one each click)")
        sample.clicked.connect(self.load_sample)
        self.sample_seed = 0
        self._upscale_cache = None  # (output array, its super-resolution upscale)
        self._pending_save = None  # (path, output array) waiting for its upscale
        self.last_save = ""
        save_both = QPushButton("Save sketch + photo...", toolTip="Save the sketch and the output side by side")
        save_both.clicked.connect(self.save_both_dialog)
        self.save_photo = QPushButton("Save photo...", toolTip=self.save_note())  # as File > Save output
        self.save_photo.clicked.connect(self.save_photo_dialog)
        grid.addWidget(self.pen_button, 0, 0)
        grid.addWidget(self.eraser_button, 0, 1)
        grid.addWidget(QLabel("Brush"), 0, 2, alignment=Qt.AlignRight)
        grid.addWidget(self.brush, 0, 3)
        grid.addWidget(clear, 0, 4)
        grid.addWidget(undo, 0, 5)
        grid.addWidget(redo, 0, 6)
        grid.addWidget(load, 1, 0, 1, 2)
        grid.addWidget(edges, 1, 2, 1, 2)
        grid.addWidget(sample, 1, 4)
        grid.addWidget(save_both, 1, 5, 1, 2)
        grid.addWidget(self.save_photo, 2, 5, 1, 2)

        views = QHBoxLayout()
        views.addWidget(self.canvas, 1)
        views.addWidget(self.output_view, 1)
        side = QGroupBox("Model")
        side_lay = QVBoxLayout(side)
        side_lay.addLayout(self.model_bar())
        side_lay.addWidget(self.panel)
        bottom = QHBoxLayout()
        bottom.addWidget(tools, 3)
        bottom.addWidget(side, 2)
        lay = QVBoxLayout(self)
        lay.addLayout(views, 1)
        lay.addLayout(bottom)

    def _canvas_changed(self, in_stroke: bool) -> None:
        if in_stroke:
            if not self.throttle.isActive():
                self.throttle.start()
        else:
            self.throttle.stop()
            self.refresh()

    def model_ready(self, info):
        # the page always asks for the model's own size (Save output upscales it to the canvas's),
        # the sketch being drawn at the model's scale: output_size "model" and resolution "training",
        # their rows hidden, so the panel's values are the request's
        self.panel.set_controls([replace(c, default=FIXED[c.name]) if c.name in FIXED else c
                                 for c in info.controls])
        for name in FIXED:
            if name in self.panel.widgets:
                self.panel.form.setRowVisible(self.panel.widgets[name], False)
        self.save_photo.setToolTip(self.save_note())
        seed_note = ("" if not any(c.name == "seed" and c.label == "Seed" for c in info.controls) else
                     "<p>In every mode the Seed picks the photo's colours.</p>")  # BicycleGAN
        # rich text: Qt wraps it to a readable width
        self.panel.describe_choices("mode", tips=MODE_TIPS, help="<p>How the model turns the sketch into a "
                                    "photo:</p><ul>" + "".join(f"<li><b>{m}</b>: {t}</li>" for m, t in
                                                               MODE_TIPS.items()) + "</ul>" + seed_note)
        if self.canvas.undo_stack.count() == 0 and self.sample_seed == 0:
            self.load_sample()  # a newcomer sees a result at once; Clear gives a blank canvas

    def load_sample(self):
        self.sample_seed += 1
        sketch = api.sample_input("sketch", 7919 * self.sample_seed, 128)
        self.canvas.load_array(np.asarray(sketch), "Sample sketch")

    def full_resolution(self) -> bool:
        """Whether the model takes the canvas as drawn and answers at its own size: a sketch2photo
        translator with stroke normalisation, which must see the lines at the canvas's resolution
        (docs/sketch-strokes.md)."""
        return self.info is not None and any(c.name == "output_size" for c in self.info.controls)

    def model_input(self):
        """The canvas at full resolution (512 px) where the model normalises the strokes itself
        (it scales the result to its own size), else scaled to the model's size."""
        from studio.images import qimage_to_array
        if self.full_resolution():
            return self.canvas.to_array()
        size = int(self.info.card.get("image_size", 256)) if self.info else 256
        image = self.canvas.image.scaled(size, size, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
        return qimage_to_array(image)

    def request(self):
        controls = self.panel.values()  # with output_size "model": the photo at the model's size
        # a stroke's final render replaces a live one still running: the live one is already stale
        return RenderRequest(self.info.path, self.channel(), self.model_input(), controls,
                             urgent=not self.canvas.in_stroke)

    def judge_input(self) -> bool:
        return not self.canvas.in_stroke  # a half-drawn stroke is not worth a domain check

    def show_result(self, channel, result):
        if channel == self.channel("upscale"):
            self._upscaled(result)
            return
        self.output = result
        self.output_view.set_array(result)

    # -- Save output: the photo at the canvas's resolution
    def superres_model(self) -> Path | None:
        """The bundled x4 super-resolution model, if it is installed."""
        from studio.library import BUNDLED
        path = Path(BUNDLED) / SUPERRES
        return path if path.is_file() else None

    def superres_for(self, size: int) -> Path | None:
        """The super-resolution model when it takes a ``size`` px photo exactly to the canvas's size
        (128 -> 512: x4), else None (the photo is resampled)."""
        return self.superres_model() if size * SUPERRES_SCALE == self.canvas.image.width() else None

    def save_note(self) -> str:
        """How Save output makes the photo as large as the canvas, in words."""
        side = self.canvas.image.width()
        size = int(self.info.card.get("image_size", side)) if self.info else None
        if size is None or size >= side:
            return f"Save output writes the photo at {side}x{side}"
        if self.superres_for(size) is not None:
            return (f"Save output writes the photo at {side}x{side}, upscaled from {size} px by the "
                    f"super-resolution model {SUPERRES}")
        why = (f"no super-resolution model {SUPERRES} installed" if self.superres_model() is None else
               f"{SUPERRES} enlarges x{SUPERRES_SCALE}, not x{side / size:g}")
        return f"Save output writes the photo at {side}x{side}, resampled from {size} px ({RESAMPLING}; {why})"

    def _resized(self, array: np.ndarray) -> Image.Image:
        side = self.canvas.image.width()
        image = Image.fromarray(array)
        return image if image.size == (side, side) else image.resize((side, side), Image.LANCZOS)

    def export_image(self) -> Image.Image | None:
        """What Save output and Copy output write: the photo at the canvas's size, upscaled by the
        super-resolution model when it has already upscaled this photo, else resampled (LANCZOS)."""
        if self.output is None:
            return None
        if self._upscale_cache is not None and self._upscale_cache[0] is self.output:
            return self._resized(self._upscale_cache[1])
        return self._resized(self.output)

    def save_output(self, path) -> None:
        """Write the photo at the canvas's resolution. With the super-resolution model the file is
        written when its upscale (in the page's render lane, off the UI thread) arrives; the status
        bar then says how it was made, as it does at once for a resampled one."""
        if self.output is None:
            raise ValueError("there is no output to save yet")
        model = self.superres_for(self.output.shape[0])
        cached = self._upscale_cache is not None and self._upscale_cache[0] is self.output
        if model is None or cached:
            self._write(path, self.export_image(), self.output.shape[0], SUPERRES if cached else None,
                        raise_errors=True)
            return
        self._pending_save = (str(path), self.output)
        self.post(RenderRequest(str(model), self.channel("upscale"), self.output, {}, urgent=True))

    def _upscaled(self, result) -> None:
        if self._pending_save is None:
            return
        path, source = self._pending_save
        self._pending_save = None
        self._upscale_cache = (source, result)
        self._write(path, self._resized(result), source.shape[0], SUPERRES)

    def _render_failed(self, channel, stamp, message) -> None:
        if channel == self.channel("upscale") and self._pending_save is not None:  # resampled instead
            path, source = self._pending_save
            self._pending_save = None
            self._settle(channel, stamp)
            self._write(path, self._resized(source), source.shape[0], None,
                        f"; the super-resolution model failed: {message.splitlines()[0]}")
            return
        super()._render_failed(channel, stamp, message)

    def _write(self, path, image: Image.Image, size: int, superres: str | None, note: str = "",
               raise_errors: bool = False) -> None:
        """Save ``image`` (made from a ``size`` px photo) and say how it was made."""
        try:
            image.save(path)
        except (ValueError, OSError) as e:
            self.last_save = f"Cannot save {Path(path).name}: {e}"
            if raise_errors:  # the main window's save dialog reports it
                raise
            self.status.emit(self.last_save)
            return
        if size >= image.width:
            how = "the model's own size"
        elif superres:
            how = f"upscaled from {size} px by the super-resolution model {superres}"
        else:
            how = f"resampled from {size} px ({RESAMPLING})"
        self.last_save = f"Saved {Path(path).name}: {image.width}x{image.height}, {how}{note}"
        # after the main window's own "Saved ..." line, which follows this call
        QTimer.singleShot(0, lambda text=self.last_save: self.status.emit(text))

    def undo_stack(self):
        return self.canvas.undo_stack

    def take_image(self, decoded) -> None:
        """An opened image becomes the sketch."""
        self.canvas.load_array(decoded.preview)

    def load_edges(self, path) -> None:
        """A photo's edges become the sketch (decoded and traced off the UI thread), traced at the
        model's size on its longer side, the aspect kept."""
        size = int(self.info.card.get("image_size", 256)) if self.info else 256

        def trace(image):
            k = size / max(image.size)
            return api.photo_edges(image.resize((max(1, round(image.width * k)), max(1, round(image.height * k))),
                                                Image.BICUBIC))
        self.open_async(path, take=lambda decoded: self.canvas.load_array(np.asarray(decoded.prepared),
                                                                          "Edges from photo"), prepare=trace)

    def load_sketch_dialog(self):
        path = self.ask_image("Load sketch")
        if path:
            self.open_async(path)

    def edges_dialog(self):
        path = self.ask_image("Edges from photo")
        if path:
            self.load_edges(path)

    def export_both(self) -> Image.Image | None:
        if self.output is None:
            return None
        h = self.output.shape[0]
        sketch = self.canvas.image.scaled(h, h, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
        from studio.images import qimage_to_array
        return side_by_side([qimage_to_array(sketch), self.output])

    def save_photo_dialog(self):
        if self.output is None:
            self.status.emit("Nothing to save yet: draw something first")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save photo", "sketch-output.png", "PNG (*.png);;JPEG (*.jpg)")
        if path:
            try:
                self.save_output(path)
            except (ValueError, OSError) as e:
                self.status.emit(f"Cannot save: {e}")

    def save_both_dialog(self):
        image = self.export_both()
        if image is None:
            self.status.emit("Nothing to save yet: draw something first")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save sketch and photo", "sketch-and-photo.png", "PNG (*.png)")
        if path:
            image.save(path)
            self.status.emit(f"Saved {path}")
