"""The main window, the studio's shell: pages in tabs, the model library dock
(:mod:`studio.library_dock`), menus, toolbar and shortcuts, status bar, preferences
(:mod:`studio.preferences`) and QSettings persistence; opening models, checkpoints, run folders
and images; ``gan-studio --screenshot`` renders a page to a PNG."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget

from studio import library
from studio.images import with_suffix
from studio.library_dock import LibraryDock, collect, import_to_user_models
from studio.pages.attributes import AttributesPage
from studio.pages.base import IMAGE_FILTER
from studio.pages.photo import PhotoPage
from studio.pages.sketch import SketchPage
from studio.pages.style import StylePage
from studio.pages.train import TrainPage
from studio.preferences import Preferences, device_text, inference_precision
from studio.workers import DEFAULT_THREADS, InferenceWorker

PAGES = (SketchPage, PhotoPage, AttributesPage, StylePage)
MAX_RECENT = 10


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None, scan_user: bool = True):
        super().__init__()
        self.settings = settings or QSettings("GAN Studio", "GAN Studio")
        self.setWindowTitle("GAN Studio")
        self.confirm_imports = True
        self.last_error = ""
        self.worker = InferenceWorker(self.settings.value("device", "auto"),
                                      int(self.settings.value("threads", DEFAULT_THREADS)),
                                      inference_precision(self.settings))
        self.entries: list[library.ModelEntry] = []
        self.extra_paths: list[Path] = []

        self.tabs = QTabWidget()
        self.pages = {}
        for cls in PAGES:
            page = cls(self.worker)
            page.status.connect(lambda text, p=page: self._page_status(p, text))
            page.timing.connect(self._timing)
            page.files_dropped.connect(self.open_paths)
            self.pages[page.name] = page
            self.tabs.addTab(page, page.title)
        self.train_page = TrainPage(self.worker, self.settings)
        self.train_page.status.connect(self.show_status)
        self.train_page.use_model.connect(self.add_model)
        self.pages["train"] = self.train_page
        self.tabs.addTab(self.train_page, "Train")
        self.closing = False
        for page in self.pages.values():
            stack = page.undo_stack()
            if stack is not None:
                stack.canUndoChanged.connect(self._update_actions)
                stack.canRedoChanged.connect(self._update_actions)
        self.tabs.currentChanged.connect(self._update_actions)
        self.tabs.currentChanged.connect(lambda _: self.statusBar().clearMessage())  # no page's news on another
        self.setCentralWidget(self.tabs)
        self.setAcceptDrops(True)

        self.dock = LibraryDock(self)
        self.dock.activated.connect(self.use_model)
        self.addDockWidget(Qt.LeftDockWidgetArea, self.dock)

        self.device_label, self.model_label, self.time_label = QLabel(), QLabel(), QLabel("")
        for w in (self.device_label, self.model_label, self.time_label):
            self.statusBar().addPermanentWidget(w)
        self._make_actions()
        self.scan_user = scan_user
        self.refresh_library()
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        self._update_device_label()
        self._update_actions()

    # -- actions
    def _action(self, text, slot, shortcut=None, tip=""):
        a = QAction(text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        a.setToolTip(tip or text.replace("...", ""))
        a.setStatusTip(tip or text.replace("...", ""))
        a.triggered.connect(slot)
        return a

    def _make_actions(self):
        self.open_image_action = self._action("Open image...", self.open_image_dialog, QKeySequence.Open,
                                              "Open a photo or sketch on the current page (Ctrl+O)")
        self.open_model_action = self._action("Open model...", self.open_model_dialog, "Ctrl+Shift+O",
                                              "Add a model file (.safetensors) or import a .pth/.ckpt/.pt")
        self.save_action = self._action("Save output...", self.save_output_dialog, QKeySequence.Save,
                                        "Save the current output image (Ctrl+S)")
        self.copy_action = self._action("Copy output", self.copy_output, "Ctrl+Shift+C",
                                        "Copy the output image to the clipboard")
        self.undo_action = self._action("Undo", self.undo, QKeySequence.Undo, "Undo the last stroke")
        self.redo_action = self._action("Redo", self.redo, QKeySequence.Redo, "Redo")
        self.prefs_action = self._action("Preferences...", self.preferences, QKeySequence.Preferences,
                                         "Device, threads and precision")
        self.quit_action = self._action("Quit", self.close, QKeySequence.Quit, "Quit GAN Studio")
        self.open_run_action = self._action("Open run folder...", self.open_run_dialog, None,
                                            "Add the model of a training run directory")
        self.recent_menu = None
        menu = self.menuBar().addMenu("&File")
        for a in (self.open_image_action, self.open_model_action, self.open_run_action):
            menu.addAction(a)
        self.recent_menu = menu.addMenu("Open recent")
        menu.addSeparator()
        menu.addAction(self.save_action)
        menu.addAction(self.copy_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        edit = self.menuBar().addMenu("&Edit")
        for a in (self.undo_action, self.redo_action):
            edit.addAction(a)
        edit.addSeparator()
        edit.addAction(self.prefs_action)
        view = self.menuBar().addMenu("&View")
        for i, page in enumerate(self.pages.values()):
            view.addAction(self._action(page.title, lambda _=False, i=i: self.tabs.setCurrentIndex(i),
                                        f"Ctrl+{i + 1}", f"Show the {page.title} page"))
        view.addAction(self.dock.toggleViewAction())
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self._action("About GAN Studio", self.about))
        tb = self.addToolBar("Main")
        tb.setObjectName("main-toolbar")
        for a in (self.open_image_action, self.open_model_action, self.save_action, self.copy_action,
                  self.undo_action, self.redo_action):
            tb.addAction(a)
        self._fill_recent()

    def page(self):
        return self.tabs.currentWidget()

    def _update_actions(self, *_):
        if self.closing:
            return
        stack = self.page().undo_stack() if self.page() else None
        self.undo_action.setEnabled(bool(stack and stack.canUndo()))
        self.redo_action.setEnabled(bool(stack and stack.canRedo()))
        info = self.page().info if self.page() else None
        self.model_label.setText(f"Model: {Path(info.path).name} ({info.precision})" if info else "No model")
        self.model_label.setToolTip(f"Inference precision: {info.precision_note}" if info else "")

    def undo(self):
        stack = self.page().undo_stack()
        if stack:
            stack.undo()

    def redo(self):
        stack = self.page().undo_stack()
        if stack:
            stack.redo()

    # -- library
    def refresh_library(self, select=None):
        """List the models again (bundled, user, opened) in the dock and on every page; ``select``:
        a model path its page switches to."""
        entries = collect(self.scan_user, self.extra_paths)
        self.entries = entries
        self.dock.show_entries(entries)
        for page in self.pages.values():
            page.set_entries(entries, select if select and any(str(e.path) == str(select) and e.page == page.name
                                                              for e in entries) else None)

    def use_model(self, path):
        entry = next((e for e in self.entries if str(e.path) == str(path)), None)
        if entry is None:
            return
        page = self.pages[entry.page]
        self.tabs.setCurrentWidget(page)
        page.select_model(entry.path)

    def add_model(self, path) -> bool:
        """Add a model file to the library and switch to it; errors are shown, never raised."""
        path = Path(path).resolve()
        try:
            library.read_entry(path, "opened")
        except (ValueError, OSError) as e:
            self.error(f"Cannot open {path.name}", str(e))
            return False
        if path not in self.extra_paths:
            self.extra_paths.append(path)
        self.remember(path)
        self.refresh_library(select=path)
        self.use_model(path)
        return True

    def import_checkpoint(self, path) -> bool:
        """A reference checkpoint (.pth/.ckpt/.pt) imported with weights_only into the user's models."""
        path = Path(path)
        if self.confirm_imports:
            answer = QMessageBox.question(self, "Import checkpoint",
                                          f"{path.name} is a PyTorch checkpoint. Import it as a GAN Studio model?\n"
                                          "Only plain tensors are read; a file that would run code is refused.")
            if answer != QMessageBox.Yes:
                return False
        try:
            out = import_to_user_models(path)
        except Exception as e:  # noqa: BLE001 - every refusal is shown, none crashes the studio
            self.error(f"Cannot import {path.name}", str(e))
            return False
        return self.add_model(out)

    def open_paths(self, paths) -> None:
        for p in map(Path, paths):
            suffix = p.suffix.lower()
            if p.is_dir() and (p / "model.safetensors").is_file():
                self.add_model(p / "model.safetensors")
            elif suffix == ".safetensors":
                self.add_model(p)
            elif suffix in library.CHECKPOINT_SUFFIXES:
                self.import_checkpoint(p)
            elif suffix == ".json" and self.page() is self.pages["style"]:  # saved latents
                self.pages["style"].open_latents(p)
            else:
                self.open_image(p)

    # -- images
    def open_image(self, path) -> bool:
        """Open ``path`` on the current page, decoded off the UI thread; False if the page takes
        no images. A broken file is reported when its decoding fails (:attr:`last_error`)."""
        page = self.page()
        ok = page.open_async(path, on_done=lambda: self.remember(path),
                             on_failed=lambda message: self.error(f"Cannot open {Path(path).name}", message))
        if not ok:
            self.show_status(f"The {page.title} page does not open images")
        return ok

    def open_image_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open image", self.settings.value("last_dir", ""), IMAGE_FILTER)
        if path:
            self.settings.setValue("last_dir", str(Path(path).parent))
            self.open_image(path)

    def open_model_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open model", self.settings.value("last_dir", ""),
                                              "Models (*.safetensors *.pth *.ckpt *.pt)")
        if path:
            self.open_paths([path])

    def open_run_dialog(self):
        path = QFileDialog.getExistingDirectory(self, "Open run folder")
        if path:
            self.open_paths([path])

    def save_output_dialog(self):
        if self.page().export_image() is None:
            self.show_status("Nothing to save yet")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save output", f"{self.page().name}-output.png",
                                              "PNG (*.png);;JPEG (*.jpg)")
        if path:
            self.save_output(path)

    def save_output(self, path) -> Path | None:
        """Write the page's output to ``path`` (PNG when it has no suffix); the status bar says
        where, or why not (the output on screen stays). Returns the path written, or None."""
        path = with_suffix(path, ".png")
        try:
            self.page().save_output(path)
        except (ValueError, OSError) as e:  # no such folder, read-only, a suffix PIL cannot write
            self.show_status(f"Cannot save {path}: {e}")
            return None
        self.show_status(f"Saved {path}")
        return path

    def copy_output(self):
        self.show_status("Copied the output" if self.page().copy_output() else "Nothing to copy yet")

    # -- recent files, settings
    def remember(self, path):
        recent = [p for p in (self.settings.value("recent") or []) if p != str(path)]
        self.settings.setValue("recent", [str(path), *recent][:MAX_RECENT])
        self._fill_recent()

    def _fill_recent(self):
        if self.recent_menu is None:
            return
        self.recent_menu.clear()
        recent = self.settings.value("recent") or []
        if isinstance(recent, str):
            recent = [recent]
        for p in recent:
            self.recent_menu.addAction(p, lambda p=p: self.open_paths([p]))
        self.recent_menu.setEnabled(bool(recent))

    def preferences(self):
        dialog = Preferences(self.settings, self)
        if dialog.exec() == QDialog.Accepted:
            dialog.store(self.settings)
            self.worker.configure(dialog.device.currentText(), dialog.threads.value(),
                                  dialog.inference_precision.currentText())
            self._update_device_label()
            for page in self.pages.values():
                page._model_chosen(page.model_combo.currentIndex())

    def _update_device_label(self):
        self.device_label.setText(device_text(self.settings))

    def _timing(self, seconds):
        self.time_label.setText(f"Last inference: {seconds * 1000:.0f} ms")
        self._update_actions()

    def _page_status(self, page, text):
        """A model page's news (loading, loaded) only while it is the page in view: every page loads its
        model in the background at start, and the last to finish must not name another page's model."""
        if self.tabs.currentWidget() is page:
            self.show_status(text)

    def show_status(self, text):
        self.statusBar().showMessage(text, 8000)
        self._update_actions()

    def error(self, title, message):
        """Errors go to the status bar and the page's view; a dialog only for interactive users."""
        self.show_status(f"{title}: {message.splitlines()[0] if message else ''}")
        self.page().show_message(f"{title}\n{message}")
        self.last_error = f"{title}: {message}"

    def about(self):
        QMessageBox.about(self, "About GAN Studio", "GAN Studio: draw, translate, edit attributes and mix styles "
                          "with conditional GANs, on your own machine.")

    # -- drag and drop on the window
    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            event.acceptProposedAction()

    def closeEvent(self, event):
        running = self.train_page.jobs.running()
        if running and self.confirm_imports:
            box = QMessageBox(QMessageBox.Question, "Training jobs are running",
                              f"{len(running)} training job(s) are running. Stop them (each saves a checkpoint) "
                              "or leave them running? A reopened studio shows them again.", parent=self)
            stop = box.addButton("Stop jobs", QMessageBox.AcceptRole)
            box.addButton("Leave running", QMessageBox.RejectRole)
            cancel = box.addButton(QMessageBox.Cancel)
            box.exec()
            if box.clickedButton() is cancel:
                event.ignore()
                return
            if box.clickedButton() is stop:
                for r in running:
                    self.train_page.jobs.stop(r)
        self.closing = True
        self.settings.setValue("geometry", self.saveGeometry())
        self.worker.stop()
        super().closeEvent(event)


