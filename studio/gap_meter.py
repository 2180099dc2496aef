"""How long the UI thread's event loop went without running a 5 ms timer: the measure of a
blocked UI (used by the tests and bench/studio_latency.py)."""
from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QTimer


class GapMeter:
    def __init__(self, interval_ms: int = 5):
        self.gaps: list[int] = []
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.last = 0

    def start(self) -> "GapMeter":
        self.clock.start()
        self.last = 0
        self.timer.start()
        return self

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = self.clock.elapsed()
        self.gaps.append(now - self.last)
        self.last = now

    @property
    def worst(self) -> int:
        return max(self.gaps, default=0)
