"""Training jobs as separate processes: ``python -m trainer train|resume`` started in a session
of its own, so a crash or an out-of-memory never takes the studio down and a job may outlive the
studio. The run directory is the truth (status.json, metrics.jsonl, job.log). Stop sends SIGTERM
(the job checkpoints and exits) and kills after a grace period; jobs started by another studio,
a terminal or torchrun are stopped through the pid in their status.json. A stop reaches the job's
whole process group (its data-loader workers, the process pool making a dataset) when it leads one.
What a run directory says (state, totals, log) is read by :mod:`trainer.rundir`, as the engine reads it."""
from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from trainer.rundir import checkpoint_step, pid_alive, run_pid, run_state, run_total_steps

GRACE_MS = 30_000


JOB_NICE = 10  # the priority steps below the studio's that its training jobs run at (gan-trainer --nice)


class JobManager(QObject):
    """Starts detached trainer processes (they outlive the studio if the user wants) with their
    output in ``<run>/job.log``, and tracks their pids."""
    changed = Signal(str)  # run dir

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pids: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.kill_timers: dict[str, QTimer] = {}
        self.stop_groups: dict[str, int] = {}  # the process group of a job being stopped
        self.poll = QTimer(self, interval=500)
        self.poll.timeout.connect(self._poll)
        self.poll.start()

    def start(self, preset: str, run_dir, overrides: list[str]) -> int:
        args = ["train", preset, "--run-dir", str(run_dir), "--no-progress"]
        for o in overrides:
            args += ["--set", o]
        return self._launch(run_dir, args)

    def resume(self, run_dir, total_steps: int | None = None) -> int:
        """Continue the run from its latest checkpoint to ``total_steps``, or (None) to the total it
        was configured with. A total the run has already reached is refused (ValueError): the job
        would end at once, "finished" at a step past its total."""
        name = Path(run_dir).name
        reached = checkpoint_step(run_dir)
        total = int(total_steps) if total_steps else run_total_steps(run_dir)
        if total is not None and (total < reached or (total == reached and run_state(run_dir) == "finished")):
            raise ValueError(f"{name} is at step {reached}: resuming to a total of {total} steps would train "
                             f"nothing; give a total above {reached}")
        args = ["resume", str(run_dir), "--no-progress"]
        if total_steps:
            args += ["--set", f"train.steps={int(total_steps)}"]
        return self._launch(run_dir, args)

    def _launch(self, run_dir, args) -> int:
        key = str(run_dir)
        if self.is_running(key):
            raise ValueError(f"{Path(run_dir).name} is already running")
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        # A new session: the job outlives the studio if asked to, and a Ctrl-C in the studio's
        # terminal does not reach it. It writes its own log (--log) and runs in the source tree so
        # that `-m trainer` resolves even without an installed package. (QProcess.startDetached
        # would do the same, but PySide6 6.12's binding corrupts None's reference count.)
        kwargs = {"start_new_session": True} if os.name == "posix" else \
            {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS}
        # at a lower CPU priority (--nice): on a machine of few cores the canvas and the UI stay live
        proc = subprocess.Popen([sys.executable, "-m", "trainer", "--log", str(Path(run_dir) / "job.log"),
                                 "--nice", str(JOB_NICE), *args],
                                cwd=str(Path(__file__).resolve().parents[1]), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
        self.procs[key] = proc
        pid = proc.pid
        self.pids[key] = pid
        self.changed.emit(key)
        return pid

    def _poll(self):
        for key, pid in list(self.pids.items()):
            proc = self.procs.get(key)
            if proc is not None and proc.poll() is not None:  # reaped: no zombie left
                self.procs.pop(key)
            if not pid_alive(pid):
                del self.pids[key]
                timer = self.kill_timers.pop(key, None)
                if timer:
                    timer.stop()
                group = self.stop_groups.pop(key, None)
                if group is not None:  # the job is gone: nothing of its group may outlive it
                    _signal(pid, group, signal.SIGKILL)
                self.changed.emit(key)

    def pid(self, run_dir) -> int | None:
        """Our job's pid, else the pid of a job running elsewhere on this machine (status.json)."""
        pid = self.pids.get(str(run_dir))
        if pid and pid_alive(pid):
            return pid
        return run_pid(run_dir)

    def saved_step(self, run_dir) -> int:
        """The step of the run's latest checkpoint (0: none)."""
        return checkpoint_step(run_dir)

    def is_running(self, run_dir) -> bool:
        return self.pid(run_dir) is not None

    def state(self, run_dir) -> str:
        state = run_state(run_dir)
        if state == "new" and str(run_dir) in self.pids:
            return "starting"
        if state in ("new", "running") and not self.is_running(run_dir) and (Path(run_dir) / "job.log").exists():
            return "crashed"
        return state

    def process_group(self, run_dir, pid: int) -> int | None:
        """The process group to signal for a job: the job's own (it and its helpers: data-loader
        workers, the process pool making a dataset) when the job leads one, as the jobs started
        here do (``start_new_session``); None for a pid to signal alone (a rank of torchrun, a job
        in this studio's own group)."""
        if os.name != "posix":
            return None
        proc = self.procs.get(str(run_dir))
        if proc is not None and proc.pid == pid:
            return pid
        try:
            group = os.getpgid(pid)
        except OSError:
            return None
        return group if group == pid and group != os.getpgrp() else None

    def stop(self, run_dir, grace_ms: int = GRACE_MS) -> bool:
        """SIGTERM to the job's whole process group (the job checkpoints and exits; its helper
        processes end with it), SIGKILL to what is left of the group after ``grace_ms``."""
        pid = self.pid(run_dir)
        if pid is None:
            return False
        group = self.process_group(run_dir, pid)
        _signal(pid, group, signal.SIGTERM)
        timer = QTimer(self, singleShot=True)
        timer.timeout.connect(functools.partial(_kill, pid, group))
        timer.start(grace_ms)
        self.kill_timers[str(run_dir)] = timer
        if group is not None:
            self.stop_groups[str(run_dir)] = group
        return True

    def running(self) -> list[str]:
        return [k for k in self.pids if self.is_running(k)]


def _signal(pid: int, group: int | None, sig) -> None:
    try:
        if group is not None:
            os.killpg(group, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _kill(pid: int, group: int | None = None) -> None:
    if group is not None or pid_alive(pid):
        _signal(pid, group, signal.SIGKILL)
