"""Photo page (CycleGAN, pix2pix, super-resolution, style transfer): open or drop a photo, pick the
model and its direction, see input and output side by side (and CycleGAN's cycle
reconstruction), zoom and pan, save at the input's resolution, translate a whole folder."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout

from studio.pages.base import Page
from studio.widgets.controls import ControlPanel
from studio.widgets.image_view import ImageView
from studio.workers import RenderRequest


class FolderJob(QObject):
    """Translate every image of a folder into another, in its own thread, with its own model copy
    (so live rendering goes on); cancel stops after the current image."""
    progress = Signal(int, int, str)
    done = Signal(int, int, bool, str)  # translated, failed, cancelled, output folder

    def __init__(self, model, inputs, out_dir, controls, device="cpu"):
        super().__init__()
        self.model, self.inputs, self.out_dir, self.controls, self.device = model, inputs, Path(out_dir), controls, device
        self.cancel_event = threading.Event()

    @Slot()
    def run(self):
        from trainer import inference
        from trainer.data.imageio import ImageError
        translator = inference.load(self.model, self.device)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        ok = failed = 0
        for i, path in enumerate(self.inputs):
            if self.cancel_event.is_set():
                break
            try:
                translator.run(path, **self.controls).save(self.out_dir / f"{Path(path).stem}.png")
                ok += 1
            except (ImageError, ValueError, OSError):
                failed += 1
            self.progress.emit(i + 1, len(self.inputs), Path(path).name)
        self.done.emit(ok, failed, self.cancel_event.is_set(), str(self.out_dir))


class PhotoPage(Page):
    name = "photo"
    title = "Photo"
    tasks = ("photo2photo", "superres", "stylize")
    empty_hint = ("No photo model yet (CycleGAN, pix2pix, super-resolution, style transfer).\nAdd one with "
                  "File > Open model... or drop a .safetensors file here,\nor train one: gan-trainer train "
                  "cyclegan-shapes")

    def __init__(self, worker, parent=None):
        super().__init__(worker, parent)
        self.image = None  # the PIL input
        self.image_path = None
        self.input_view = ImageView("Open a photo (Ctrl+O) or drop one here.")
        self.output_view = ImageView("The translation appears here.")
        self.cycle_view = ImageView("Cycle reconstruction")
        self.cycle_box = QGroupBox("Cycle reconstruction")
        QVBoxLayout(self.cycle_box).addWidget(self.cycle_view)
        for v in (self.input_view, self.output_view, self.cycle_view):
            v.files_dropped.connect(self.files_dropped)
        self.panel = ControlPanel()
        self.panel.changed.connect(lambda _: self.refresh())
        self.job, self.job_thread = None, None

        open_button = QPushButton("Open photo...", toolTip="Open a photo (any size or mode; Ctrl+O)")
        open_button.clicked.connect(self.open_dialog)
        self.folder_button = QPushButton("Translate folder...", toolTip="Translate every image of a folder")
        self.folder_button.clicked.connect(self.folder_dialog)
        self.cancel_button = QPushButton("Cancel", toolTip="Stop the folder translation after the current image")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_folder)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m")
        self.progress.setVisible(False)
        self.info_label = QLabel("")

        boxes = []
        for title, view in (("Input", self.input_view), ("Output", self.output_view)):
            box = QGroupBox(title)
            QVBoxLayout(box).addWidget(view)
            boxes.append(box)
        views = QHBoxLayout()
        for b in (*boxes, self.cycle_box):
            views.addWidget(b, 1)
        self.cycle_box.setVisible(False)

        side = QGroupBox("Model")
        side_lay = QVBoxLayout(side)
        side_lay.addLayout(self.model_bar())
        side_lay.addWidget(self.panel)
        actions = QGroupBox("Photo")
        act = QHBoxLayout(actions)
        act.addWidget(open_button)
        act.addWidget(self.folder_button)
        act.addWidget(self.cancel_button)
        act.addWidget(self.progress, 1)
        act.addWidget(self.info_label)
        bottom = QHBoxLayout()
        bottom.addWidget(actions, 3)
        bottom.addWidget(side, 2)
        lay = QVBoxLayout(self)
        lay.addLayout(views, 1)
        lay.addLayout(bottom)

    def model_ready(self, info):
        self.panel.set_controls(info.controls, skip=("output",))
        cycle = any(c.name == "output" and "reconstruction" in c.choices for c in info.controls)
        self.cycle_box.setVisible(cycle)

    def request(self):
        if self.image is None:
            return None
        controls = self.panel.values()
        if self.cycle_box.isVisible():
            self.post(RenderRequest(self.info.path, self.channel("cycle"), self.image,
                                    {**controls, "output": "reconstruction"}))
        return RenderRequest(self.info.path, self.channel(), self.image, controls)

    def show_result(self, channel, result):
        if channel == self.channel("cycle"):
            self.cycle_view.set_array(result)
            return
        self.output = result
        self.output_view.set_array(result)
        self.info_label.setText(f"{result.shape[1]}x{result.shape[0]}")

    def show_message(self, text):
        self.output_view.set_message(text)

    def open_image(self, path) -> bool:
        from trainer.data.imageio import open_image
        image = open_image(path)  # ImageError (a ValueError) for broken or huge files
        self.image, self.image_path = image, Path(path)
        self.input_view.set_array(np.asarray(image))
        self.output, self.output_view.message = None, ""
        self.refresh()
        return True

    def open_dialog(self):
        path = self.ask_image("Open photo")
        if path:
            self.open_with(self.open_image, path)

    def show_input_error(self, text):
        self.input_view.set_message(text)

    # -- folders
    def folder_dialog(self):
        src = QFileDialog.getExistingDirectory(self, "Folder of photos to translate")
        if not src:
            return
        dst = QFileDialog.getExistingDirectory(self, "Folder for the translations")
        if dst:
            self.translate_folder(src, dst)

    def translate_folder(self, src, dst) -> bool:
        from trainer.data.imageio import IMAGE_EXTENSIONS
        if self.info is None:
            self.status.emit("Choose a model first")
            return False
        inputs = sorted(p for p in Path(src).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not inputs:
            self.status.emit(f"No images in {src}")
            return False
        self.job = FolderJob(self.info.path, inputs, dst, self.panel.values())
        self.job_thread = QThread(self)
        self.job.moveToThread(self.job_thread)
        self.job_thread.started.connect(self.job.run)
        self.job.progress.connect(self._folder_progress)
        self.job.done.connect(self._folder_done)
        self.progress.setRange(0, len(inputs))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setEnabled(True)
        self.folder_button.setEnabled(False)
        self.job_thread.start()
        return True

    def cancel_folder(self):
        if self.job is not None:
            self.job.cancel_event.set()

    def _folder_progress(self, i, n, name):
        self.progress.setValue(i)
        self.status.emit(f"Translated {name} ({i} of {n})")

    def _folder_done(self, ok, failed, cancelled, out):
        self.job_thread.quit()
        self.job_thread.wait()
        self.cancel_button.setEnabled(False)
        self.folder_button.setEnabled(True)
        self.progress.setVisible(False)
        what = "Cancelled after" if cancelled else "Translated"
        self.status.emit(f"{what} {ok} images into {out}" + (f"; {failed} could not be read" if failed else ""))
        self.last_folder_result = (ok, failed, cancelled)
