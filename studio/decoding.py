"""Opening images off the UI thread: a 24-80 MP photo takes seconds to decode, and its QPixmap
would take the UI thread hundreds of milliseconds more. :func:`decode` reads the file in a pool
thread (with an optional ``prepare`` step, e.g. edge detection) and makes a preview of at most
:data:`PREVIEW_SIDE` pixels a side for the view; the result comes back on the UI thread."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from trainer import api

PREVIEW_SIDE = 2048


@dataclass
class Decoded:
    path: str
    image: Image.Image  # the full image, RGB (what the model gets)
    preview: np.ndarray  # uint8 HWC, at most PREVIEW_SIDE a side (what the view shows)
    prepared: Any = None  # what ``prepare`` returned


def preview_of(image: Image.Image) -> np.ndarray:
    if max(image.size) <= PREVIEW_SIDE:
        return np.asarray(image.convert("RGB"))
    small = image.copy()
    small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.BILINEAR)
    return np.asarray(small.convert("RGB"))


class _Relay(QObject):
    done = Signal(object, object)  # callback, Decoded
    failed = Signal(object, str)  # callback, message


class _Job(QRunnable):
    def __init__(self, relay, path, prepare, on_done, on_failed):
        super().__init__()
        self.relay, self.path, self.prepare, self.on_done, self.on_failed = relay, path, prepare, on_done, on_failed

    def run(self):
        try:
            image = api.open_image(self.path)
            prepared = self.prepare(image) if self.prepare else None
            self.relay.done.emit(self.on_done, Decoded(str(self.path), image, preview_of(image), prepared))
        except (ValueError, OSError) as e:  # ImageError is a ValueError: broken, huge, not an image
            self.relay.failed.emit(self.on_failed, str(e))


_relay: _Relay | None = None


def decode(path, on_done: Callable[[Decoded], None], on_failed: Callable[[str], None],
           prepare: Callable[[Image.Image], Any] | None = None) -> None:
    """Open ``path`` in a pool thread; ``on_done(Decoded)`` or ``on_failed(message)`` run later on
    the UI thread. Call from the UI thread."""
    global _relay
    if _relay is None:
        _relay = _Relay()
        _relay.done.connect(lambda fn, result: fn(result))
        _relay.failed.connect(lambda fn, message: fn(message))
    QThreadPool.globalInstance().start(_Job(_relay, path, prepare, on_done, on_failed))
