"""Attributes page (StarGAN): a face photo (opened, or a procedural sample), one checkbox per
target domain from the model's controls (exclusive groups like radio buttons that may all be
off), the edited face at once on every change, and a strip of every single-domain change."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QComboBox, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton,
                               QScrollArea, QVBoxLayout, QWidget)

from studio.images import array_to_qimage, side_by_side
from studio.pages.base import Page
from studio.widgets.controls import ControlPanel
from studio.widgets.image_view import ImageView
from studio.workers import RenderRequest
from trainer import api

SAMPLES = 12
THUMB = 96


def single_domain_changes(controls, values: dict) -> list[tuple[str, dict]]:
    """For every domain checkbox: its label and the values with just that domain flipped (turning
    one on in an exclusive group turns the rest of the group off)."""
    out = []
    for c in controls:
        if c.kind != "bool":
            continue
        v = dict(values)
        v[c.name] = not values[c.name]
        if v[c.name] and c.group:
            for o in controls:
                if o.group == c.group and o.name != c.name:
                    v[o.name] = False
        out.append((("+" if v[c.name] else "-") + (c.label or c.name), v))
    return out


class AttributesPage(Page):
    name = "attributes"
    title = "Attributes"
    tasks = ("attributes",)
    empty_hint = ("No attribute model yet (StarGAN).\nAdd one with File > Open model... or drop a .safetensors "
                  "file here,\nor train one: gan-trainer train stargan-faces")

    def __init__(self, worker, parent=None):
        super().__init__(worker, parent)
        self.image = None
        self.sample_attrs = None  # the true attributes of the sample face shown (None: the user's face)
        self.strip_arrays = []
        self.input_view = ImageView("Open a face photo or pick a sample.")
        self.output_view = ImageView("The edited face appears here.")
        for v in (self.input_view, self.output_view):
            v.files_dropped.connect(self.files_dropped)
        self.panel = ControlPanel()
        self.panel.changed.connect(lambda _: self.refresh())
        self.samples = QComboBox(toolTip="A procedural face to edit")
        self.samples.addItem("Pick a sample face...", None)
        for i in range(SAMPLES):
            self.samples.addItem(f"Sample face {i + 1}", i)
        self.samples.currentIndexChanged.connect(self._sample_chosen)
        open_button = QPushButton("Open face...", toolTip="Open a face photo (centred, any size; Ctrl+O)")
        open_button.clicked.connect(self.open_dialog)
        save_strip = QPushButton("Save strip...", toolTip="Save every single-domain change as one image")
        save_strip.clicked.connect(self.save_strip_dialog)
        self.strip = QWidget()
        self.strip_layout = QHBoxLayout(self.strip)
        self.strip_layout.setAlignment(Qt.AlignLeft)
        strip_scroll = QScrollArea(widgetResizable=True)
        strip_scroll.setWidget(self.strip)
        strip_scroll.setFixedHeight(THUMB + 56)

        views = QHBoxLayout()
        for title, view in (("Input", self.input_view), ("Output", self.output_view)):
            box = QGroupBox(title)
            QVBoxLayout(box).addWidget(view)
            views.addWidget(box, 1)
        side = QGroupBox("Target domains")
        side_lay = QVBoxLayout(side)
        side_lay.addLayout(self.model_bar())
        side_lay.addWidget(self.panel)
        side_lay.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(open_button)
        row.addWidget(self.samples)
        side_lay.addLayout(row)
        views.addWidget(side)
        strip_box = QGroupBox("Every single-domain change")
        sl = QGridLayout(strip_box)
        sl.addWidget(strip_scroll, 0, 0)
        sl.addWidget(save_strip, 0, 1, Qt.AlignTop)
        lay = QVBoxLayout(self)
        lay.addLayout(views, 1)
        lay.addWidget(strip_box)

    def model_ready(self, info):
        self.panel.set_controls(info.controls)
        if self.image is None:
            self.samples.setCurrentIndex(1)
        elif self.sample_attrs:  # a reloaded model (new precision, device...): the sample's boxes stay ticked
            self.panel.set_values({k: v for k, v in self.sample_attrs.items() if k in self.panel.widgets}, emit=False)

    def _sample_chosen(self, index):
        seed = self.samples.itemData(index)
        if seed is None:
            return
        size = int(self.info.card.get("image_size", 128)) if self.info else 128
        attrs = api.face_attributes(1000 + seed)
        # a sample's true attributes are known: start from them, so each tick changes one thing
        self.panel.set_values({k: v for k, v in attrs.items() if k in self.panel.widgets}, emit=False)
        self.set_image(api.sample_input("face", 1000 + seed, max(64, size), attrs))
        self.sample_attrs = attrs

    def set_image(self, image, preview=None):
        self.image = image
        self.input_view.set_array(np.asarray(image) if preview is None else preview)
        self.refresh()

    def take_image(self, decoded) -> None:
        self.sample_attrs = None  # a face of the user's: its attributes are not known
        self.set_image(decoded.image, decoded.preview)

    def open_dialog(self):
        path = self.ask_image("Open face")
        if path:
            self.open_async(path)

    def show_input_error(self, text):
        self.input_view.set_message(text)

    def request(self):
        if self.image is None:
            return None
        values = self.panel.values()
        self.strip_labels = [label for label, _ in single_domain_changes(self.panel.controls, values)]
        self.post(RenderRequest(self.info.path, self.channel("strip"), self.image, {}, kind="variants",
                                variants=[v for _, v in single_domain_changes(self.panel.controls, values)]))
        return RenderRequest(self.info.path, self.channel(), self.image, values)

    def show_result(self, channel, result):
        if channel == self.channel("strip"):
            self.show_strip(result)
            return
        self.output = result
        self.output_view.set_array(result)

    def show_strip(self, arrays):
        self.strip_arrays = arrays
        while self.strip_layout.count():
            self.strip_layout.takeAt(0).widget().deleteLater()
        for label, a in zip(self.strip_labels, arrays):
            cell = QWidget()
            v = QVBoxLayout(cell)
            v.setContentsMargins(2, 2, 2, 2)
            pic = QLabel()
            pic.setPixmap(QPixmap.fromImage(array_to_qimage(a)).scaled(THUMB, THUMB, Qt.KeepAspectRatio,
                                                                       Qt.SmoothTransformation))
            text = QLabel(label.replace("_", " "))
            text.setAlignment(Qt.AlignCenter)
            v.addWidget(pic)
            v.addWidget(text)
            cell.setToolTip(label)
            self.strip_layout.addWidget(cell)

    def show_message(self, text):
        self.output_view.set_message(text)

    def strip_image(self):
        if not self.strip_arrays or self.image is None:
            return None
        size = self.strip_arrays[0].shape[1], self.strip_arrays[0].shape[0]
        return side_by_side([np.asarray(self.image.convert("RGB").resize(size)), *self.strip_arrays])

    def save_strip_dialog(self):
        image = self.strip_image()
        if image is None:
            self.status.emit("No strip yet: load a model and a face")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save strip", "attribute-strip.png", "PNG (*.png)")
        if path:
            image.save(path)
            self.status.emit(f"Saved {path}")
