"""The Train page's "New job" form: a preset's settings as fields (image size, steps, batch,
learning rate, GAN mode, device, its loss weights, any other ``--set``), the dataset (a folder,
its layout named as the method reads it, or the preset's procedural data), and the job's checks
before it starts: the engine's own (:func:`trainer.api.check_job`, the method's image-size rule
among them), not a copy of them."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QWidget)

from studio.widgets.elided_label import ElidedLabel
from trainer import api

DEFAULT_MODEL = "sketch2photo"  # the bundled model whose preset the form starts from


class WeightBox(QDoubleSpinBox):
    """A loss weight shown and typed as written (10, 0.01, 1e+10), not padded to six decimals."""

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt's names)
        return f"{value:g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        try:
            ok = self.minimum() <= float(text) <= self.maximum()
        except ValueError:
            ok = False
        return (QValidator.Acceptable if ok else QValidator.Intermediate), text, pos


def bundled_presets() -> dict[str, str]:
    """preset -> the bundled model trained from it (from the model cards: the header only)."""
    from studio.library import BUNDLED
    out = {}
    for path in sorted(BUNDLED.glob("*.safetensors")):
        try:
            card = api.read_card(path)
        except (api.ModelFileError, OSError, ValueError):
            continue
        preset = card.get("preset") or card.get("training", {}).get("preset")
        if preset:
            out.setdefault(Path(str(preset)).stem, path.stem)
    return out


class NewJobForm(QGroupBox):
    """The fields of a new job, pre-filled from the preset; ``overrides()`` gives --set values and
    ``validate()`` the configuration the job would run, or a specific message for anything wrong."""

    def __init__(self, parent=None):
        super().__init__("New job", parent)
        self.preset = QComboBox(toolTip="The preset the job starts from (trainer/presets)")
        for name in api.list_presets():
            self.preset.addItem(name)
        # the preset the bundled sketch2photo was trained from (its card says which), if it is there
        self.bundled = bundled_presets()
        default = next((p for p, m in self.bundled.items() if m == DEFAULT_MODEL), "")
        if self.preset.findText(default) >= 0:
            self.preset.setCurrentText(default)
        self.procedural = QCheckBox("Procedural data", toolTip="Use the preset's procedural dataset (made once "
                                                                "and cached)")
        self.root = QLineEdit(placeholderText="dataset folder", toolTip="A dataset folder in a reference layout")
        browse = QPushButton("Browse...", toolTip="Choose the dataset folder")
        browse.clicked.connect(self._browse)
        self.layout_label = ElidedLabel(lines=2)  # a fixed height: a long message never squeezes the rows below
        self.size = QSpinBox(minimum=8, maximum=2048, toolTip="Training image size in pixels")
        self.steps = QSpinBox(minimum=1, maximum=10 ** 8, toolTip="Total training steps")
        self.batch = QSpinBox(minimum=1, maximum=4096, toolTip="Images per step")
        self.lr = QDoubleSpinBox(decimals=6, minimum=1e-6, maximum=1.0, singleStep=1e-4, toolTip="Learning rate")
        self.gan_mode = QComboBox(toolTip="Adversarial loss (vanilla, lsgan, wgangp, hinge)")
        self.gan_mode.addItems(["vanilla", "lsgan", "wgangp", "hinge"])
        self.device = QComboBox(toolTip="auto: CUDA, then MPS, then the CPU")
        self.device.addItems(["auto", "cpu", "cuda", "mps"])
        self.weights_box = QWidget()  # three weights to a row, each name over its field: the form keeps its height
        self.weights = QGridLayout(self.weights_box)
        self.weights.setContentsMargins(0, 0, 0, 0)
        self.weights.setVerticalSpacing(0)
        self.weight_fields: dict[str, QDoubleSpinBox] = {}
        self.extra = QLineEdit(placeholderText="key=value ...", toolTip="Any other setting, as gan-trainer's "
                               "--set: e.g. train.log_every=5 data.synth_n=500 model.ngf=32")
        self.description = ElidedLabel(lines=2)  # the whole description in its tooltip
        self.description.setStyleSheet("color: #555")
        form = QFormLayout(self)
        form.setLabelAlignment(Qt.AlignRight | Qt.AlignVCenter)
        form.setVerticalSpacing(3)  # compact: the runs list below keeps room for several runs
        form.addRow("Preset", self.preset)
        form.addRow("", self.description)
        data = QHBoxLayout()
        data.addWidget(self.root, 1)
        data.addWidget(browse)
        form.addRow("Dataset", data)
        form.addRow("", self.procedural)
        form.addRow("", self.layout_label)
        # two fields to a row: the form leaves the runs list room for several runs at the default size
        for label, first, second_label, second in (("Image size", self.size, "Steps", self.steps),
                                                   ("Learning rate", self.lr, "Batch", self.batch),
                                                   ("GAN mode", self.gan_mode, "Device", self.device)):
            pair = QHBoxLayout()
            pair.setSpacing(4)
            pair.addWidget(first, 1)
            name = QLabel(second_label, toolTip=second.toolTip())
            name.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
            pair.addSpacing(6)
            pair.addWidget(name)
            pair.addWidget(second, 1)
            form.addRow(label, pair)
        form.addRow("Loss weights", self.weights_box)
        form.addRow("Other settings", self.extra)
        self.preset.currentTextChanged.connect(self.load_preset)
        self.root.editingFinished.connect(self.describe_data)
        self.procedural.toggled.connect(self.describe_data)
        self.load_preset(self.preset.currentText())

    def _browse(self):
        path = QFileDialog.getExistingDirectory(self, "Dataset folder")
        if path:
            self.root.setText(path)
            self.procedural.setChecked(False)
            self.describe_data()

    def load_preset(self, name):
        raw = api.preset_values(name)
        self.raw = raw
        self.method = raw.get("method", "")
        t, d, m = raw.get("train", {}), raw.get("data", {}), raw.get("model", {})
        text = raw.get("description", "")
        if name in self.bundled:
            text = f"Preset of the bundled {self.bundled[name]}: {text}"
        self.description.setText(text)
        self.synth = d.get("synth", "")
        self.procedural.setEnabled(bool(self.synth))
        self.procedural.setChecked(bool(self.synth))
        self.procedural.setText("Procedural data" if self.synth else "Procedural data (none)")  # named below
        self.root.setText(d.get("root", ""))
        self.size.setValue(int(d.get("image_size", 256)))
        self.steps.setValue(int(t.get("steps", 1000)))
        self.batch.setValue(int(t.get("batch_size", 1)))
        self.lr.setValue(float(t.get("lr", 2e-4)))
        self.gan_mode.setEnabled("gan_mode" in m)
        self.gan_mode.setCurrentText(m.get("gan_mode", "vanilla"))
        while self.weights.count():
            old = self.weights.takeAt(0).widget()
            old.hide()  # at once: deleteLater alone leaves it drawn over the new fields until the next event loop
            old.deleteLater()
        self.weight_fields = {}
        for k, v in m.items():
            if k.startswith("lambda_") and isinstance(v, (int, float)):
                f = WeightBox(decimals=6, minimum=0.0, maximum=1e12, toolTip=f"model.{k}",
                              buttonSymbols=QDoubleSpinBox.NoButtons)
                f.setValue(float(v))
                row, col = divmod(len(self.weight_fields), 3)
                name = QLabel(f"\u03bb {k[len('lambda_'):]}", toolTip=f"model.{k}")
                name.setStyleSheet("color: #555")
                self.weights.addWidget(name, 2 * row, col)
                self.weights.addWidget(f, 2 * row + 1, col)
                self.weight_fields[k] = f
        self.describe_data()

    def describe_data(self, *_):
        if self.procedural.isChecked():
            self._say_layout(f"procedural: {self.synth} (made once, then cached)")
            return
        root = self.root.text().strip()
        if not root:
            self._say_layout("choose a dataset folder" + (" or tick procedural data" if self.synth else ""))
            return
        try:
            self._say_layout(api.check_dataset(self.method, root))
        except ValueError as e:
            self._say_layout(str(e), error=True)

    def _say_layout(self, text: str, error: bool = False) -> None:
        self.layout_label.setStyleSheet("color: #b00" if error else "")
        self.layout_label.setText(text)

    def overrides(self) -> list[str]:
        out = [f"train.steps={self.steps.value()}", f"train.batch_size={self.batch.value()}",
               f"train.lr={self.lr.value()!r}", f"data.image_size={self.size.value()}",
               f"train.device='{self.device.currentText()}'"]
        if self.procedural.isChecked():
            out.append("data.root=''")
        else:
            out += [f"data.root='{Path(self.root.text().strip()).expanduser().resolve()}'", "data.synth=''"]
        if self.gan_mode.isEnabled():
            out.append(f"model.gan_mode='{self.gan_mode.currentText()}'")
        out += [f"model.{k}={f.value()!r}" for k, f in self.weight_fields.items()]
        for item in self.extra.text().split():
            if "=" not in item:
                raise ValueError(f"other settings: {item!r} is not key=value (e.g. train.log_every=5)")
            out.append(item)
        return out

    def validate(self):
        """The configuration the job would run, checked as the job checks it before it starts
        (:func:`trainer.api.check_job`: value ranges, the method's image-size rule, its settings),
        then the dataset folder; a ValueError with a specific message otherwise."""
        config = api.check_job(self.preset.currentText(), self.overrides())  # ConfigError (a ValueError)
        if not self.procedural.isChecked():
            root = self.root.text().strip()
            if not root:
                raise ValueError("choose a dataset folder" + (" or tick procedural data" if self.synth else ""))
            if not Path(root).expanduser().is_dir():
                raise ValueError(f"dataset folder {root}: no such folder")
            api.check_dataset(self.method, root)
        return config
