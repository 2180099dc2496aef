"""Sketch page (pix2pix): draw on the canvas and watch the photo follow, live while drawing
(throttled during a stroke, a final render at stroke end)."""
from __future__ import annotations

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

STROKE_INTERVAL_MS = 30  # at most ~33 live renders a second while a stroke goes on


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
        save_both = QPushButton("Save sketch + photo...", toolTip="Save the sketch and the output side by side")
        save_both.clicked.connect(self.save_both_dialog)
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
        self.panel.set_controls(info.controls)
        if self.canvas.undo_stack.count() == 0 and self.sample_seed == 0:
            self.load_sample()  # a newcomer sees a result at once; Clear gives a blank canvas

    def load_sample(self):
        from trainer.data.sketches import render
        self.sample_seed += 1
        _, sketch, _ = render(7919 * self.sample_seed, 128)
        self.canvas.load_array(np.asarray(sketch), "Sample sketch")

    def model_input(self):
        """The canvas at the model's size (drawing is at 512 px; the net sees its own size)."""
        size = int(self.info.card.get("image_size", 256)) if self.info else 256
        image = self.canvas.image.scaled(size, size, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
        from studio.images import qimage_to_array
        return qimage_to_array(image)

    def request(self):
        # a stroke's final render replaces a live one still running: the live one is already stale
        return RenderRequest(self.info.path, self.channel(), self.model_input(), self.panel.values(),
                             urgent=not self.canvas.in_stroke)

    def show_result(self, channel, result):
        self.output = result
        self.output_view.set_array(result)

    def show_message(self, text):
        self.output_view.set_message(text)

    def undo_stack(self):
        return self.canvas.undo_stack

    def open_image(self, path) -> bool:
        """Open an image as the sketch."""
        from trainer.data.imageio import open_image
        self.canvas.load_array(np.asarray(open_image(path)))
        return True

    def load_edges(self, path) -> None:

        from trainer.data.edges import edges
        from trainer.data.imageio import open_image
        size = int(self.info.card.get("image_size", 256)) if self.info else 256
        self.canvas.load_array(np.asarray(edges(open_image(path), size)), "Edges from photo")

    def load_sketch_dialog(self):
        path = self.ask_image("Load sketch")
        if path:
            self.open_with(self.open_image, path)

    def edges_dialog(self):
        path = self.ask_image("Edges from photo")
        if path:
            self.open_with(self.load_edges, path)

    def export_both(self) -> Image.Image | None:
        if self.output is None:
            return None
        h = self.output.shape[0]
        sketch = self.canvas.image.scaled(h, h, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
        from studio.images import qimage_to_array
        return side_by_side([qimage_to_array(sketch), self.output])

    def save_both_dialog(self):
        image = self.export_both()
        if image is None:
            self.status.emit("Nothing to save yet: draw something first")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save sketch and photo", "sketch-and-photo.png", "PNG (*.png)")
        if path:
            image.save(path)
            self.status.emit(f"Saved {path}")
