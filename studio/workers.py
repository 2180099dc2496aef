"""The inference worker: long-lived lanes, each a QObject in its own QThread, own the loaded models.

Pages post :class:`RenderRequest` objects on named channels (``page:output``, CycleGAN's
reconstruction, an attribute strip...). A channel's prefix names its lane: every page renders in
a lane of its own, so a slow render on one page (a large super-resolution) never holds back the
newest stroke on another. Each channel keeps only its newest pending request, so a burst of
requests while drawing collapses to the latest (an urgent one runs first, a domain check last);
every result carries the stamp of its request and pages ignore a stamp older than their newest.
A render that has run for more than :data:`PREEMPT_SECONDS` (or any, for an urgent request) is
interrupted when a newer request for its channel arrives, and every render is interrupted when
the studio closes (between two modules of the forward pass), so closing never waits for a long
render. The lanes return uint8 arrays; the UI thread turns them
into QImages. No forward pass ever runs on the UI thread.
"""
from __future__ import annotations

import itertools
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from trainer import api

_stamps = itertools.count(1)
PREEMPT_SECONDS = 1.0  # a render running longer than this gives way to a newer request of its channel
DEFAULT_THREADS = 1  # bench/studio_latency.py: on 2 cores one thread per lane gives the best p95
DEFAULT_PRECISION = "auto"  # bf16 where the hardware computes it and the model's output holds (fp32 else)


def next_stamp() -> int:
    return next(_stamps)


class Cancelled(Exception):
    """A render interrupted between two modules: a newer request replaced it, or the studio closes."""


_lane_state = threading.local()  # .cancel: the threading.Event of the lane running on this thread
_hook_lock = threading.Lock()
_hook = None


def _interrupt_point(module, args):
    event = getattr(_lane_state, "cancel", None)
    if event is not None and event.is_set():
        raise Cancelled()


def _install_interrupt_hook() -> None:
    """One global forward pre-hook: a lane's forward pass stops at the next module once its cancel
    event is set. Threads that are not lanes (tests, the engine elsewhere) are not affected."""
    global _hook
    with _hook_lock:
        if _hook is None:
            import torch
            _hook = torch.nn.modules.module.register_module_forward_pre_hook(_interrupt_point)


@dataclass
class RenderRequest:
    """What a page wants rendered. ``kind``: ``render`` (one output), ``variants`` (one output per
    entry of ``variants``, each a dict of controls over ``controls``), ``interpolate`` (StyleGAN
    frames from ``controls['seed']`` to ``controls['style_seed']``), ``domain`` (a line saying why
    the image is unlike the model's training data, or None)."""
    model: str
    channel: str
    image: Any = None  # PIL image, uint8 HWC array, or None for seed-based models
    controls: dict = field(default_factory=dict)
    kind: str = "render"
    variants: list = field(default_factory=list)
    urgent: bool = False  # interrupt the channel's running render at once (the final render after live ones)
    stamp: int = field(default_factory=next_stamp)

    @property
    def lane(self) -> str:
        return self.channel.split(":", 1)[0]


@dataclass
class ModelInfo:
    """What the UI needs of a loaded model: its card and declared controls (plain data), and the
    precision it runs in ("fp32", "bf16", "fp16") with the reason (``precision_note``)."""
    path: str
    card: dict
    controls: list
    needs_image: bool
    precision: str = "fp32"
    precision_note: str = "fp32"


