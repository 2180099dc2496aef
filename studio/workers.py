"""The inference worker: one long-lived QObject in its own QThread owns the loaded models.

Pages post :class:`RenderRequest` objects on named channels (a page's output, CycleGAN's
reconstruction, an attribute strip...). Each channel keeps only its newest pending request, so
a burst of requests while drawing collapses to the latest; every result carries the stamp of its
request and pages ignore a stamp older than their newest. The worker returns uint8 arrays; the
UI thread turns them into QImages. No forward pass ever runs on the UI thread.
"""
from __future__ import annotations

import itertools
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

_stamps = itertools.count(1)


def next_stamp() -> int:
    return next(_stamps)


@dataclass
class RenderRequest:
    """What a page wants rendered. ``kind``: ``render`` (one output), ``variants`` (one output per
    entry of ``variants``, each a dict of controls over ``controls``), ``interpolate`` (StyleGAN
    frames from ``controls['seed']`` to ``controls['style_seed']``)."""
    model: str
    channel: str
    image: Any = None  # PIL image, uint8 HWC array, or None for seed-based models
    controls: dict = field(default_factory=dict)
    kind: str = "render"
    variants: list = field(default_factory=list)
    stamp: int = field(default_factory=next_stamp)


@dataclass
class ModelInfo:
    """What the UI needs of a loaded model: its card and declared controls (plain data)."""
    path: str
    card: dict
    controls: list
    needs_image: bool


class InferenceWorker(QObject):
    loaded = Signal(object)  # ModelInfo
    load_failed = Signal(str, str)  # path, message
    rendered = Signal(str, int, object, float)  # channel, stamp, array or list of arrays, seconds
    render_failed = Signal(str, int, str)  # channel, stamp, message
    _wake = Signal()

    def __init__(self, device: str = "auto", threads: int = 0):
        super().__init__()
        self.device, self.threads = device, threads
        self._lock = threading.Lock()
        self._pending: dict[str, RenderRequest] = {}
        self._loads: list[str] = []
        self._models: dict[tuple, Any] = {}
        self._wake.connect(self._drain)
        self.busy_seconds = 0.0

    # -- called from the UI thread (thread-safe)
    def request_load(self, path) -> None:
        with self._lock:
            self._loads.append(str(path))
        self._wake.emit()

    def submit(self, request: RenderRequest) -> int:
        with self._lock:
            self._pending[request.channel] = request
        self._wake.emit()
        return request.stamp

    def configure(self, device: str, threads: int) -> None:
        with self._lock:
            if device != self.device:
                self._models.clear()
            self.device, self.threads = device, threads

    # -- the worker thread
    def _translator(self, path: str):
        from trainer import inference
        from trainer.device import resolve_device
        p = Path(path)
        key = (str(p), p.stat().st_mtime_ns, self.device)
        if key not in self._models:
            self._models = {k: v for k, v in self._models.items() if k[0] != str(p)}
            self._models[key] = inference.load(p, resolve_device(self.device))
        return self._models[key]

    @Slot()
    def _drain(self) -> None:
        import torch
        while True:
            with self._lock:
                if self.threads:
                    torch.set_num_threads(self.threads)
                if self._loads:
                    job, path = "load", self._loads.pop(0)
                elif self._pending:
                    job, req = "render", self._pending.pop(next(iter(self._pending)))
                else:
                    return
            if job == "load":
                try:
                    t = self._translator(path)
                    self.loaded.emit(ModelInfo(path, t.card, list(t.controls), t.needs_image))
                except Exception as e:  # noqa: BLE001 - any failure is reported in the view
                    self.load_failed.emit(path, _message(e))
                continue
            start = time.perf_counter()
            try:
                out = self._render(req)
                seconds = time.perf_counter() - start
                self.busy_seconds += seconds
                self.rendered.emit(req.channel, req.stamp, out, seconds)
            except Exception as e:  # noqa: BLE001
                self.render_failed.emit(req.channel, req.stamp, _message(e))

    def _render(self, req: RenderRequest):
        t = self._translator(req.model)
        if req.kind == "variants":
            return [t.run_array(req.image, **{**req.controls, **v}) for v in req.variants]
        if req.kind == "interpolate":
            c = dict(req.controls)
            return t.interpolate(c.pop("seed", 0), c.pop("style_seed", 1), **c)
        return t.run_array(req.image, **req.controls)


def _message(e: Exception) -> str:
    text = str(e) or e.__class__.__name__
    if isinstance(e, (ValueError, OSError, KeyError)) or type(e).__name__.endswith("Error"):
        return text
    return f"{text}\n{traceback.format_exc(limit=3)}"


class WorkerThread:
    """The worker and its QThread, started at once and stopped cleanly."""

    def __init__(self, device="auto", threads=0):
        self.thread = QThread()
        self.thread.setObjectName("inference")
        self.worker = InferenceWorker(device, threads)
        self.worker.moveToThread(self.thread)
        self.thread.start()

    def stop(self) -> None:
        self.thread.quit()
        self.thread.wait(5000)
