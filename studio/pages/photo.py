"""Photo page (CycleGAN, pix2pix, super-resolution, style transfer): open or drop a photo, or pick a
sample of the model's input domain (one is shown as soon as a model loads), pick the model and its
direction (named by domain: "photo -> cartoon"), see input and output side by side (and CycleGAN's
cycle reconstruction), zoom and pan, save at the input's resolution, translate a whole folder."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout

from studio.pages.base import Page
from studio.widgets.controls import ControlPanel
from studio.widgets.image_view import ImageView
from studio.widgets.samples import SamplePicker, direction_label, domain_names, has_samples, input_domain, \
    sample_image
from studio.workers import RenderRequest
from trainer import api


class FolderJob(QObject):
    """Translate every image of a folder into another, in its own thread, with its own model copy
    (so live rendering goes on); cancel stops after the current image.

    ``names`` are the inputs' paths relative to their folder: the outputs keep them, named as
    ``gan-trainer translate`` names them (:func:`trainer.api.output_names`: sub/a.png ->
    sub/a.png, a.jpg -> a.jpg.png), so inputs of the same stem never overwrite each other. Each
    output is written whole (a temporary file renamed), so a cancelled or closed job leaves no
    half-written image."""
    progress = Signal(int, int, str)
    done = Signal(int, int, bool, str)  # translated, failed, cancelled, output folder

    def __init__(self, model, inputs, out_dir, controls, device="cpu", names=None, precision="auto"):
        super().__init__()
        self.model, self.inputs, self.out_dir, self.controls, self.device = model, inputs, Path(out_dir), controls, device
        self.precision = precision  # the device and precision the pages render in (Preferences)
        self.outputs = api.output_names(names if names is not None else [Path(p).name for p in inputs])
        self.cancel_event = threading.Event()

    @Slot()
    def run(self):
        import os
        import tempfile

        ok = failed = 0
        try:
            translator = api.load_model(self.model, api.resolve_device(self.device), self.precision)
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except Exception:  # a model that does not load, an output folder that cannot be made
            self.done.emit(0, len(self.inputs), False, str(self.out_dir))
            return
        for i, (path, name) in enumerate(zip(self.inputs, self.outputs)):
            if self.cancel_event.is_set():
                break
            try:
                image = translator.run(path, **self.controls)
                target = self.out_dir / name
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
                try:
                    with os.fdopen(fd, "wb") as f:
                        api.save_output(image, f)
                    os.replace(tmp, target)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
                ok += 1
            except Exception:  # a broken image or an unforeseen failure on one: the others go on
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
        self.panel.changed.connect(self._controls_changed)
        self.job, self.job_thread = None, None
        self.samples = SamplePicker("photo")
        self.samples.setEnabled(False)
        self.samples.chosen.connect(self.show_sample)
        self.sample_index = None  # the sample shown as the input, None for the user's own image
        self.sample_key = None  # (model, domain, index) of the sample shown

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
        self.input_box, self.output_box = boxes
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
        act.addWidget(self.samples)
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
        direction = next((c for c in info.controls if c.name == "direction"), None)
        if direction is not None:  # named by domain from the card: "photo -> cartoon", not "AtoB"
            a, b = domain_names(info.card)
            self.panel.describe_choices("direction", {d: direction_label(info.card, d) for d in direction.choices},
                                        help=f"Translate {a} to {b}, or {b} to {a}")
        cycle = any(c.name == "output" and "reconstruction" in c.choices for c in info.controls)
        self.cycle_box.setVisible(cycle)
        self._follow_domain()

    def direction(self) -> str | None:
        return self.panel.values().get("direction")

    def _follow_domain(self):
        """Samples and box titles of the domain the model reads now; a shown sample is redrawn in it
        (the same scene), and with no input yet (a model just loaded) the first sample is shown.
        The caller renders."""
        card = self.info.card
        src = input_domain(card, self.direction())
        a, b = domain_names(card)
        dst = (b if src == a else a) if self.direction() or card.get("direction") else None
        self.input_box.setTitle(f"Input: {src}")
        self.output_box.setTitle(f"Output: {dst}" if dst and dst != src else "Output")
        self.samples.set_noun(src)
        self.samples.setEnabled(has_samples(card, self.direction()))
        if not self.samples.isEnabled():
            return
        if self.image is None:
            self.samples.reset(0)
            self._load_sample(0)
        elif self.sample_index is not None and self.sample_key != self._sample_key(self.sample_index):
            self._load_sample(self.sample_index)

    def _controls_changed(self, _values):
        if self.info is not None:
            self._follow_domain()  # a new direction reads the other domain
        self.refresh()

    def _sample_key(self, index):
        return self.info.path, input_domain(self.info.card, self.direction()), index

    def _load_sample(self, index: int) -> bool:
        image = sample_image(self.info.card, index, self.direction())
        if image is None:
            return False
        self.image, self.image_path, self.sample_index = image, None, index
        self.sample_key = self._sample_key(index)
        self.input_view.set_array(np.asarray(image))
        self.output, self.output_view.message = None, ""
        return True

    def show_sample(self, index: int) -> None:
        """Sample ``index`` (0...) of the model's input domain as the input (the sample picker's choice)."""
        if self.info is not None and self._load_sample(index):
            self.refresh()

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

    def take_image(self, decoded) -> None:
        self.image, self.image_path, self.sample_index = decoded.image, Path(decoded.path), None
        self.samples.reset()
        self.input_view.set_array(decoded.preview)
        self.output, self.output_view.message = None, ""
        self.refresh()

    def open_dialog(self):
        path = self.ask_image("Open photo")
        if path:
            self.open_async(path)

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
        if self.info is None:
            self.status.emit("Choose a model first")
            return False
        if self.job is not None:
            self.status.emit("A folder is being translated; cancel it first")
            return False
        inputs = api.folder_images(src, dst)  # (a subfolder's earlier translations are not inputs)
        if not inputs:
            self.status.emit(f"No images in {src}")
            return False
        names = [p.relative_to(src) for p in inputs]
        why = api.translation_refusal(inputs, dst, api.output_names(names))
        if why:
            self.status.emit(f"Not translated: {why}")
            return False
        self.job = FolderJob(self.info.path, inputs, dst, self.panel.values(), device=self.worker.device,
                             names=names, precision=self.worker.precision)
        self.job_thread = QThread(self)
        # closing the studio mid-job: stop after the current image and wait for the thread, before
        # Qt tears the page (and the running thread with it) down
        QCoreApplication.instance().aboutToQuit.connect(self.finish_folder_job)
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

    def finish_folder_job(self, timeout_ms: int = 60_000) -> None:
        """Cancel a running folder job and wait for its thread (the studio is closing)."""
        job, thread = self.job, self.job_thread
        if job is None or thread is None:
            return
        job.cancel_event.set()
        thread.quit()  # its event loop ends once run() has returned
        thread.wait(timeout_ms)

    def _folder_progress(self, i, n, name):
        self.progress.setValue(i)
        self.status.emit(f"Translated {name} ({i} of {n})")

    def _folder_done(self, ok, failed, cancelled, out):
        self.job_thread.quit()
        self.job_thread.wait()
        try:
            QCoreApplication.instance().aboutToQuit.disconnect(self.finish_folder_job)
        except (RuntimeError, TypeError):
            pass
        self.job, self.job_thread = None, None
        self.cancel_button.setEnabled(False)
        self.folder_button.setEnabled(True)
        self.progress.setVisible(False)
        what = "Cancelled after" if cancelled else "Translated"
        self.status.emit(f"{what} {ok} images into {out}" + (f"; {failed} could not be read" if failed else ""))
        self.last_folder_result = (ok, failed, cancelled)
