"""Stopping a job by signal: SIGTERM (the studio's Stop, ``kill``) or SIGINT (Ctrl-C).

The semantics, counted in signals received:

1. while the job is still starting (making its dataset, loading a checkpoint) it stops at once:
   the handler raises :class:`StopRequested`; while training, the current step ends, a checkpoint
   is saved and the job stops (the loop reads :attr:`StopSignals.requested`);
2. a second signal only says that it is saving;
3. a third raises :class:`KeyboardInterrupt`: it quits at once, without the final checkpoint (the
   last one written stays).

A stop that came while the program was still importing torch (remembered by
:func:`trainer.rundir.catch_early_stop`) counts as the first signal.
"""
from __future__ import annotations

import os
import signal
from typing import Callable

from trainer.rundir import early_stop_signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequested(BaseException):
    """Raised by the signal handler while a job is still starting (making its dataset, loading a
    checkpoint): there is nothing to checkpoint yet, so it stops at once. A BaseException, so that
    no ``except Exception`` on the way swallows it."""


class StopSignals:
    """The job's SIGTERM / SIGINT handler and what it has been asked so far.

    ``requested``: a stop was asked (by a signal, or before the job began); ``count``: signals
    received; ``starting``: the job is still setting up (a signal then stops it at once).
    ``say`` prints the handler's messages (rank 0's log; a no-op on other ranks)."""

    def __init__(self, say: Callable[[str], object]):
        self.say = say
        self.requested = False
        self.count = 0
        self.starting = True
        self._main_pid = os.getpid()
        self._old_handlers: dict = {}

    def install(self) -> None:
        """Handle SIGTERM and SIGINT from now on (the old handlers are kept for :meth:`restore`),
        and count a stop that came while the program was still loading as the first signal."""
        self._old_handlers = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}
        if early_stop_signal() is not None:
            self.requested, self.count = True, 1

    def restore(self) -> None:
        """Put back the handlers that :meth:`install` replaced."""
        for s, handler in self._old_handlers.items():
            signal.signal(s, handler)
        self._old_handlers = {}

    def training_begins(self) -> bool:
        """The job is past its set-up: a signal from now on ends the current step and checkpoints.
        Returns whether a stop was already asked (after the point of stopping at once)."""
        self.starting = False
        return self.requested

    def _on_signal(self, signum: int, frame) -> None:
        """Raises :class:`StopRequested` on the first signal while starting, ``KeyboardInterrupt``
        on the third; otherwise records the request and says what happens next."""
        if os.getpid() != self._main_pid:  # a forked worker (the dataset's process pool): the main process decides
            return
        self.count += 1
        name = signal.Signals(signum).name
        if self.count == 1:
            self.requested = True
            if self.starting:
                self.say(f"\n{name} received while starting: stopping")
                raise StopRequested(name)
            self.say(f"\n{name} received: saving a checkpoint and stopping")
        elif self.count == 2:
            self.say(f"\n{name} received again: finishing the checkpoint, then exiting "
                     "(once more quits at once, without it)")
        else:
            raise KeyboardInterrupt
