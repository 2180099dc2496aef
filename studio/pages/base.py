"""What every page shares: the models for its tasks in a combo box, loading through the worker,
posting render requests and keeping only the newest result, and saving or copying the output."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QApplication, QComboBox, QFileDialog, QHBoxLayout, QLabel, QSizePolicy, QWidget

from studio.images import array_to_qimage
from studio.workers import RenderRequest
from trainer import api

BUSY_AFTER_MS = 150  # a render not back by then marks its view busy (old output dimmed, "rendering...")
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.webp *.tif *.tiff *.gif)"


class Page(QWidget):
    """Subclasses set ``name``, ``title``, ``tasks`` and ``empty_hint`` and implement
    :meth:`model_ready` (build controls for the loaded model) and :meth:`request` (the current
    render request, or None)."""
    name = ""
    title = ""
    tasks: tuple = ()
    empty_hint = ""
    status = Signal(str)  # a message for the status bar
    timing = Signal(float)  # seconds of the last inference
    files_dropped = Signal(list)

    def __init__(self, worker, parent=None):
        super().__init__(parent)
        self.worker = worker
        self.info = None  # ModelInfo of the loaded model
        self.entries = []
        self.latest: dict[str, int] = {}  # channel -> newest stamp posted
        self.shown: dict[str, int] = {}  # channel -> stamp of the result on screen
        self.output: np.ndarray | None = None
        self.render_count = 0
        self._checked_image = None  # the input last judged for being out of domain
        self.domain_warning: str | None = None
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("The model this page uses (File > Open model... adds one)")
        self.model_combo.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.model_combo.currentIndexChanged.connect(self._model_chosen)
        self.model_label = QLabel("Model")
        worker.loaded.connect(self._loaded)
        worker.load_failed.connect(self._load_failed)
        worker.rendered.connect(self._rendered)
        worker.render_failed.connect(self._render_failed)

    def model_bar(self) -> QHBoxLayout:
        bar = QHBoxLayout()
        bar.addWidget(self.model_label)
        bar.addWidget(self.model_combo, 1)
        return bar

    # -- models
    def set_entries(self, entries, select=None) -> None:
        current = select or (self.model_combo.currentData() if self.model_combo.count() else None)
        self.entries = [e for e in entries if e.page == self.name]
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for e in self.entries:
            self.model_combo.addItem(e.name, str(e.path))
            self.model_combo.setItemData(self.model_combo.count() - 1, e.summary(), 3)  # tooltip role
        self.model_combo.blockSignals(False)
        if not self.entries:
            self.info = None
            self.show_message(self.empty_hint)
            return
        index = max(0, self.model_combo.findData(str(current))) if current else 0
        self.model_combo.setCurrentIndex(index)
        if self.info is None or self.info.path != self.model_combo.currentData():
            self._model_chosen(index)

    def select_model(self, path) -> None:
        i = self.model_combo.findData(str(path))
        if i >= 0:
            self.model_combo.setCurrentIndex(i)

    def _model_chosen(self, index) -> None:
        path = self.model_combo.itemData(index)
        self._checked_image = None  # the next input is judged against the new model
        if path:
            self.status.emit(f"Loading {Path(path).name}...")
            self.show_message(f"Loading {Path(path).name}...")
            self.worker.request_load(path, lane=self.name)

    def _loaded(self, info) -> None:
        if info.path != self.model_combo.currentData():
            return
        self.info = info
        self.show_message("")
        self.status.emit(f"Loaded {Path(info.path).name}")
        self.model_ready(info)
        self.refresh()

    def _load_failed(self, path, message) -> None:
        if path != self.model_combo.currentData():
            return
        self.info = None
        self.show_message(f"Could not load {Path(path).name}:\n{message}")
        self.status.emit(f"Could not load {Path(path).name}")

    # -- rendering
    def refresh(self) -> None:
        """Post the page's current request (if it can make one)."""
        if self.info is None:
            return
        req = self.request()
        if req is not None:
            self.post(req)
            if req.image is not None and req.image is not self._checked_image and self.judge_input():
                # a new input: judged once
                self._checked_image = req.image
                self.post(RenderRequest(req.model, self.channel("domain"), req.image, kind="domain"))

    def judge_input(self) -> bool:
        """Whether the input is finished enough to be judged against the model's training data
        (the out-of-domain line); the Sketch page waits for the end of a stroke."""
        return True

    def post(self, req: RenderRequest) -> int:
        self.latest[req.channel] = req.stamp
        stamp = self.worker.submit(req)
        QTimer.singleShot(BUSY_AFTER_MS, self._mark_busy)  # quick renders never flicker
        return stamp

    def _mark_busy(self) -> None:
        for channel, stamp in self.latest.items():
            view = self.view_for(channel)
            if view is not None and self.shown.get(channel, 0) < stamp:
                view.set_busy(True)

    def show_domain_warning(self, text: str | None) -> None:
        """One line over the output when the input is unlike what the model was trained on."""
        self.domain_warning = text
        view = self.view_for(self.channel())
        if view is not None:
            view.set_warning(text or "")
        if text:
            self.status.emit(text)

    def view_for(self, channel: str):
        """The view that shows ``channel``'s results: ``page:out`` -> ``output_view``, ``page:grid``
        -> ``grid_view``...; None where a page shows a channel otherwise."""
        suffix = channel.split(":", 1)[1]
        return getattr(self, "output_view" if suffix == "out" else f"{suffix}_view", None)

    def _settle(self, channel: str, stamp: int) -> None:
        self.shown[channel] = stamp
        view = self.view_for(channel)
        if view is not None and stamp >= self.latest.get(channel, 0):
            view.set_busy(False)

    def _rendered(self, channel, stamp, result, seconds) -> None:
        # another page's channel, or older than what is on screen: ignored. A result older than the
        # newest request is still shown while drawing (the newest follows), never after a newer one.
        if channel not in self.latest or stamp <= self.shown.get(channel, 0):
            return
        self._settle(channel, stamp)
        if channel == self.channel("domain"):
            self.show_domain_warning(result)
            return
        self.render_count += 1
        self.timing.emit(seconds)
        self.show_result(channel, result)

    def _render_failed(self, channel, stamp, message) -> None:
        if channel not in self.latest or stamp < self.latest[channel]:
            return
        self._settle(channel, stamp)
        self.show_message(message)
        self.status.emit(message.splitlines()[0])

    def settled(self) -> bool:
        """Every channel shows the result of its newest request."""
        return all(self.shown.get(c, 0) >= s for c, s in self.latest.items())

    def channel(self, suffix: str = "out") -> str:
        return f"{self.name}:{suffix}"

    # -- hooks
    def model_ready(self, info) -> None:
        pass

    def request(self) -> RenderRequest | None:
        return None

    def show_result(self, channel, result) -> None:
        pass

    def show_message(self, text: str) -> None:
        pass

    # -- opening images: pages that take one implement take_image
    def take_image(self, decoded) -> None:
        """Use a :class:`studio.decoding.Decoded` image as the page's input (UI thread)."""
        raise NotImplementedError

    @property
    def opens_images(self) -> bool:
        return type(self).take_image is not Page.take_image

    def prepare_image(self, image):
        """Work on a just-decoded image that belongs off the UI thread (runs in the decoding pool)."""
        return None

    def open_image(self, path) -> bool:
        """Open ``path`` now, on this thread (scripts and tests); raises ValueError or OSError."""
        if not self.opens_images:
            return False
        from studio.decoding import Decoded, preview_of
        image = api.open_image(path)
        self.take_image(Decoded(str(path), image, preview_of(image), self.prepare_image(image)))
        return True

    def open_async(self, path, on_done=None, on_failed=None, take=None, prepare=None) -> bool:
        """Open ``path`` off the UI thread, then ``take`` it (default :meth:`take_image`); a broken
        file is reported in the page (and to ``on_failed``), never raised."""
        if take is None and not self.opens_images:
            return False
        from studio.decoding import decode

        def done(decoded):
            self.status.emit(f"Opened {Path(path).name} ({decoded.image.width} x {decoded.image.height} px)")
            (take or self.take_image)(decoded)  # (which may say more: a warning replaces the line above)
            if on_done:
                on_done()

        def failed(message):
            self.show_input_error(message)
            self.status.emit(message.splitlines()[0])
            if on_failed:
                on_failed(message)
        self.status.emit(f"Opening {Path(path).name}...")
        decode(path, done, failed, prepare or self.prepare_image)
        return True

    def ask_image(self, title: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, title, "", IMAGE_FILTER)
        return path or None


    def show_input_error(self, text: str) -> None:
        self.show_message(text)

    def export_image(self) -> Image.Image | None:
        """What Save output writes."""
        return None if self.output is None else Image.fromarray(self.output)

    def save_output(self, path) -> None:
        image = self.export_image()
        if image is None:
            raise ValueError("there is no output to save yet")
        image.save(path)

    def copy_output(self) -> bool:
        image = self.export_image()
        if image is None:
            return False
        QApplication.clipboard().setImage(array_to_qimage(np.asarray(image.convert("RGB"))))
        return True

    def undo_stack(self):
        return None