def wait_for_renders(app, window, page, timeout=30.0) -> None:
    """Process events until the page has loaded its model and rendered once (or the timeout)."""
    deadline = time.monotonic() + timeout
    start = page.render_count
    while time.monotonic() < deadline:
        app.processEvents()
        if page.info is None and page.model_combo.count() == 0:
            break
        if page.render_count > start and page.settled():
            break
        time.sleep(0.01)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)


def keep_every_pointer_event() -> None:
    """No merging of mouse moves and tablet events that queue up while the UI thread is busy (a
    render being shown, a repaint): the sketch canvas draws through every point the pointer passed
    (GitHub issue 31). Called before the QApplication exists, as Qt asks of application attributes."""
    QApplication.setAttribute(Qt.AA_CompressHighFrequencyEvents, False)
    QApplication.setAttribute(Qt.AA_CompressTabletEvents, False)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="gan-studio", description="GAN Studio: draw, translate, edit, mix styles")
    p.add_argument("--screenshot", metavar="FILE", help="render a page offscreen to a PNG and exit")
    names = [cls.name for cls in PAGES] + ["train"]
    p.add_argument("--page", default=None, type=str.lower, choices=names, help=", ".join(names))
    p.add_argument("--run", help="a run folder to show on the Train page")
    p.add_argument("--model", help="a model file to open")
    p.add_argument("--image", help="an image to open on the page")
    p.add_argument("--size", default="1280x800", help="window size for --screenshot")
    args, qt_args = p.parse_known_args(argv)
    if args.screenshot:
        args.screenshot = str(with_suffix(args.screenshot, ".png"))
        if not Path(args.screenshot).parent.is_dir():
            print(f"error: --screenshot {args.screenshot}: no folder {Path(args.screenshot).parent}", file=sys.stderr)
            return 2
        import os
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from studio.platform_check import platform_problem
    problem = platform_problem()
    if problem:  # said before Qt tries; Qt still tries, in case a library sits where this did not look
        print(f"gan-studio: {problem}", file=sys.stderr, flush=True)
    keep_every_pointer_event()
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("GAN Studio")
    app.setOrganizationName("GAN Studio")
    settings = QSettings("GAN Studio", "GAN Studio-screenshot") if args.screenshot else None
    window = MainWindow(settings)
    if args.screenshot:
        window.confirm_imports = False
        w, h = (int(v) for v in args.size.lower().split("x"))
        window.resize(w, h)
    if args.model:
        window.open_paths([args.model])
    refused = window.last_error if args.screenshot else ""  # no one sees the status bar: say it, exit 2
    if refused:
        print(f"error: {refused}", file=sys.stderr)
    if args.page:
        if args.model and not refused and window.page() is not window.pages[args.page]:
            print(f"note: {Path(args.model).name} opens on the {window.page().title} page; the "
                  f"{window.pages[args.page].title} page shows its own model", file=sys.stderr)
        window.tabs.setCurrentWidget(window.pages[args.page])
    if args.image:
        if args.screenshot:  # the picture must show it: open it now
            try:
                window.page().open_image(args.image)
            except (ValueError, OSError) as e:
                print(f"error: {e}", file=sys.stderr)
                window.close()  # its render threads stop before the process ends
                return 2
        else:
            window.open_image(args.image)
    if args.run:
        window.train_page.open_run(args.run)
    window.show()
    if args.screenshot:
        wait_for_renders(app, window, window.page())
        ok = window.grab().save(args.screenshot)
        window.close()
        print(f"wrote {args.screenshot}" if ok else f"error: could not write {args.screenshot} (a read-only folder, "
              f"or a suffix Qt cannot write: use .png)", file=sys.stdout if ok else sys.stderr)
        return 2 if refused else 0 if ok else 1
    return app.exec()
