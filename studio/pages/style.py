"""Style page (StyleGAN): the model's declared controls (source and style seeds, truncation psi,
noise mode, strength and seed), its layer set (kind ``layers``) as per-layer style checkboxes for
any subset, and its crossover as a slider labelled with the resolution each layer controls
(coarse, middle, fine) that sets the layer set; a style-mixing grid, latents saved and loaded as
JSON, and an interpolation between two seeds exported as an animated GIF. Models that only
sample (DCGAN) get their declared controls, without the grid."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtWidgets import (QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from studio.images import grid, with_suffix
from studio.pages.base import Page
from studio.widgets.controls import ControlPanel
from studio.widgets.image_view import ImageView
from studio.workers import RenderRequest
from trainer.api import SEED_MAX, mixing_rows, parse_layers

GRID = 3  # sources x styles in the mixing grid
LATENTS_MAX_BYTES = 64 * 1024  # a latents file is a few hundred bytes
# the names StyleGAN's translator declares: the grid varies the two seeds; the crossover (an int
# control) sets the layer set (the first control of kind "layers") when it moves
SEED, STYLE_SEED, CROSSOVER = "seed", "style_seed", "crossover"


def band(resolution: int) -> str:
    """The StyleGAN paper's names: coarse (4-8 px), middle (16-32 px), fine (64 px and up)."""
    return "coarse" if resolution <= 8 else "middle" if resolution <= 32 else "fine"


def grid_seeds(seed: int, maximum: int = SEED_MAX) -> list[int]:
    """The grid's seeds: ``seed`` and the next ones, wrapping from ``maximum`` to 0."""
    return [(seed + i) % (maximum + 1) for i in range(GRID)]


def layer_resolutions(layers) -> list[int] | None:
    """The resolution (px) each style layer controls, as the model's ``layers`` control declares
    it (its ``data``), or None when it does not say."""
    res = layers.data
    ok = len(res) == len(layers.choices) and all(isinstance(r, int) and r > 0 for r in res)
    return list(res) if ok else None


