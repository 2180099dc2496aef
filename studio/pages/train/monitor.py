"""The Train page's live monitor of the selected run: progress (or the dataset being made), a line
of figures (speed, ETA, elapsed, device, GPU memory, the job's RSS), health warnings, and tabs
with the loss plots (the selected runs overlaid), the saved samples on a step slider, the run's
configuration and its log. Everything is read from the run folder (:mod:`trainer.rundir`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton, QSlider,
                               QTabWidget, QVBoxLayout, QWidget)

from studio.metrics import MetricsReader, health_warnings
from studio.pages.train.runs import percent
from studio.widgets.elided_label import ElidedLabel
from studio.widgets.image_view import ImageView
from studio.widgets.loss_plots import LossPlots
from trainer import api
from trainer.rundir import data_stage, log_tail


def process_rss_mb(pid) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def fmt_seconds(s) -> str:
    if not isinstance(s, (int, float)) or s != s or s < 0:
        return "-"
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def stats_text(status: dict, state: str, rss_mb: float | None) -> str:
    """The line of figures over the tabs: what the job does (preparing data, starting, or state
    and step with speed and ETA), elapsed time, device, GPU memory and the job's RSS."""
    s = status
    total, step = int(s.get("total_steps") or 0), int(s.get("step") or 0)
    preparing = data_stage(s) if state == "running" else None
    if preparing:
        parts = [f"preparing data {percent(*preparing)} %"]
        if s.get("message"):
            parts.append(s["message"])
    elif state == "running" and s.get("stage") == "starting":
        parts = ["starting", s.get("message") or "loading the method"]
    else:
        parts = [f"{state}", f"step {step} / {total}" if total else "no status yet"]
        if state == "running" and "it_s" in s:  # none before the first logged step
            parts += [f"{s.get('it_s', 0):.2f} it/s", f"ETA {fmt_seconds(s.get('eta_s'))}"]
    parts.append(f"elapsed {fmt_seconds(s.get('elapsed'))}")
    parts.append(f"device {s.get('device', '?')}")
    if s.get("gpu"):
        parts.append(f"{s['gpu']} {s.get('gpu_memory_mb', 0)} / {s.get('gpu_memory_total_mb', 0)} MB "
                     f"(peak {s.get('gpu_memory_peak_mb', 0)})")
    if rss_mb:
        parts.append(f"RSS {rss_mb:.0f} MB")
    return " · ".join(parts)


class RunMonitor(QWidget):
    """``show_run`` fills it from the selected run's folder on every poll; ``status(text)`` for the
    status bar."""
    status = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.sample_files: list[Path] = []
        self.follow_samples = True
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
        self.tabs = QTabWidget()
        self.tabs.addTab(plots_tab, "Losses")
        self.tabs.addTab(samples, "Samples")
        self.tabs.addTab(self.config_text, "Configuration")
        self.tabs.addTab(self.log_text, "Log")
        lay = QVBoxLayout(self)
        lay.addWidget(self.banner)
        lay.addWidget(self.progress)
        lay.addWidget(self.stats)
        lay.addWidget(self.tabs, 1)

    def show_runs(self, readers: dict[str, MetricsReader], current: str | None) -> None:
        """Plot these runs (name -> reader) and show the configuration of ``current``."""
        self.plots.set_runs(readers)
        self.follow_samples = True
        if current:
            cfg = Path(current) / "config.toml"
            self.config_text.setPlainText(cfg.read_text() if cfg.exists() else "(no configuration yet)")

    def show_run(self, run_dir: str, status: dict, state: str, pid: int | None,
                 reader: MetricsReader | None) -> None:
        """Progress, figures, warnings (with the log's last lines when the job failed or crashed),
        samples and log of ``run_dir``."""
        s = status
        total, step = int(s.get("total_steps") or 0), int(s.get("step") or 0)
        preparing = data_stage(s) if state == "running" else None
        if preparing:  # the procedural dataset is being made: its own progress, not "step 0"
            done, n = preparing
            self.progress.setFormat("preparing data %p %")
            self.progress.setRange(0, n)
            self.progress.setValue(done)
        elif not total:  # no status written yet (a job starting): not "0 / 1"
            self.progress.setFormat(state)
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        else:
            self.progress.setFormat("%v / %m")
            self.progress.setRange(0, max(1, total))
            self.progress.setValue(min(step, max(1, total)))
        self.stats.setText(stats_text(s, state, process_rss_mb(pid) if pid else None))
        warnings = list(health_warnings(reader)) if reader is not None else []
        if state in ("failed", "crashed"):
            tail = "\n".join(log_tail(run_dir, 8))
            warnings.insert(0, f"The job {state}: {s.get('message') or 'its process ended without a status'}"
                            + (f"\n{tail}" if tail else ""))
        self.banner.setText("\n".join(warnings))
        self.banner.setVisible(bool(warnings))
        self._update_samples(run_dir)
        log = "\n".join(log_tail(run_dir, 200))
        if log != self.log_text.toPlainText():
            self.log_text.setPlainText(log)

    # -- samples
    def _update_samples(self, run_dir: str) -> None:
        folder = Path(run_dir) / "samples"
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
        path = self.sample_files[max(0, min(i, len(self.sample_files) - 1))]
        try:
            self.sample_view.set_array(np.asarray(api.open_image(path)))
            self.sample_label.setText(f"step {int(path.stem.split('-')[1])}")
        except (api.ImageError, OSError, ValueError):
            pass  # being written; the next poll shows it

    # -- export
    def export_csv_dialog(self):
        path, _ = QFileDialog.getSaveFileName(self, "Export curves", "losses.csv", "CSV (*.csv)")
        if path:
            n = self.plots.export_csv(path)
            self.status.emit(f"Wrote {n} rows to {path}")

    def export_png_dialog(self):
        path, _ = QFileDialog.getSaveFileName(self, "Export plots", "losses.png", "PNG (*.png)")
        if path:
            self.plots.export_png(path)
