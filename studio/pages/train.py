"""Train page: start jobs from a preset with validated fields, stop and resume them, list every
run directory with its state, and watch live loss plots, progress, samples, health warnings,
configuration and log. Jobs are separate processes; the run directory is the truth."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QProcess, Qt, QTimer, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QGridLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPlainTextEdit,
                               QProgressBar, QPushButton, QSlider, QSpinBox, QSplitter, QTableWidget, QTableWidgetItem,
                               QTabWidget, QVBoxLayout, QWidget)

from studio.jobs import JobManager, data_stage, log_tail, read_status, run_total_steps
from studio.metrics import MetricsReader, health_warnings
from studio.pages.base import Page
from studio.widgets.elided_label import ElidedLabel
from studio.widgets.image_view import ImageView
from studio.widgets.loss_plots import LossPlots

POW2_METHODS = {"pix2pix", "dcgan", "wgan_gp", "stylegan", "stargan"}
MIN_RUN_ROWS = 5  # the runs list shows at least this many runs at the default window size
COLUMNS = ["Run", "State", "Method", "Step", "Started"]


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


def process_rss_mb(pid) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def bundled_presets() -> dict[str, str]:
    """preset -> the bundled model trained from it (from the model cards: the header only)."""
    from studio.library import BUNDLED
    from trainer.modelfile import ModelFileError, read_card
    out = {}
    for path in sorted(BUNDLED.glob("*.safetensors")):
        try:
            card = read_card(path)
        except (ModelFileError, OSError, ValueError):
            continue
        preset = card.get("preset") or card.get("training", {}).get("preset")
        if preset:
            out.setdefault(Path(str(preset)).stem, path.stem)
    return out


DEFAULT_MODEL = "sketch2photo"  # the bundled model whose preset the form starts from


def percent(done: int, total: int) -> int:
    return int(100 * done / total) if total else 0


def step_text(status: dict, state: str) -> str:
    """The runs list's Step cell: "preparing data 23 %" while the job makes its dataset, else "step / total"."""
    preparing = data_stage(status) if state == "running" else None
    if preparing:
        return f"preparing data {percent(*preparing)} %"
    total = status.get("total_steps")
    return f"{status.get('step', 0)} / {total}" if total else ""


def fmt_seconds(s) -> str:
    if not isinstance(s, (int, float)) or s != s or s < 0:
        return "-"
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class NewJobForm(QGroupBox):
    """The fields of a new job, pre-filled from the preset; ``overrides()`` gives --set values and
    ``validate()`` a specific message for anything wrong."""

    def __init__(self, parent=None):
        super().__init__("New job", parent)
        from trainer.config import list_presets
        self.preset = QComboBox(toolTip="The preset the job starts from (trainer/presets)")
        for name in list_presets():
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
        from trainer.config import preset_path, read_toml
        raw = read_toml(preset_path(name))
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
        from trainer.data.layout import check_for_method
        try:
            self._say_layout(check_for_method(self.method, root))
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

    def validate(self) -> None:
        """ValueError with a specific message; the same checks the job would make, before it starts."""
        from trainer import config
        from trainer.data.layout import check_for_method
        size = self.size.value()
        if self.method in POW2_METHODS and (size < 16 or size & (size - 1)):
            raise ValueError(f"image size {size}: {self.method} needs a power of two (16, 32, 64, 128, 256...)")
        if self.method == "cyclegan" and size % 4:
            raise ValueError(f"image size {size}: CycleGAN needs a multiple of 4")
        if not self.procedural.isChecked():
            root = self.root.text().strip()
            if not root:
                raise ValueError("choose a dataset folder" + (" or tick procedural data" if self.synth else ""))
            if not Path(root).expanduser().is_dir():
                raise ValueError(f"dataset folder {root}: no such folder")
            check_for_method(self.method, root)
        config.load(self.preset.currentText(), self.overrides())  # ConfigError (a ValueError)


