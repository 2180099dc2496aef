"""The Train page: the new-job form (:mod:`.form`) and the runs table (:mod:`.runs`) on the left,
the live monitor of the selected runs (:mod:`.monitor`) on the right; starting, stopping,
resuming and using a run's model. Jobs are separate processes (:class:`studio.jobs.JobManager`);
the run directory is the truth, polled twice a second and rescanned every three seconds."""
from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QProcess, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSplitter, QVBoxLayout, QWidget

from studio.jobs import JobManager
from studio.metrics import MetricsReader
from studio.pages.base import Page
from studio.pages.train.form import NewJobForm
from studio.pages.train.monitor import RunMonitor
from studio.pages.train.runs import RunsBox
from studio.widgets.elided_label import ElidedLabel
from trainer import api
from trainer.rundir import read_status


class TrainPage(Page):
    name = "train"
    title = "Train"
    tasks = ()
    use_model = Signal(str)  # a model file to open in its page

    def __init__(self, worker, settings, parent=None):
        super().__init__(worker, parent)
        self.settings = settings
        self.jobs = JobManager(self)
        self.jobs.changed.connect(self._job_changed)
        self.stopping: str | None = None  # the run a "stopping" message under the form is about
        self.readers: dict[str, MetricsReader] = {}
        self.current: str | None = None

        self.form = NewJobForm()
        self.start_button = QPushButton("Start", toolTip="Validate the fields and start the job")
        self.start_button.clicked.connect(self.start_clicked)
        self.form_message = ElidedLabel(lines=2)  # a fixed height: "stopping ..." never squeezes the form
        self.runs = RunsBox(self.jobs, settings)
        self.runs.selection_changed.connect(self._selection_changed)
        self.runs.message.connect(self.say)
        self.runs.stop_button.clicked.connect(self.stop_clicked)
        self.runs.resume_button.clicked.connect(self.resume_clicked)
        self.runs.use_button.clicked.connect(self.use_clicked)
        self.monitor = RunMonitor()
        self.monitor.status.connect(self.status)

        left = QVBoxLayout()
        left.addWidget(self.form)
        start_row = QHBoxLayout()
        start_row.addWidget(self.start_button)
        start_row.addWidget(self.form_message, 1)
        left.addLayout(start_row)
        left.addWidget(self.runs, 1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        split = QSplitter()
        split.addWidget(left_widget)
        split.addWidget(self.monitor)
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

    # -- runs
    def refresh_runs(self):
        self.runs.refresh()
        self.runs.update_buttons(self.current)

    def open_run(self, path) -> None:
        """Watch a run folder started elsewhere; ValueError for a folder that is not a run's."""
        self.runs.open_run(path)

    def _selection_changed(self):
        runs = self.runs.selected_runs()
        for r in runs:
            if r not in self.readers:
                self.readers[r] = MetricsReader(Path(r) / "metrics.jsonl")
        self.current = runs[0] if runs else None
        self.monitor.show_runs({Path(r).name: self.readers[r] for r in runs}, self.current)
        self.runs.follow_total(self.current, reset=True)  # a new selection: the box shows that run's total
        self.poll()
        self.monitor.plots.reset_zoom()
        self.runs.update_buttons(self.current)

    # -- live monitor
    def poll(self):
        changed = False
        for r in self.runs.selected_runs():
            if self.readers[r].poll() if r in self.readers else False:
                changed = True
        if changed:
            self.monitor.plots.data_changed()
        if not self.current:
            return
        s = read_status(self.current)
        state = self.jobs.state(self.current)
        self.runs.follow_total(self.current)
        self.runs.show_progress(self.current, state, s)
        self.monitor.show_run(self.current, s, state, self.jobs.pid(self.current), self.readers.get(self.current))
        self.runs.update_buttons(self.current)

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
        """Start a job of the form's preset and fields in a new run folder (named as ``gan-trainer
        train`` names it) under the runs folder; ValueError or OSError for anything wrong."""
        config = self.form.validate()
        run_dir = api.new_run_dir(config, self.runs.runs_root())
        overrides = self.form.overrides()
        precision = self.settings.value("precision", "auto")
        if precision != "auto":
            overrides.append(f"train.precision='{precision}'")
        self.jobs.start(self.form.preset.currentText(), run_dir, overrides)
        self.say(f"started {run_dir.name}")
        self.refresh_runs()
        self.runs.table.clearSelection()
        self.runs.select_run(run_dir)
        return run_dir

    def stop_clicked(self):
        if self.current and self.jobs.stop(self.current):
            self.stopping = str(self.current)
            self.say("stopping: the job saves a checkpoint, then exits")

    def _job_changed(self, run_dir: str) -> None:
        self.refresh_runs()
        if run_dir == self.stopping and not self.jobs.is_running(run_dir):  # the "stopping" message is over
            self.stopping = None
            step = self.jobs.saved_step(run_dir)
            self.say(f"{Path(run_dir).name}: {self.jobs.state(run_dir)}"
                     + (f", checkpoint at step {step} (Resume continues from it)" if step else ""))

    def resume_clicked(self):
        """Resume to the number the user typed, else to the run's own total (no override at all)."""
        if self.current:
            try:
                self.jobs.resume(self.current, self.runs.resume_total())
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

    def set_entries(self, entries, select=None):
        pass  # this page trains models; it lists runs, not model files
