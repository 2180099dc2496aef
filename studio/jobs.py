"""Training jobs as separate processes: ``python -m trainer train|resume`` started in a session
of its own, so a crash or an out-of-memory never takes the studio down and a job may outlive the
studio. The run directory is the truth (status.json, metrics.jsonl, job.log). Stop sends SIGTERM
(the job checkpoints and exits) and kills after a grace period; jobs started by another studio,
a terminal or torchrun are stopped through the pid in their status.json."""
from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

GRACE_MS = 30_000


def read_status(run_dir) -> dict:
    try:
        return json.loads((Path(run_dir) / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_state(run_dir) -> str:
    """running, finished, stopped, failed, crashed (running but its process is gone), or new."""
    s = read_status(run_dir)
    state = s.get("state", "new")
    if state == "running" and s.get("host") == socket.gethostname() and not pid_alive(s.get("pid")):
        return "crashed"
    return state


def log_tail(run_dir, n: int = 20) -> list[str]:
    """The last lines of the job's output (``job.log`` in its run directory)."""
    try:
        data = (Path(run_dir) / "job.log").read_bytes()[-20000:]
    except OSError:
        return []
    lines = [ln for ln in data.decode(errors="replace").replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-n:]


class JobManager(QObject):
    """Starts detached trainer processes (they outlive the studio if the user wants) with their
    output in ``<run>/job.log``, and tracks their pids."""
    changed = Signal(str)  # run dir

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pids: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.kill_timers: dict[str, QTimer] = {}
        self.poll = QTimer(self, interval=500)
        self.poll.timeout.connect(self._poll)
        self.poll.start()

    def start(self, preset: str, run_dir, overrides: list[str]) -> int:
        args = ["train", preset, "--run-dir", str(run_dir), "--no-progress"]
        for o in overrides:
            args += ["--set", o]
        return self._launch(run_dir, args)

    def resume(self, run_dir, total_steps: int | None = None) -> int:
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
        proc = subprocess.Popen([sys.executable, "-m", "trainer", "--log", str(Path(run_dir) / "job.log"), *args],
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
                self.changed.emit(key)

    def pid(self, run_dir) -> int | None:
        """Our job's pid, else the pid of a job running elsewhere on this machine (status.json)."""
        pid = self.pids.get(str(run_dir))
        if pid and pid_alive(pid):
            return pid
        s = read_status(run_dir)
        if s.get("state") == "running" and s.get("host") == socket.gethostname() and pid_alive(s.get("pid")):
            return s["pid"]
        return None

    def is_running(self, run_dir) -> bool:
        return self.pid(run_dir) is not None

    def state(self, run_dir) -> str:
        state = run_state(run_dir)
        if state == "new" and str(run_dir) in self.pids:
            return "starting"
        if state in ("new", "running") and not self.is_running(run_dir) and (Path(run_dir) / "job.log").exists():
            return "crashed"
        return state

    def stop(self, run_dir, grace_ms: int = GRACE_MS) -> bool:
        """SIGTERM (the job checkpoints and exits), SIGKILL if still alive after ``grace_ms``."""
        pid = self.pid(run_dir)
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        timer = QTimer(self, singleShot=True)
        timer.timeout.connect(functools.partial(_kill, pid))
        timer.start(grace_ms)
        self.kill_timers[str(run_dir)] = timer
        return True

    def running(self) -> list[str]:
        return [k for k in self.pids if self.is_running(k)]


def _kill(pid: int) -> None:
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
