"""A terminal progress bar: count, rate, ETA and a short status (the latest losses).

On a terminal it redraws one line; elsewhere (a log file, the studio) it prints a plain line
at most every ``min_interval`` seconds, so logs stay readable.
"""
from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    def __init__(self, total: int, start: int = 0, desc: str = "", stream=None, min_interval: float | None = None,
                 unit: str = "it", enabled: bool = True):
        self.total, self.n, self.start, self.desc, self.unit = total, start, start, desc, unit
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.min_interval = min_interval if min_interval is not None else (0.2 if self.tty else 10.0)
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.last_draw = 0.0
        self.postfix = ""

    @property
    def rate(self) -> float:
        dt = time.perf_counter() - self.t0
        return (self.n - self.start) / dt if dt > 0 else 0.0

    def line(self) -> str:
        frac = self.n / self.total if self.total else 1.0
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        rate = self.rate
        eta = (self.total - self.n) / rate if rate > 0 else float("inf")
        rate_text = f"{rate:.2f} {self.unit}/s" if rate >= 1 or rate == 0 else f"{1 / rate:.2f} s/{self.unit}"
        text = (f"{self.desc + ' ' if self.desc else ''}{self.n}/{self.total} [{bar}] {frac * 100:3.0f}% "
                f"{rate_text} ETA {format_duration(eta)}")
        return text + (f" | {self.postfix}" if self.postfix else "")

    def update(self, n: int = 1, postfix: str | None = None, force: bool = False) -> None:
        self.n += n
        if postfix is not None:
            self.postfix = postfix
        now = time.perf_counter()
        if self.enabled and (force or self.n >= self.total or now - self.last_draw >= self.min_interval):
            self.last_draw = now
            if self.tty:
                self.stream.write("\r" + self.line()[:200] + "\033[K")
            else:
                self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