class TrainPage(Page):
    name = "train"
    title = "Train"
    tasks = ()
    use_model = Signal(str)  # a model file to open in its page

    def __init__(self, worker, settings, parent=None):
        super().__init__(worker, parent)
        self.settings = settings
        self.jobs = JobManager(self)
        self.jobs.changed.connect(lambda _: self.refresh_runs())
        self.readers: dict[str, MetricsReader] = {}
        self.extra_runs: list[Path] = []
        self.current: str | None = None
        self.sample_files: list[Path] = []
        self.follow_samples = True

        self.form = NewJobForm()
        self.start_button = QPushButton("Start", toolTip="Validate the fields and start the job")
        self.start_button.clicked.connect(self.start_clicked)
        self.form_message = ElidedLabel(lines=2)  # a fixed height: "stopping ..." never squeezes the form
        self.runs_root_edit = QLineEdit(str(self.runs_root()), toolTip="Where new runs are written and listed")
        self.runs_root_edit.editingFinished.connect(self._runs_root_changed)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setMinimumHeight(self.table_height(MIN_RUN_ROWS))
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.table.setToolTip("Every run under the runs folder and opened run folders; select several to "
                              "overlay their curves")
        self.table.itemSelectionChanged.connect(self._selection_changed)
        open_run = QPushButton("Open run...", toolTip="Open a run folder to watch a run started elsewhere "
                                                      "(terminal, torchrun, another machine)")
        open_run.clicked.connect(self.open_run_dialog)
        self.stop_button = QPushButton("Stop", toolTip="SIGTERM: the job saves a checkpoint and exits")
        self.stop_button.clicked.connect(self.stop_clicked)
        self.resume_steps = QSpinBox(minimum=1, maximum=10 ** 8, toolTip="Total steps after resuming: the run's "
                                     "own total unless you type another")
        self.resume_steps_typed = False  # the box follows the selected run's total until the user types
        self.resume_steps.valueChanged.connect(self._resume_steps_edited)
        self.resume_button = QPushButton("Resume", toolTip="Continue a stopped, crashed or finished run")
        self.resume_button.clicked.connect(self.resume_clicked)
        self.use_button = QPushButton("Use model", toolTip="Export the run's latest generator and open it in its "
                                                           "page")
        self.use_button.clicked.connect(self.use_clicked)

        left = QVBoxLayout()
        left.addWidget(self.form)
        start_row = QHBoxLayout()
        start_row.addWidget(self.start_button)
        start_row.addWidget(self.form_message, 1)
        left.addLayout(start_row)
        runs_box = QGroupBox("Runs")
        rl = QVBoxLayout(runs_box)
        root_row = QHBoxLayout()
        root_row.addWidget(QLabel("Folder"))
        root_row.addWidget(self.runs_root_edit, 1)
        root_row.addWidget(open_run)
        rl.addLayout(root_row)
        rl.addWidget(self.table, 1)
        row = QHBoxLayout()  # one row of actions: the list keeps the height
        for w in (self.stop_button, self.resume_button, self.resume_steps, self.use_button):
            row.addWidget(w)
        rl.addLayout(row)
        left.addWidget(runs_box, 1)
        left_widget = QWidget()
        left_widget.setLayout(left)

        self.banner = QLabel("")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background: #fde2c8; color: #7a2e00; padding: 6px; border-radius: 3px")
        self.banner.setVisible(False)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m")
        self.stats = ElidedLabel("Select a run, or start one.", lines=2)  # never widens the monitor side
        self.plots = LossPlots()
        self.sample_view = ImageView("Samples appear here as the job saves them.")
        self.sample_slider = QSlider(Qt.Horizontal, toolTip="Every saved sample step")
        self.sample_slider.valueChanged.connect(self._sample_moved)
        self.sample_label = QLabel("")
        samples = QWidget()
        sl = QVBoxLayout(samples)
        sl.addWidget(self.sample_view, 1)
        srow = QHBoxLayout()
        srow.addWidget(self.sample_slider, 1)
        srow.addWidget(self.sample_label)
        sl.addLayout(srow)
        self.config_text = QPlainTextEdit(readOnly=True)
        self.log_text = QPlainTextEdit(readOnly=True)
        export_csv = QPushButton("Export CSV...", toolTip="The shown curves, raw and smoothed, every point")
        export_csv.clicked.connect(self.export_csv_dialog)
        export_png = QPushButton("Export PNG...", toolTip="The plots as an image")
        export_png.clicked.connect(self.export_png_dialog)
        plots_tab = QWidget()
        pl = QVBoxLayout(plots_tab)
        pl.addWidget(self.plots, 1)
        erow = QHBoxLayout()
        erow.addStretch(1)
        erow.addWidget(export_csv)
        erow.addWidget(export_png)
        pl.addLayout(erow)
        self.monitor_tabs = QTabWidget()
        self.monitor_tabs.addTab(plots_tab, "Losses")
        self.monitor_tabs.addTab(samples, "Samples")
        self.monitor_tabs.addTab(self.config_text, "Configuration")
        self.monitor_tabs.addTab(self.log_text, "Log")
        right = QVBoxLayout()
        right.addWidget(self.banner)
        right.addWidget(self.progress)
        right.addWidget(self.stats)
        right.addWidget(self.monitor_tabs, 1)
        right_widget = QWidget()
        right_widget.setLayout(right)
        split = QSplitter()
        split.addWidget(left_widget)
        split.addWidget(right_widget)
        left_widget.setMinimumWidth(340)
        split.setSizes([380, 620])  # in proportion: beside the model library the left side gets ~380 px
        lay = QVBoxLayout(self)
        lay.addWidget(split)

        self.poll_timer = QTimer(self, interval=500)
        self.poll_timer.timeout.connect(self.poll)
        self.poll_timer.start()
        self.scan_timer = QTimer(self, interval=3000)
        self.scan_timer.timeout.connect(self.refresh_runs)
        self.scan_timer.start()
        self.refresh_runs()

    def table_height(self, rows: int) -> int:
        """The runs list's height for ``rows`` rows: header, rows, frame and a horizontal scroll bar."""
        t = self.table
        return (t.horizontalHeader().sizeHint().height() + rows * t.verticalHeader().defaultSectionSize()
                + 2 * t.frameWidth() + t.horizontalScrollBar().sizeHint().height())

    # -- runs
    def runs_root(self) -> Path:
        return Path(self.settings.value("runs_root", str(Path.cwd() / "runs")))

    def _runs_root_changed(self):
        self.settings.setValue("runs_root", self.runs_root_edit.text().strip())
        self.refresh_runs()

    def run_dirs(self) -> list[Path]:
        root = self.runs_root()
        ours = {Path(k) for k in self.jobs.pids}
        found = [p for p in sorted(root.iterdir()) if p.is_dir() and ((p / "status.json").exists()
                                                                       or (p / "job.log").exists() or p in ours)] \
            if root.is_dir() else []
        for p in self.extra_runs:
            if p not in found:
                found.append(p)
        return found

    def refresh_runs(self):
        dirs = self.run_dirs()
        selected = set(self.selected_runs())
        self.table.blockSignals(True)
        self.table.setRowCount(len(dirs))
        for i, d in enumerate(dirs):
            s = read_status(d)
            started = s.get("started")
            state = self.jobs.state(d)
            cells = [d.name, state, s.get("method", ""), step_text(s, state),
                     time.strftime("%Y-%m-%d %H:%M", time.localtime(started))
                     if isinstance(started, (int, float)) else ""]
            for j, text in enumerate(cells):
                item = self.table.item(i, j)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(i, j, item)
                item.setText(str(text))
                item.setData(Qt.UserRole, str(d))
                item.setToolTip(s.get("message", "") or str(d))
            if str(d) in selected:
                self.table.selectRow(i)
        self.table.blockSignals(False)
        self._update_buttons()

    def selected_runs(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectedItems()})
        return [self.table.item(r, 0).data(Qt.UserRole) for r in rows if self.table.item(r, 0)]

    def select_run(self, run_dir) -> None:
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(Qt.UserRole) == str(run_dir):
                self.table.selectRow(r)
                return

    def open_run(self, path) -> None:
        p = Path(path)
        if not (p / "status.json").exists() and not (p / "metrics.jsonl").exists():
            raise ValueError(f"{p}: not a run folder (no status.json or metrics.jsonl)")
        if p not in self.extra_runs:
            self.extra_runs.append(p)
        self.refresh_runs()
        self.select_run(p)

    def open_run_dialog(self):
        path = QFileDialog.getExistingDirectory(self, "Open run folder")
        if path:
            try:
                self.open_run(path)
            except ValueError as e:
                self.say(str(e), error=True)

    def _selection_changed(self):
        runs = self.selected_runs()
        for r in runs:
            if r not in self.readers:
                self.readers[r] = MetricsReader(Path(r) / "metrics.jsonl")
        self.plots.set_runs({Path(r).name: self.readers[r] for r in runs})
        self.current = runs[0] if runs else None
        self.follow_samples = True
        if self.current:
            cfg = Path(self.current) / "config.toml"
            self.config_text.setPlainText(cfg.read_text() if cfg.exists() else "(no configuration yet)")
        self.resume_steps_typed = False  # a new selection: the box shows that run's total
        self._follow_total()
        self.poll()
        self.plots.reset_zoom()
        self._update_buttons()

    def _resume_steps_edited(self, _value):
        self.resume_steps_typed = True

    def _follow_total(self):
        """The resume box shows the selected run's total (status, else config.toml) until the user
        types a number; read on every poll, since a just-started run has neither file yet."""
        if self.resume_steps_typed or not self.current:
            return
        total = run_total_steps(self.current)
        if total is not None and total != self.resume_steps.value():
            self.resume_steps.blockSignals(True)
            self.resume_steps.setValue(total)
            self.resume_steps.blockSignals(False)

    def _update_buttons(self):
        running = bool(self.current) and self.jobs.is_running(self.current)
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(bool(self.current) and not running)
        self.use_button.setEnabled(bool(self.current) and any(
            (Path(self.current) / p).exists() for p in ("model.safetensors", "checkpoints")))

    # -- live monitor
    def poll(self):
        changed = False
        for r in self.selected_runs():
            if self.readers[r].poll() if r in self.readers else False:
                changed = True
        if changed:
            self.plots.data_changed()
        if not self.current:
            return
        s = read_status(self.current)
        total, step = int(s.get("total_steps") or 0), int(s.get("step") or 0)
        state = self.jobs.state(self.current)
        self._follow_total()
        preparing = data_stage(s) if state == "running" else None
        if preparing:  # the procedural dataset is being made: its own progress, not "step 0"
            done, n = preparing
            self.progress.setFormat("preparing data %p %")
            self.progress.setRange(0, n)
            self.progress.setValue(done)
        else:
            self.progress.setFormat("%v / %m")
            self.progress.setRange(0, max(1, total))
            self.progress.setValue(min(step, max(1, total)))
        for r in range(self.table.rowCount()):  # keep the list's state and step current between scans
            item = self.table.item(r, 0)
            if item is not None and item.data(Qt.UserRole) == self.current:
                self.table.item(r, 1).setText(state)
                self.table.item(r, 3).setText(step_text(s, state))
        if preparing:
            parts = [f"preparing data {percent(*preparing)} %"]
            if s.get("message"):
                parts.append(s["message"])
        elif state == "running" and s.get("stage") == "starting":
            parts = ["starting", s.get("message") or "loading the method"]
        else:
            parts = [f"{state}", f"step {step} / {total}"]
            if state == "running" and "it_s" in s:  # none before the first logged step
                parts += [f"{s.get('it_s', 0):.2f} it/s", f"ETA {fmt_seconds(s.get('eta_s'))}"]
        parts.append(f"elapsed {fmt_seconds(s.get('elapsed'))}")
        parts.append(f"device {s.get('device', '?')}")
        if s.get("gpu"):
            parts.append(f"{s['gpu']} {s.get('gpu_memory_mb', 0)} / {s.get('gpu_memory_total_mb', 0)} MB "
                         f"(peak {s.get('gpu_memory_peak_mb', 0)})")
        pid = self.jobs.pid(self.current)
        rss = process_rss_mb(pid) if pid else None
        if rss:
            parts.append(f"RSS {rss:.0f} MB")
        self.stats.setText(" · ".join(parts))
        warnings = list(health_warnings(self.readers[self.current])) if self.current in self.readers else []
        if state in ("failed", "crashed"):
            tail = "\n".join(log_tail(self.current, 8))
            warnings.insert(0, f"The job {state}: {s.get('message') or 'its process ended without a status'}"
                            + (f"\n{tail}" if tail else ""))
        self.banner.setText("\n".join(warnings))
        self.banner.setVisible(bool(warnings))
        self._update_samples()
        log = "\n".join(log_tail(self.current, 200))
        if log != self.log_text.toPlainText():
            self.log_text.setPlainText(log)
        self._update_buttons()

    def _update_samples(self):
        folder = Path(self.current) / "samples"
        files = sorted(folder.glob("step-*.png")) if folder.is_dir() else []
        if files == self.sample_files:
            return
        self.sample_files = files
        self.sample_slider.blockSignals(True)
        self.sample_slider.setRange(0, max(0, len(files) - 1))
        if self.follow_samples:
            self.sample_slider.setValue(len(files) - 1)
        self.sample_slider.blockSignals(False)
        self._show_sample(self.sample_slider.value())

    def _sample_moved(self, i):
        self.follow_samples = i == len(self.sample_files) - 1
        self._show_sample(i)

    def _show_sample(self, i):
        if not self.sample_files:
            self.sample_view.set_array(None)
            self.sample_label.setText("")
            return
        from trainer.data.imageio import ImageError, open_image
        path = self.sample_files[max(0, min(i, len(self.sample_files) - 1))]
        try:
            self.sample_view.set_array(np.asarray(open_image(path)))
            self.sample_label.setText(f"step {int(path.stem.split('-')[1])}")
        except (ImageError, OSError, ValueError):
            pass  # being written; the next poll shows it

    # -- actions
    def say(self, text: str, error: bool = False) -> None:
        """A message under the form (plain text, red for an error; the whole of it in the tooltip)."""
        self.form_message.setStyleSheet("color: #b00" if error else "")
        self.form_message.setText(text)

    def start_clicked(self):
        try:
            self.start_job()
        except (ValueError, OSError) as e:
            self.say(str(e), error=True)

    def start_job(self) -> Path:
        self.form.validate()
        preset = self.form.preset.currentText()
        root = self.runs_root()
        run_dir = root / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
        k = 1
        while run_dir.exists():
            run_dir = root / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}-{k}"
            k += 1
        overrides = self.form.overrides()
        precision = self.settings.value("precision", "auto")
        if precision != "auto":
            overrides.append(f"train.precision='{precision}'")
        self.jobs.start(preset, run_dir, overrides)
        self.say(f"started {run_dir.name}")
        self.refresh_runs()
        self.table.clearSelection()
        self.select_run(run_dir)
        return run_dir

    def stop_clicked(self):
        if self.current and self.jobs.stop(self.current):
            self.say("stopping: the job saves a checkpoint, then exits")

    def resume_clicked(self):
        """Resume to the number the user typed, else to the run's own total (no override at all)."""
        if self.current:
            try:
                self.jobs.resume(self.current, self.resume_steps.value() if self.resume_steps_typed else None)
            except (ValueError, OSError) as e:
                self.say(str(e), error=True)
            else:
                self.say(f"resuming {Path(self.current).name}")
            self.refresh_runs()

    def use_clicked(self):
        if not self.current:
            return
        run = Path(self.current)
        model = run / "model.safetensors"
        latest = max((p.stat().st_mtime for p in (run / "checkpoints").glob("step-*")), default=0.0) \
            if (run / "checkpoints").is_dir() else 0.0
        if model.exists() and model.stat().st_mtime >= latest:
            self.use_model.emit(str(model))
            return
        self.say("exporting the latest checkpoint...")
        self.export_process = QProcess(self)
        self.export_process.finished.connect(lambda code, _s: self._exported(code, model))
        self.export_process.start(sys.executable, ["-m", "trainer", "export", str(run), "-o", str(model)])

    def _exported(self, code, model):
        if code == 0 and model.exists():
            self.say(f"exported {model}")
            self.use_model.emit(str(model))
        else:
            out = bytes(self.export_process.readAll()).decode(errors="replace").strip().splitlines()
            self.say("export failed: " + (out[-1] if out else f"exit code {code}"), error=True)

    def export_csv_dialog(self):
        path, _ = QFileDialog.getSaveFileName(self, "Export curves", "losses.csv", "CSV (*.csv)")
        if path:
            n = self.plots.export_csv(path)
            self.status.emit(f"Wrote {n} rows to {path}")

    def export_png_dialog(self):
        path, _ = QFileDialog.getSaveFileName(self, "Export plots", "losses.png", "PNG (*.png)")
        if path:
            self.plots.export_png(path)

    def set_entries(self, entries, select=None):
        pass  # this page trains models; it lists runs, not model files