class StylePage(Page):
    name = "style"
    title = "Style"
    tasks = ("style", "sample")
    empty_hint = ("No style model yet (StyleGAN).\nAdd one with File > Open model..., drop a .safetensors file "
                  "here,\nor import a rosinality .pt: gan-trainer import stylegan2.pt")

    def __init__(self, worker, parent=None):
        super().__init__(worker, parent)
        self.rich = False  # the model declares a layer set: style mixing (grid, crossover, GIF)
        self.layers_name = ""  # the name of its layer set
        self.resolutions: list[int] | None = None
        self.grid_arrays = None
        self.grid_captions: dict[int, str] = {}  # request stamp -> the seeds its grid shows
        self.gif_paths: dict[int, Path] = {}  # the export being rendered: its request's stamp -> its file
        self.output_view = ImageView("The generated image appears here.")
        self.grid_view = ImageView("Style-mixing grid: the source seeds down the left, the style seeds on top; "
                                   "inside, each source with the style's layers.")
        for v in (self.output_view, self.grid_view):
            v.files_dropped.connect(self.files_dropped)

        self.panel = ControlPanel()  # the model's declared controls
        self.panel.form.setContentsMargins(0, 0, 0, 0)  # the box around it has its own
        self.panel.changed.connect(lambda _: self.refresh())
        self.controls_box = QGroupBox("Controls")
        QVBoxLayout(self.controls_box).addWidget(self.panel)

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
        side.addWidget(self.controls_box)
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
        self.grid_caption = QLabel(wordWrap=True)
        self.grid_caption.setMinimumHeight(2 * self.grid_caption.fontMetrics().lineSpacing())  # long seeds wrap in place
        # the grid's 4 x 4 cells get twice the image's width: each cell near the model's own size
        for title, view, stretch in (("Image", self.output_view, 1), ("Style mixing", self.grid_view, 2)):
            box = QGroupBox(title)
            QVBoxLayout(box).addWidget(view)
            views.addWidget(box, stretch)
        self.grid_view.parentWidget().layout().addWidget(self.grid_caption)
        views.addWidget(side_widget)

    # -- model
    def model_ready(self, info):
        layers = next((c for c in info.controls if c.kind == "layers"), None)
        self.rich = layers is not None
        self.layers_name = layers.name if layers else ""
        self.controls_box.setTitle("Latents" if self.rich else "Controls")
        self.grid_view.parentWidget().setVisible(self.rich)
        crossover = next((c for c in info.controls if c.name == CROSSOVER and c.kind == "int"), None)
        self.panel.set_controls(info.controls, sliders=(CROSSOVER,) if self.rich else ())
        if not self.rich:
            return
        n = len(layers.choices)
        self.resolutions = res = layer_resolutions(layers)
        if res:  # compact: "5: 16", its band in the tooltip
            self.layer_set().describe([f"{i}: {r}" for i, r in enumerate(res)],
                                      [f"Layer {i} ({r} px, {band(r)}): take the style seed's w" for i, r in
                                       enumerate(res)])
        else:
            self.layer_set().describe(tips=[f"Layer {i}: take the style seed's w" for i in range(n)])
        self.panel.on_edit(self.layers_name, self._layers_toggled)
        if crossover is None:
            return
        slider = self.panel.widgets[CROSSOVER]
        slider.setToolTip("Layers below the crossover follow the source seed, the rest the style seed")
        slider.label.setMinimumWidth(170)
        self.panel.on_edit(CROSSOVER, self._crossover_moved)
        # at first the coarse/middle boundary (the paper's coarse styles from the source), else half-way
        middle = next((i for i, r in enumerate(res) if band(r) != "coarse"), None) if res else None
        self.panel.set_values({CROSSOVER: middle if middle is not None else n // 2 if n > 2 else n}, emit=False)
        self._crossover_moved(self.panel.values())
        self.refresh()

    def layer_set(self):
        """The layer set's widget (:class:`studio.widgets.controls.LayerSet`)."""
        return self.panel.widgets[self.layers_name]

    def _crossover_moved(self, values):
        """Layers from the crossover on take the style seed (a rule of the panel: it runs before the
        render is asked for)."""
        k, n = values[CROSSOVER], len(self.layer_set().checks)
        if k >= n:
            text = "none: all from source"
        else:
            r = self.resolutions[k] if self.resolutions else None
            text = f"from layer {k} ({r} px, {band(r)})" if r else f"from layer {k}"
        self.panel.widgets[CROSSOVER].set_text(text)
        self.panel.set_values({self.layers_name: range(k, n)}, emit=False)

    def _layers_toggled(self, values):
        """Boxes ticked by hand: a tail of the layers (7, 8, 9) is what the slider sets, so the
        slider follows; any other set is "custom layers"."""
        if CROSSOVER not in self.panel.widgets:
            return
        chosen, n = parse_layers(values[self.layers_name]), len(self.layer_set().checks)
        if chosen == list(range(n - len(chosen), n)):
            self.panel.set_values({CROSSOVER: n - len(chosen)}, emit=False)
            self._crossover_moved(self.panel.values())
        else:
            self.panel.widgets[CROSSOVER].set_text("custom layers")

    def style_layers(self) -> str:
        return self.layer_set().value() if self.rich else ""

    def values(self) -> dict:
        """The controls' values; with a layer set, the crossover is 0 when layers are chosen (they
        say it all) and the number of layers (none from the style) when none are."""
        values = self.panel.values()
        if self.rich and CROSSOVER in values:
            values[CROSSOVER] = 0 if values[self.layers_name] else len(self.layer_set().checks)
        return values

    def set_values(self, v: dict) -> None:
        """Restore what :meth:`values` gave (latents JSON). Every value is checked against its
        control first, so a bad one changes nothing: ControlError (a ValueError) naming the key and
        what it allows. The layer set as given, else the layers from ``crossover`` when ``v`` gives
        one, else as it is; keys of no control (``model``) are ignored."""
        checked = {c.name: c.check(v[c.name]) for c in self.panel.controls if c.name in v}
        layers = checked.pop(self.layers_name, None) if self.rich else None
        crossover = checked.pop(CROSSOVER, None) if self.rich else None
        self.panel.set_values(checked, emit=False)
        if layers is not None and (layers != "" or crossover is None):  # "" with a crossover: the crossover's
            chosen, n = parse_layers(layers), len(self.layer_set().checks)
            if CROSSOVER in self.panel.widgets and chosen == list(range(n - len(chosen), n)):
                crossover = n - len(chosen)  # a tail of the layers: what the slider sets
            else:
                self.panel.set_values({self.layers_name: ",".join(map(str, chosen))}, emit=False)
                if CROSSOVER in self.panel.widgets:
                    self.panel.widgets[CROSSOVER].set_text("custom layers")
        if crossover is not None and CROSSOVER in self.panel.widgets:
            self.panel.set_values({CROSSOVER: crossover}, emit=False)
            self._crossover_moved(self.panel.values())
        self.refresh()

    # -- rendering
    def request(self):
        values = self.values()
        if self.rich:
            sources, styles = (grid_seeds(values[k], self.seed_maximum(k)) for k in (SEED, STYLE_SEED))
            # the sources alone, the styles alone (a seed mixed with itself), then each mix
            variants = ([{SEED: s, STYLE_SEED: s} for s in sources] + [{SEED: t, STYLE_SEED: t} for t in styles]
                        + [{SEED: s, STYLE_SEED: t} for s in sources for t in styles])
            stamp = self.post(RenderRequest(self.info.path, self.channel("grid"), None, values, kind="variants",
                                            variants=variants))
            # the caption goes up with the grid it names (a render in flight shows its own seeds)
            self.grid_captions[stamp] = (f"Sources (left): seeds {', '.join(map(str, sources))}. "
                                         f"Styles (top): seeds {', '.join(map(str, styles))}.")
        return RenderRequest(self.info.path, self.channel(), None, values)

    def seed_maximum(self, name: str) -> int:
        c = next((c for c in self.panel.controls if c.name == name), None)
        return int(c.maximum) if c is not None and c.maximum is not None else SEED_MAX

    def show_result(self, channel, result):
        if channel == self.channel("grid"):
            self.grid_arrays = result
            self.grid_view.set_array(np.asarray(self.grid_image()))
            stamp = self.shown.get(channel, 0)
            self.grid_caption.setText(self.grid_captions.get(stamp, ""))
            self.grid_captions = {k: v for k, v in self.grid_captions.items() if k > stamp}
        elif channel == self.channel("gif"):
            self.write_gif(result)
        else:
            self.output = result
            self.output_view.set_array(result)

    def show_message(self, text):
        self.output_view.set_message(text)

    # -- files
    def grid_image(self):
        """The style-mixing grid (PIL RGB): the style seeds on top, the source seeds down the left,
        each source with each style's layers inside; None before the first render."""
        if not self.grid_arrays:
            return None
        a = self.grid_arrays
        mixes = a[2 * GRID:]
        return grid(mixing_rows(a[:GRID], a[GRID:2 * GRID], [mixes[i * GRID:(i + 1) * GRID] for i in range(GRID)]))

    def save_grid_dialog(self):
        image = self.grid_image()
        if image is None:
            self.status.emit("No grid yet")
            return
        v = self.values()  # the name says which seeds the grid shows
        path, _ = QFileDialog.getSaveFileName(self, "Save style-mixing grid",
                                              f"style-mixing-{v[SEED]}-{v[STYLE_SEED]}.png", "PNG (*.png)")
        if path:
            self.save_grid(path)

    def save_grid(self, path) -> Path | None:
        """Write the grid (PNG when ``path`` has no suffix); what went wrong goes to the status bar.
        Returns the path written, or None."""
        path, image = with_suffix(path, ".png"), self.grid_image()
        if image is None:
            self.status.emit("No grid yet")
            return None
        try:
            image.save(path)
        except (OSError, ValueError) as e:  # no such folder, read-only, a suffix PIL cannot write
            self.status.emit(f"Grid not saved: {path}: {e}")
            return None
        self.status.emit(f"Saved {path}")
        return path

    def save_latents(self, path) -> None:
        """Write the controls as JSON: the model file, each control's value, and the crossover when
        the style layers are the ones it sets (else only the layers: they say it all). OSError."""
        data = {"model": self.info.path if self.info else None, **self.values()}
        if self.rich and CROSSOVER in data:
            chosen, n = parse_layers(data[self.layers_name]), len(self.layer_set().checks)
            k = self.panel.widgets[CROSSOVER].value()
            if chosen == list(range(k, n)):
                data[CROSSOVER] = k
            else:
                del data[CROSSOVER]
        Path(path).write_text(json.dumps(data, indent=2))

    def load_latents(self, path) -> None:
        """Read a latents JSON; ValueError naming the file and what is wrong, nothing changed."""
        name = Path(path).name
        try:  # a latents file is a few hundred bytes: a big file is not read on the UI thread
            if Path(path).stat().st_size > LATENTS_MAX_BYTES:
                raise ValueError(f"{Path(path).stat().st_size:,} bytes; a latents file is a few hundred")
            # utf-8-sig: a byte-order mark (Windows Notepad) is read too
            data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
        except RecursionError:
            raise ValueError(f"{name}: not a latents file (nested too deeply)") from None
        except (OSError, ValueError) as e:
            raise ValueError(f"{name}: not a latents file ({e})") from None
        names = [c.name for c in self.panel.controls]
        if not isinstance(data, dict) or not set(data) & set(names):
            raise ValueError(f"{name}: not a latents file of this model (a JSON object with any of "
                             f"{', '.join(names)})")
        try:
            self.set_values(data)
        except ValueError as e:
            raise ValueError(f"{name}: nothing loaded: {e}") from None

    def save_latents_dialog(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save latents", "latents.json", "JSON (*.json)")
        if path:
            path = with_suffix(path, ".json")
            try:
                self.save_latents(path)
            except OSError as e:
                self.status.emit(f"Latents not saved: {e}")
                return
            self.status.emit(f"Saved latents to {path}")

    def load_latents_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Load latents", "", "JSON (*.json)")
        if path:
            self.open_latents(path)

    def open_latents(self, path) -> bool:
        """:meth:`load_latents` (the dialog, a .json dropped on the page), said on the status bar."""
        try:
            self.load_latents(path)
        except ValueError as e:
            self.status.emit(str(e))
            return False
        self.status.emit(f"Loaded latents from {path}")
        return True

    def gif_dialog(self):
        if not self.rich or self.info is None:
            self.status.emit("Interpolation needs a StyleGAN model")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export interpolation", "interpolation.gif", "GIF (*.gif)")
        if path:
            self.export_gif(path)

    def export_gif(self, path) -> None:
        """Render the frames on the worker; the GIF is written when they arrive (GIF when ``path``
        has no suffix). A missing folder is reported at once; a second export replaces one still
        rendering, and the status bar says so."""
        path = with_suffix(path, ".gif")
        if not path.parent.is_dir():
            self.status.emit(f"GIF not saved: {path.parent} is not a folder")
            return
        animated = {e for e, f in Image.registered_extensions().items() if f in Image.SAVE_ALL}
        if path.suffix.lower() not in animated:
            self.status.emit(f"GIF not saved: {path.name}: {path.suffix or 'no suffix'} cannot hold an animation "
                             "(use .gif, or .png / .webp)")
            return
        replaced = f" (instead of {self.gif_path})" if self.gif_path not in (None, path) else ""
        values = {**self.values(), "frames": self.frames.value()}
        for k in (CROSSOVER, self.layers_name):
            values.pop(k, None)
        self.status.emit(f"Rendering {self.frames.value()} frames for {path}{replaced}...")
        stamp = self.post(RenderRequest(self.info.path, self.channel("gif"), None, values, kind="interpolate"))
        self.gif_paths = {stamp: path}  # a replaced export's frames, if they still arrive, are dropped

    @property
    def gif_path(self) -> Path | None:
        """The GIF being rendered, until it is written."""
        return next(iter(self.gif_paths.values()), None)

    def write_gif(self, frames) -> None:
        path = self.gif_paths.pop(self.shown.get(self.channel("gif"), 0), None)
        if path is None:  # the frames of an export replaced by a newer one
            return
        images = [Image.fromarray(f) for f in frames]
        try:
            images[0].save(path, save_all=True, append_images=images[1:], duration=60, loop=0)
        except (OSError, ValueError) as e:
            self.status.emit(f"GIF not saved: {path}: {e}")
            return
        self.status.emit(f"Saved {path} ({len(images)} frames)")