class _Lane(QObject):
    """One page's queue and models, drained on its own thread."""
    loaded = Signal(object)
    load_failed = Signal(str, str)
    rendered = Signal(str, int, object, float)
    render_failed = Signal(str, int, str)
    _wake = Signal()

    def __init__(self, pool: "InferenceWorker"):
        super().__init__()
        self.pool = pool
        self._lock = threading.Lock()
        self._pending: dict[str, RenderRequest] = {}
        self._loads: list[str] = []
        self._models: dict[tuple, Any] = {}
        self._running: tuple[str, float] | None = None  # channel, start time
        self.cancel = threading.Event()
        self.closed = False
        self._wake.connect(self._drain)

    # -- from the UI thread
    def request_load(self, path: str) -> None:
        with self._lock:
            self._loads.append(path)
        self._wake.emit()

    def submit(self, request: RenderRequest) -> None:
        with self._lock:
            self._pending[request.channel] = request
            running = self._running
            if running and running[0] == request.channel and (
                    request.urgent or time.perf_counter() - running[1] > PREEMPT_SECONDS):
                self.cancel.set()
        self._wake.emit()

    def close(self) -> None:
        """Drop what is pending and interrupt what runs."""
        with self._lock:
            self.closed = True
            self._pending.clear()
            self._loads.clear()
            self.cancel.set()

    def forget_models(self) -> None:
        with self._lock:
            self._models.clear()

    # -- the lane's thread
    def _translator(self, path: str):
        p = Path(path)
        device, precision = self.pool.device, self.pool.precision
        key = (str(p), p.stat().st_mtime_ns, device, precision)
        if key not in self._models:
            self._models = {k: v for k, v in self._models.items() if k[0] != str(p)}
            self._models[key] = api.load_model(p, api.resolve_device(device), precision)
        return self._models[key]

    @Slot()
    def _drain(self) -> None:
        import torch
        _lane_state.cancel = self.cancel
        while True:
            with self._lock:
                if self.closed:
                    return
                self.cancel.clear()
                threads = self.pool.threads
                if threads and torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
                if self._loads:
                    job, path = "load", self._loads.pop(0)
                elif self._pending:  # a stroke's final render first, a domain check last
                    first = min(self._pending.values(), key=lambda r: (not r.urgent, r.kind == "domain"))
                    job, req = "render", self._pending.pop(first.channel)
                    self._running = (req.channel, time.perf_counter())
                else:
                    return
            if job == "load":
                try:
                    t = self._translator(path)
                    self.loaded.emit(ModelInfo(path, t.card, list(t.controls), t.needs_image, t.precision,
                                               t.precision_note))
                except Exception as e:  # noqa: BLE001 - any failure is reported in the view
                    self.load_failed.emit(path, _message(e))
                continue
            start = time.perf_counter()
            try:
                out = self._render(req)
                seconds = time.perf_counter() - start
                self.rendered.emit(req.channel, req.stamp, out, seconds)
            except Cancelled:
                pass  # a newer request of the channel is pending, or the studio closes
            except Exception as e:  # noqa: BLE001
                self.render_failed.emit(req.channel, req.stamp, _message(e))
            finally:
                with self._lock:
                    self._running = None

    def _render(self, req: RenderRequest):
        t = self._translator(req.model)
        if req.kind == "domain":
            return api.input_warning(t.card, req.image)
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


class InferenceWorker(QObject):
    """The pages' one entry point to inference, living on the UI thread: it routes loads and
    renders to the lane of their page (created on first use) and re-emits the lanes' results.
    ``threads``: torch threads per lane (0: PyTorch's default); ``precision``: the models'
    inference precision (:data:`trainer.api.INFERENCE_PRECISIONS`; auto: reduced where it holds)."""
    loaded = Signal(object)  # ModelInfo
    load_failed = Signal(str, str)  # path, message
    rendered = Signal(str, int, object, float)  # channel, stamp, array or list of arrays, seconds
    render_failed = Signal(str, int, str)  # channel, stamp, message

    def __init__(self, device: str = "auto", threads: int = DEFAULT_THREADS, precision: str = DEFAULT_PRECISION):
        super().__init__()
        self.device, self.threads, self.precision = device, threads, precision
        self.lanes: dict[str, tuple[_Lane, QThread]] = {}
        self.stopped = False

    def lane(self, name: str) -> _Lane:
        if name not in self.lanes:
            _install_interrupt_hook()
            thread = QThread()
            thread.setObjectName(f"inference:{name}")
            lane = _Lane(self)
            lane.moveToThread(thread)
            for sig in ("loaded", "load_failed", "rendered", "render_failed"):
                getattr(lane, sig).connect(getattr(self, sig))
            thread.start()
            self.lanes[name] = (lane, thread)
        return self.lanes[name][0]

    def request_load(self, path, lane: str = "main") -> None:
        if not self.stopped:
            self.lane(lane).request_load(str(path))

    def submit(self, request: RenderRequest) -> int:
        if not self.stopped:
            self.lane(request.lane).submit(request)
        return request.stamp

    def configure(self, device: str, threads: int, precision: str | None = None) -> None:
        """New settings for the next renders; a new device or precision reloads the models."""
        precision = self.precision if precision is None else precision
        if (device, precision) != (self.device, self.precision):
            for lane, _ in self.lanes.values():
                lane.forget_models()
        self.device, self.threads, self.precision = device, threads, precision

    def stop(self, timeout_ms: int = 60000) -> bool:
        """Drop pending renders, interrupt running ones and end every lane's thread. Returns
        whether all ended; a lane stuck inside one operation past ``timeout_ms`` ends the
        process at once rather than letting Qt abort it ("QThread: Destroyed while running")."""
        self.stopped = True
        for lane, thread in self.lanes.values():
            lane.close()
            thread.quit()
        ok = all(thread.wait(timeout_ms) for _, thread in self.lanes.values())
        if not ok:
            print("GAN Studio: an inference thread did not stop; exiting", file=sys.stderr, flush=True)
            os._exit(0)
        return ok
