"""Style page (StyleGAN): source and style seeds, a crossover slider labelled with the resolution
each layer controls (coarse, middle, fine) and per-layer style checkboxes for any subset,
truncation psi, noise mode and strength; a style-mixing grid, latents saved and loaded as JSON,
and an interpolation between two seeds exported as an animated GIF. Models that only sample
(DCGAN) get their declared controls."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout,
                               QLabel, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget)

from studio.images import grid
from studio.pages.base import Page
from studio.widgets.controls import ControlPanel, FloatSlider, SeedBox
from studio.widgets.image_view import ImageView
from studio.workers import RenderRequest

GRID = 3  # sources x styles in the mixing grid


def band(resolution: int) -> str:
    """The StyleGAN paper's names: coarse (4-8 px), middle (16-32 px), fine (64 px and up)."""
    return "coarse" if resolution <= 8 else "middle" if resolution <= 32 else "fine"


class StylePage(Page):
    name = "style"
    title = "Style"
    tasks = ("style", "sample")
    empty_hint = ("No style model yet (StyleGAN).\nAdd one with File > Open model..., drop a .safetensors file "
                  "here,\nor import a rosinality .pt: gan-trainer import stylegan2.pt")

    def __init__(self, worker, parent=None):
        super().__init__(worker, parent)
        self.rich = False
        self.resolutions: list[int] = []
        self.grid_arrays = None
        self.output_view = ImageView("The generated image appears here.")
        self.grid_view = ImageView("Style-mixing grid: rows are sources, columns styles.")
        for v in (self.output_view, self.grid_view):
            v.files_dropped.connect(self.files_dropped)

        self.seed = SeedBox(0)
        self.style_seed = SeedBox(1)
        self.crossover = QSlider(Qt.Horizontal, toolTip="Layers below the crossover follow the source seed, "
                                                         "the rest the style seed")
        self.crossover_label = QLabel()
        self.crossover_label.setMinimumWidth(170)
        self.layer_box = QWidget()
        self.layer_grid = QGridLayout(self.layer_box)
        self.layer_grid.setContentsMargins(0, 0, 0, 0)
        self.layer_checks: list[QCheckBox] = []
        self.psi = FloatSlider(0.0, 1.0, 0.7)
        self.psi.setToolTip("Truncation psi: 1 the full variety, 0 the mean face")
        self.noise_mode = QComboBox(toolTip="random: new noise each render; const: fixed noise maps; off: none")
        self.noise_mode.addItems(["const", "random", "off"])
        self.noise_strength = FloatSlider(0.0, 2.0, 1.0)
        self.noise_strength.setToolTip("A multiplier on every noise input")
        self.noise_seed = SeedBox(0)
        self.noise_seed.setToolTip("The fixed noise maps (noise mode const)")

        self.rich_box = QGroupBox("Latents")
        form = QFormLayout(self.rich_box)
        form.setLabelAlignment(Qt.AlignRight | Qt.AlignVCenter)
        form.addRow("Source seed", self.seed)
        form.addRow("Style seed", self.style_seed)
        cross = QHBoxLayout()
        cross.addWidget(self.crossover, 1)
        cross.addWidget(self.crossover_label)
        form.addRow("Crossover", cross)
        form.addRow("Style layers", self.layer_box)
        form.addRow("Truncation psi", self.psi)
        form.addRow("Noise", self.noise_mode)
        form.addRow("Noise strength", self.noise_strength)
        form.addRow("Noise seed", self.noise_seed)
        for w in (self.seed, self.style_seed, self.noise_seed):
            w.valueChanged.connect(lambda *_: self.refresh())
        self.psi.valueChanged.connect(lambda *_: self.refresh())
        self.noise_strength.valueChanged.connect(lambda *_: self.refresh())
        self.noise_mode.currentIndexChanged.connect(lambda *_: self.refresh())
        self.crossover.valueChanged.connect(self._crossover_moved)

        self.panel = ControlPanel()  # for models without StyleGAN's controls
        self.panel.changed.connect(lambda _: self.refresh())
        self.generic_box = QGroupBox("Controls")
        QVBoxLayout(self.generic_box).addWidget(self.panel)

        save_grid = QPushButton("Save grid...", toolTip="Save the style-mixing grid as one image")
        save_grid.clicked.connect(self.save_grid_dialog)
        save_latents = QPushButton("Save latents...", toolTip="Save seeds, layers, psi and noise as JSON")
        save_latents.clicked.connect(self.save_latents_dialog)
        load_latents = QPushButton("Load latents...", toolTip="Load seeds, layers, psi and noise from JSON")
        load_latents.clicked.connect(self.load_latents_dialog)
        gif = QPushButton("Interpolation GIF...", toolTip="Export a GIF from the source seed to the style seed")
        gif.clicked.connect(self.gif_dialog)
        self.frames = QSpinBox(minimum=2, maximum=240, value=24, suffix=" frames", toolTip="Frames in the GIF")

        side = QVBoxLayout()
        side.addLayout(self.model_bar())
        side.addWidget(self.rich_box)
        side.addWidget(self.generic_box)
        buttons = QGridLayout()
        buttons.addWidget(save_latents, 0, 0)
        buttons.addWidget(load_latents, 0, 1)
        buttons.addWidget(save_grid, 1, 0)
        buttons.addWidget(gif, 2, 0)
        buttons.addWidget(self.frames, 2, 1)
        side.addLayout(buttons)
        side.addStretch(1)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setMinimumWidth(400)
        views = QHBoxLayout(self)
        for title, view in (("Image", self.output_view), ("Style mixing", self.grid_view)):
            box = QGroupBox(title)
            QVBoxLayout(box).addWidget(view)
            views.addWidget(box, 1)
        views.addWidget(side_widget)
        self.generic_box.setVisible(False)

    # -- model
    def model_ready(self, info):
        names = {c.name for c in info.controls}
        self.rich = "style_layers" in names
        self.rich_box.setVisible(self.rich)
        self.generic_box.setVisible(not self.rich)
        self.grid_view.parentWidget().setVisible(self.rich)
        if not self.rich:
            self.panel.set_controls(info.controls)
            return
        self.resolutions = list(info.card.get("layer_resolutions") or self._resolutions(info))
        n = len(self.resolutions)
        for c in self.layer_checks:
            c.deleteLater()
        self.layer_checks = []
        for i, r in enumerate(self.resolutions):
            c = QCheckBox(f"{i}: {r}")
            c.setToolTip(f"Layer {i} ({r} px, {band(r)}): take the style seed's w")
            c.toggled.connect(self._layers_toggled)
            self.layer_grid.addWidget(c, i // 4, i % 4)
            self.layer_checks.append(c)
        self.crossover.blockSignals(True)
        self.crossover.setRange(0, n)
        self.crossover.setValue(n // 2 if n > 2 else n)
        self.crossover.blockSignals(False)
        self._crossover_moved(self.crossover.value())

    @staticmethod
    def _resolutions(info):
        c = next(c for c in info.controls if c.name == "style_layers")
        return [int(s.split(": ")[1].split()[0]) for s in c.choices]

    def _crossover_moved(self, k):
        n = len(self.resolutions)
        if k >= n:
            text = "none: all from source"
        else:
            r = self.resolutions[k]
            text = f"from layer {k} ({r} px, {band(r)})"
        self.crossover_label.setText(text)
        for i, c in enumerate(self.layer_checks):
            c.blockSignals(True)
            c.setChecked(i >= k)
            c.blockSignals(False)
        self.refresh()

    def _layers_toggled(self, _):
        self.crossover_label.setText("custom layers")
        self.refresh()

    def style_layers(self) -> str:
        return ",".join(str(i) for i, c in enumerate(self.layer_checks) if c.isChecked())

    def values(self) -> dict:
        if not self.rich:
            return self.panel.values()
        layers = self.style_layers()
        return {"seed": self.seed.value(), "style_seed": self.style_seed.value(),
                "crossover": len(self.layer_checks) if not layers else 0, "style_layers": layers,
                "psi": self.psi.value(), "noise_mode": self.noise_mode.currentText(),
                "noise_strength": self.noise_strength.value(), "noise_seed": self.noise_seed.value()}

    def set_values(self, v: dict) -> None:
        """Restore what :meth:`values` gave (latents JSON)."""
        for w, key in ((self.seed, "seed"), (self.style_seed, "style_seed"), (self.noise_seed, "noise_seed")):
            w.blockSignals(True)
            w.setValue(int(v.get(key, w.value())))
            w.blockSignals(False)
        self.psi.blockSignals(True)
        self.psi.setValue(float(v.get("psi", self.psi.value())))
        self.psi.blockSignals(False)
        self.noise_strength.blockSignals(True)
        self.noise_strength.setValue(float(v.get("noise_strength", self.noise_strength.value())))
        self.noise_strength.blockSignals(False)
        self.noise_mode.blockSignals(True)
        self.noise_mode.setCurrentText(v.get("noise_mode", self.noise_mode.currentText()))
        self.noise_mode.blockSignals(False)
        chosen = {int(t) for t in str(v.get("style_layers", "")).split(",") if t.strip()}
        for i, c in enumerate(self.layer_checks):
            c.blockSignals(True)
            c.setChecked(i in chosen)
            c.blockSignals(False)
        self.crossover_label.setText("custom layers")
        self.refresh()

    # -- rendering
    def request(self):
        values = self.values()
        if self.rich:
            s, t = values["seed"], values["style_seed"]
            variants = [{"seed": s + i, "style_seed": t + j} for i in range(GRID) for j in range(GRID)]
            self.post(RenderRequest(self.info.path, self.channel("grid"), None, values, kind="variants",
                                    variants=variants))
        return RenderRequest(self.info.path, self.channel(), None, values)

    def show_result(self, channel, result):
        if channel == self.channel("grid"):
            self.grid_arrays = result
            self.grid_view.set_array(np.asarray(grid([result[i * GRID:(i + 1) * GRID] for i in range(GRID)])))
        elif channel == self.channel("gif"):
            self.write_gif(result)
        else:
            self.output = result
            self.output_view.set_array(result)

    def show_message(self, text):
        self.output_view.set_message(text)

    # -- files
    def grid_image(self):
        if not self.grid_arrays:
            return None
        return grid([self.grid_arrays[i * GRID:(i + 1) * GRID] for i in range(GRID)])

    def save_grid_dialog(self):
        image = self.grid_image()
        if image is None:
            self.status.emit("No grid yet")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save style-mixing grid", "style-mixing.png", "PNG (*.png)")
        if path:
            image.save(path)

    def save_latents(self, path) -> None:
        data = {"model": self.info.path if self.info else None, **self.values()}
        Path(path).write_text(json.dumps(data, indent=2))

    def load_latents(self, path) -> None:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not a latents file ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a latents file")
        self.set_values(data)

    def save_latents_dialog(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save latents", "latents.json", "JSON (*.json)")
        if path:
            self.save_latents(path)

    def load_latents_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Load latents", "", "JSON (*.json)")
        if path:
            try:
                self.load_latents(path)
            except ValueError as e:
                self.status.emit(str(e))

    def gif_dialog(self):
        if not self.rich or self.info is None:
            self.status.emit("Interpolation needs a StyleGAN model")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export interpolation", "interpolation.gif", "GIF (*.gif)")
        if path:
            self.export_gif(path)

    def export_gif(self, path) -> None:
        """Render the frames on the worker; the GIF is written when they arrive."""
        self.gif_path = Path(path)
        values = {**self.values(), "frames": self.frames.value()}
        for k in ("crossover", "style_layers"):
            values.pop(k, None)
        self.status.emit(f"Rendering {self.frames.value()} frames...")
        self.post(RenderRequest(self.info.path, self.channel("gif"), None, values, kind="interpolate"))

    def write_gif(self, frames) -> None:
        images = [Image.fromarray(f) for f in frames]
        images[0].save(self.gif_path, save_all=True, append_images=images[1:], duration=60, loop=0)
        self.status.emit(f"Saved {self.gif_path} ({len(images)} frames)")
