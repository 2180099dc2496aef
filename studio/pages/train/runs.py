"""The Train page's runs: every run folder under the runs folder (and folders opened from
elsewhere) in a table with its state, method, step and start, and the actions on the selected
run (stop, resume to a total, use its model). What a run is doing is read from its folder
(:mod:`trainer.rundir`); the jobs this studio started are known to the :class:`JobManager`."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout)

from studio.jobs import JobManager
from trainer.rundir import data_stage, read_status, run_total_steps

MIN_RUN_ROWS = 5  # the runs list shows at least this many runs at the default window size
COLUMNS = ["Run", "State", "Method", "Step", "Started"]


def percent(done: int, total: int) -> int:
    return int(100 * done / total) if total else 0


def step_text(status: dict, state: str) -> str:
    """The runs list's Step cell: "preparing data 23 %" while the job makes its dataset, else "step / total"."""
    preparing = data_stage(status) if state == "running" else None
    if preparing:
        return f"preparing data {percent(*preparing)} %"
    total = status.get("total_steps")
    return f"{status.get('step', 0)} / {total}" if total else ""


class RunsBox(QGroupBox):
    """The runs folder, the runs table (several may be selected: their curves overlay) and the
    actions on the first selected run. ``selection_changed`` when the selection changes;
    ``message(text, error)`` for the page to show."""
    selection_changed = Signal()
    message = Signal(str, bool)

    def __init__(self, jobs: JobManager, settings, parent=None):
        super().__init__("Runs", parent)
        self.jobs, self.settings = jobs, settings
        self.extra_runs: list[Path] = []
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
        # a narrow list: a run's name keeps its preset (start) and its time stamp (end), the middle elided
        self.table.setTextElideMode(Qt.ElideMiddle)
        self.table.setWordWrap(False)  # (wrapped at its hyphens, a name showed as "bicyclegan-...")
        self.table.setToolTip("Every run under the runs folder and opened run folders; select several to "
                              "overlay their curves")
        self.table.itemSelectionChanged.connect(self.selection_changed)
        open_run = QPushButton("Open run...", toolTip="Open a run folder to watch a run started elsewhere "
                                                      "(terminal, torchrun, another machine)")
        open_run.clicked.connect(self.open_run_dialog)
        self.stop_button = QPushButton("Stop", toolTip="SIGTERM: the job saves a checkpoint and exits")
        self.resume_steps = QSpinBox(minimum=1, maximum=10 ** 8, prefix="to ", suffix=" steps",
                                     toolTip="Resume up to this total step count: the run's own total unless you "
                                             "type another")
        # wide enough for "to 1000000 steps" whatever the row leaves it
        self.resume_steps.setMinimumWidth(self.fontMetrics().horizontalAdvance("to 1000000 steps") + 36)
        self.resume_steps_typed = False  # the box follows the selected run's total until the user types
        self.resume_steps.valueChanged.connect(self._resume_steps_edited)
        self.resume_button = QPushButton("Resume", toolTip="Continue a stopped, crashed or finished run")
        self.use_button = QPushButton("Use model", toolTip="Export the run's latest generator and open it in its "
                                                           "page")
        rl = QVBoxLayout(self)
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

    def table_height(self, rows: int) -> int:
        """The runs list's height for ``rows`` rows: header, rows, frame and a horizontal scroll bar."""
        t = self.table
        return (t.horizontalHeader().sizeHint().height() + rows * t.verticalHeader().defaultSectionSize()
                + 2 * t.frameWidth() + t.horizontalScrollBar().sizeHint().height())

    # -- the runs listed
    def runs_root(self) -> Path:
        return Path(self.settings.value("runs_root", str(Path.cwd() / "runs")))

    def _runs_root_changed(self):
        self.settings.setValue("runs_root", self.runs_root_edit.text().strip())
        self.refresh()

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

    def refresh(self):
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

    def show_progress(self, run_dir: str, state: str, status: dict) -> None:
        """Keep ``run_dir``'s state and step current between scans."""
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            if item is not None and item.data(Qt.UserRole) == run_dir:
                self.table.item(r, 1).setText(state)
                self.table.item(r, 3).setText(step_text(status, state))

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
        self.refresh()
        self.select_run(p)

    def open_run_dialog(self):
        path = QFileDialog.getExistingDirectory(self, "Open run folder")
        if path:
            try:
                self.open_run(path)
            except ValueError as e:
                self.message.emit(str(e), True)

    # -- the selected run
    def _resume_steps_edited(self, _value):
        self.resume_steps_typed = True

    def follow_total(self, run_dir: str | None, reset: bool = False) -> None:
        """The resume box shows ``run_dir``'s total (status, else config.toml) until the user types
        a number (``reset``: a new selection, follow again); read on every poll, since a just-started
        run has neither file yet."""
        if reset:
            self.resume_steps_typed = False
        if self.resume_steps_typed or not run_dir:
            return
        total = run_total_steps(run_dir)
        if total is not None and total != self.resume_steps.value():
            self.resume_steps.blockSignals(True)
            self.resume_steps.setValue(total)
            self.resume_steps.blockSignals(False)

    def resume_total(self) -> int | None:
        """The total the user typed, else None: the run's own total."""
        return self.resume_steps.value() if self.resume_steps_typed else None

    def update_buttons(self, run_dir: str | None) -> None:
        running = bool(run_dir) and self.jobs.is_running(run_dir)
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(bool(run_dir) and not running)
        self.use_button.setEnabled(bool(run_dir) and any(
            (Path(run_dir) / p).exists() for p in ("model.safetensors", "checkpoints")))
