"""The model library beside the pages: the bundled models, the user's models folder and the
files opened this session, each with its method, task and source; selecting one shows its card,
double-clicking uses it (its page opens with it). Reference checkpoints are imported into the
user's models folder."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt, Signal
from PySide6.QtWidgets import QDockWidget, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from studio import library
from trainer import api


def user_models_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.AppDataLocation) or str(Path.home() / ".gan-studio")
    return Path(base) / "models"


def collect(scan_user: bool, opened: list[Path]) -> list[library.ModelEntry]:
    """The bundled models, the user's (``scan_user``), then the ``opened`` files not among them
    (an opened file that cannot be read any more is left out)."""
    entries = library.scan(library.BUNDLED, "bundled")
    if scan_user:
        entries += library.scan(user_models_dir(), "user")
    listed = {e.path.resolve() for e in entries}
    for p in opened:
        if p in listed:  # a bundled or user model opened by its path: listed once
            continue
        try:
            entries.append(library.read_entry(p, "opened"))
        except (ValueError, OSError):
            pass
    return entries


def import_to_user_models(path) -> Path:
    """A reference checkpoint (.pth/.ckpt/.pt) imported (plain tensors only) as
    ``<user models>/<stem>.safetensors``; raises what :func:`trainer.api.import_checkpoint` raises."""
    path = Path(path)
    out = user_models_dir() / f"{path.stem}.safetensors"
    out.parent.mkdir(parents=True, exist_ok=True)
    api.import_checkpoint(path, out)
    return out


class LibraryDock(QDockWidget):
    """The list of models and the card of the selected one; ``activated(path)`` on a double-click."""
    activated = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Model library", parent)
        self.setObjectName("library")
        self.entries: list[library.ModelEntry] = []
        self.library_list = QListWidget(toolTip="Model files: double-click to use one")
        self.library_list.itemActivated.connect(self._activated)
        self.library_list.currentItemChanged.connect(self._selected)
        self.card_label = QLabel("Select a model to see its card.")
        self.card_label.setWordWrap(True)
        self.card_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.card_label.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        dock_widget = QWidget()
        dl = QVBoxLayout(dock_widget)
        dl.addWidget(self.library_list, 2)
        dl.addWidget(self.card_label, 1)
        self.setWidget(dock_widget)
        dock_widget.setMinimumWidth(220)

    def show_entries(self, entries: list[library.ModelEntry]) -> None:
        self.entries = entries
        self.library_list.clear()
        if not entries:
            item = QListWidgetItem("No models yet.\nFile > Open model... or drop a\n.safetensors file on the window.")
            item.setFlags(Qt.NoItemFlags)
            self.library_list.addItem(item)
        for e in entries:
            item = QListWidgetItem(f"{e.name}\n  {e.method} · {e.task} · {e.source}")
            item.setData(Qt.UserRole, str(e.path))
            item.setToolTip(e.summary())
            self.library_list.addItem(item)

    def _selected(self, item, _=None):
        if item is None or not item.data(Qt.UserRole):
            return
        entry = next(e for e in self.entries if str(e.path) == item.data(Qt.UserRole))
        self.card_label.setText(entry.summary())

    def _activated(self, item):
        path = item.data(Qt.UserRole)
        if path:
            self.activated.emit(path)
