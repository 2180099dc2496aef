"""The run directory: a training job's whole state on disk (DESIGN.md, "run directory").

Written only by the job (rank 0), read by anyone: the studio, ``gan-trainer resume``,
``export``. The readers at the end of this module (:func:`read_status`, :func:`run_state`,
:func:`run_total_steps`, :func:`run_method`, :func:`checkpoint_step`, :func:`data_stage`,
:func:`log_tail`, :class:`MetricsReader`) are the one way to read a run from outside, from this
process or another, running or not; a missing or damaged file reads as "not there yet".

Every file is replaced atomically (temp file, fsync, rename); metrics are appended one whole line
at a time, and a reader tolerates a half-written last line.

Everything in it is read as untrusted: a line or a status that is not UTF-8 or not JSON is
skipped with a warning naming the file and the line, never an exception. A checkpoint is a
folder ``checkpoints/step-NNNNNN/`` written as ``.incomplete-*`` and renamed into place once
whole; its ``meta.json`` (written last) holds the size and SHA-256 of each file, so a truncated
or altered checkpoint is found before it is loaded. Old checkpoints are pruned by renaming them
to ``.pruning-*`` first, so a kill while pruning never leaves a half-deleted ``step-N`` that looks
whole; :meth:`RunDir.clean` removes such leftovers when the next job starts.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

CHECKPOINT_FILES = ("nets.safetensors", "state.pt")


from trainer.errors import CheckpointError, DiskFullError  # noqa: E402  (re-exported)


def is_disk_full(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def write_bytes(fd: int, data: bytes, path) -> None:
    """All of ``data`` to ``fd`` (the one place the run directory's files are written: a test
    replaces it to simulate a full disk). ``path`` names the file, for errors."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _disk_full(path, e: OSError, what: str | None = None) -> DiskFullError:
    return DiskFullError(f"disk full while writing {what or path}: nothing was half-written; free some space "
                         f"on the disk ({e.strerror or 'no space left'})")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, data: bytes | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would keep the file from other users
        try:
            write_bytes(fd, data.encode() if isinstance(data, str) else data, path)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as e:
        with _suppress():
            os.unlink(tmp)
        if is_disk_full(e) and not isinstance(e, DiskFullError):
            raise _disk_full(path, e) from e
        raise


def write_file(path, data: bytes) -> dict:
    """Write ``data`` to a new file (inside a folder that is renamed into place when whole) and
    fsync it; returns its size and SHA-256 for ``meta.json``."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_bytes(fd, data, path)
        os.fsync(fd)
    finally:
        os.close(fd)
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def file_digest(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return True


def _describe_bad_line(line: bytes, e: Exception) -> str:
    if isinstance(e, UnicodeDecodeError):
        bad = line[e.start:e.end][:8]
        return f"bytes that are not UTF-8 ({bad.hex(' ')} at column {e.start + 1})"
    return f"not JSON ({getattr(e, 'msg', e)})"


def read_jsonl(path, start: int = 0, warn=None) -> tuple[list[dict], int]:
    """Complete JSON lines of ``path`` from byte offset ``start``; returns (records, new offset).
    A last line without its newline (being written) is left for the next read. A line that is not
    UTF-8, not JSON or not an object is skipped; ``warn(text)`` hears of it, with the file and the
    line (counted from ``start``)."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return [], start
    end = data.rfind(b"\n") + 1
    records = []
    for number, line in enumerate(data[:end].split(b"\n"), 1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except ValueError as e:  # UnicodeDecodeError, JSONDecodeError: a torn or damaged line
            if warn:
                where = f"line {number}" if start == 0 else f"line {number} after byte {start}"
                warn(f"{path} {where}: {_describe_bad_line(line, e)}; skipped")
            continue
        if not isinstance(record, dict):
            if warn:
                warn(f"{path} line {number}: a JSON {type(record).__name__}, not a record; skipped")
            continue
        records.append(record)
    return records, start + end


def read_json_file(path, warn=None) -> dict:
    """A JSON object file (status.json, meta.json) read as untrusted: lines that are not UTF-8
    are skipped (``warn`` names the file and the line); anything else unreadable gives {}."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        if warn:
            warn(f"{path}: unreadable ({e.strerror or e}); ignored")
        return {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        kept = []
        for number, line in enumerate(data.split(b"\n"), 1):
            try:
                kept.append(line.decode("utf-8"))
            except UnicodeDecodeError as e:
                if warn:
                    warn(f"{path} line {number}: {_describe_bad_line(line, e)}; skipped")
        text = "\n".join(kept)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:
        if text.strip() and warn:
            warn(f"{path}: not valid JSON ({getattr(e, 'msg', e)}, line {getattr(e, 'lineno', '?')}); ignored")
        return {}
    if not isinstance(value, dict):
        if warn:
            warn(f"{path}: a JSON {type(value).__name__}, not an object; ignored")
        return {}
    return value


# -- a stop asked for before the run loop has its own handlers

_early = {"signal": None}


@contextlib.contextmanager
def catch_early_stop():
    """Within the block (``gan-trainer train`` / ``resume`` from their start, before torch is
    imported, which takes seconds): SIGTERM or SIGINT is remembered instead of killing the process,
    and the run loop, once it has its own handlers, stops at once with status "stopped" (see
    :func:`early_stop_signal`). The handlers before are restored at the end."""
    def remember(signum, frame):
        _early["signal"] = signum
    before = {s: signal.signal(s, remember) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        _early["signal"] = None
        for s, h in before.items():
            signal.signal(s, h)


def early_stop_signal() -> int | None:
    """The signal :func:`catch_early_stop` caught, if any (cleared by reading it)."""
    s, _early["signal"] = _early["signal"], None
    return s


_TEMP_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}$")  # atomic_write's temporary files (tempfile.mkstemp)


class RunDir:
    def __init__(self, path, log=None):
        self.path = Path(path)
        self.log = log
        self._warned: set[str] = set()

    # paths
    config_path = property(lambda self: self.path / "config.toml")
    status_path = property(lambda self: self.path / "status.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    samples_dir = property(lambda self: self.path / "samples")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    model_path = property(lambda self: self.path / "model.safetensors")

    def exists(self) -> bool:
        return self.config_path.is_file()

    def warn(self, text: str) -> None:
        """Tell ``log`` once about a damaged file or line."""
        if text not in self._warned:
            self._warned.add(text)
            if self.log:
                self.log(f"warning: {text}")

    # status
    def read_status(self) -> dict:
        return read_json_file(self.status_path, self.warn)

    def write_status(self, **fields) -> dict:
        """Merge ``fields`` into status.json (atomically); a field given as None is removed (the
        dataset's image counts once training starts). Returns the status written."""
        status = self.read_status()
        status.update(fields)
        status = {k: v for k, v in status.items() if v is not None}
        status.setdefault("started", time.time())
        status["updated"] = time.time()
        status["pid"] = os.getpid()
        status["host"] = socket.gethostname()
        status["folder"] = str(self.path.resolve())  # a copied run's status names the original's job
        atomic_write(self.status_path, json.dumps(status, indent=1))
        return status

    # metrics
    def append_metrics(self, record: dict) -> None:
        """One whole line or nothing: a failed write (a full disk) is cut back off the file."""
        line = (json.dumps(record, allow_nan=True) + "\n").encode()
        fd = os.open(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            try:
                write_bytes(fd, line, self.metrics_path)
            except OSError as e:
                with _suppress():
                    os.ftruncate(fd, size)
                if is_disk_full(e):
                    raise _disk_full(self.metrics_path, e, f"{self.metrics_path} (the metrics of step "
                                     f"{record.get('step', '?')})") from e
                raise
        finally:
            os.close(fd)

    def read_metrics(self) -> list[dict]:
        return read_jsonl(self.metrics_path, warn=self.warn)[0]

    def truncate_metrics(self, last_step: int) -> None:
        """Keep the records up to ``last_step`` (those logged after the checkpoint a resume starts
        from, or all with no checkpoint, would be logged again); damaged lines go too."""
        if not self.metrics_path.exists():
            return
        kept = [r for r in self.read_metrics()
                if isinstance(r.get("step"), (int, float)) and r["step"] <= last_step]
        atomic_write(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))

    # samples
    def sample_path(self, step: int) -> Path:
        return self.samples_dir / f"step-{step:06d}.png"

    def save_sample(self, image, step: int) -> Path:
        import io
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        path = self.sample_path(step)
        atomic_write(path, buf.getvalue())
        return path

    def samples(self) -> list[tuple[int, Path]]:
        out = []
        for p in self.samples_dir.glob("step-*.png"):
            try:
                out.append((int(p.stem.split("-")[1]), p))
            except ValueError:
                pass
        return sorted(out)

    # checkpoints
    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints_dir / f"step-{step:06d}"

    def checkpoints(self) -> list[tuple[int, Path]]:
        out = []
        for p in self.checkpoints_dir.glob("step-*"):
            if p.is_dir() and (p / "meta.json").is_file():  # meta.json is written last
                try:
                    out.append((int(p.name.split("-")[1]), p))
                except ValueError:
                    pass
        return sorted(out)

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        """The newest complete checkpoint (cheap: not verified; see :meth:`valid_checkpoints`)."""
        found = self.checkpoints()
        return found[-1] if found else None

    def checkpoint_meta(self, path) -> dict:
        return read_json_file(Path(path) / "meta.json", self.warn)

    def verify_checkpoint(self, path) -> str | None:
        """None for a checkpoint whose files are all there with the sizes and checksums its
        meta.json recorded; else what is wrong. (Checkpoints written before checksums were
        stored are checked for their files only.)"""
        path = Path(path)
        meta_path = path / "meta.json"
        problems = []
        meta = read_json_file(meta_path, problems.append)
        if not meta or not isinstance(meta.get("step"), int):
            return f"{meta_path}: " + ("; ".join(problems) if problems else "no step recorded")
        files = meta.get("files")
        for name in CHECKPOINT_FILES:
            f = path / name
            if not f.is_file():
                return f"{f.name} is missing"
            if not isinstance(files, dict):
                continue
            want = files.get(name)
            if not isinstance(want, dict):
                return f"meta.json has no checksum of {name}"
            size = f.stat().st_size
            if size != want.get("size"):
                return f"{name} is {size:,} bytes, {want.get('size')!r} were written (truncated or damaged)"
            if file_digest(f) != want.get("sha256"):
                return f"{name} does not match its checksum (damaged after it was written)"
        return None

    def set_aside(self, path) -> Path:
        """Move a damaged checkpoint out of the way (``damaged-step-N``), kept for a look."""
        path = Path(path)
        target = path.with_name(f"damaged-{path.name}")
        k = 1
        while target.exists():
            k += 1
            target = path.with_name(f"damaged-{path.name}-{k}")
        os.replace(path, target)
        return target

    def _discard(self, path: Path) -> None:
        """Delete a checkpoint folder so that no half-deleted one keeps its name: rename, then delete."""
        trash = path.with_name(f".pruning-{path.name}")
        if trash.exists():
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def commit_checkpoint(self, tmp_dir: Path, step: int, keep: int) -> Path:
        """Move a fully written checkpoint folder into place, then keep only the last ``keep``."""
        final = self.checkpoint_path(step)
        if final.exists():
            self._discard(final)
        os.replace(tmp_dir, final)
        _fsync_dir(self.checkpoints_dir)
        for _, old in self.checkpoints()[:-keep] if keep > 0 else []:
            self._discard(old)
        return final

    def new_checkpoint_dir(self) -> Path:
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".incomplete-", dir=self.checkpoints_dir))

    def leftovers(self) -> list[Path]:
        """What a killed job leaves behind: ``.incomplete-*`` and ``.pruning-*`` checkpoint folders,
        ``step-N`` folders without meta.json (torn while written or deleted), and the temporary
        files of atomic writes."""
        out = []
        if self.checkpoints_dir.is_dir():
            for p in self.checkpoints_dir.iterdir():
                if p.name.startswith((".incomplete-", ".pruning-")) or (
                        p.name.startswith("step-") and p.is_dir() and not (p / "meta.json").is_file()):
                    out.append(p)
        for folder in (self.path, self.samples_dir):
            if folder.is_dir():
                out += [p for p in folder.iterdir() if _TEMP_FILE.match(p.name) and p.is_file()]
        return sorted(out)

    def clean(self) -> list[Path]:
        """Remove :meth:`leftovers` (a job starting in this run directory calls it); returns them."""
        found = self.leftovers()
        for p in found:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with _suppress():
                    p.unlink()
        return found


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    with _suppress():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- reading a run from outside (the studio's Train page, a monitor): never an exception

def read_status(run_dir) -> dict:
    """``RUN_DIR/status.json`` as a dict; a damaged one gives what can be read of it (a line that
    is not UTF-8 is skipped), a missing or unreadable one {}."""
    return read_json_file(Path(run_dir) / "status.json")


def pid_alive(pid) -> bool:
    """Whether a process ``pid`` (an int > 0) exists on this machine (one of another user counts)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started, in seconds since the epoch (Linux's /proc; None elsewhere or
    when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime, in clock ticks after boot
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _job_alive(s: dict, run_dir) -> bool:
    """Whether the process of a status's job is alive: the status was written in ``run_dir`` (not
    copied there from a run that trains elsewhere), its pid exists and, where the start time can be
    read, did not start after the job's status (a pid the system has since reused)."""
    pid = s.get("pid")
    folder = s.get("folder")
    if not pid_alive(pid) or (isinstance(folder, str) and folder != str(Path(run_dir).resolve())):
        return False
    started, born = s.get("started"), process_start_time(pid)
    return not (isinstance(started, (int, float)) and born is not None and born > started + 5)


def run_state(run_dir) -> str:
    """The run's state from its status: "running", "finished", "stopped", "failed", "new" (no
    status yet), or "crashed" (its status says running on this host, but its process is gone)."""
    s = read_status(run_dir)
    state = s.get("state", "new")
    if state == "running" and s.get("host") == socket.gethostname() and not _job_alive(s, run_dir):
        return "crashed"
    return state


def run_pid(run_dir) -> int | None:
    """The pid of the run's job when its status says it runs on this host and that process is alive."""
    s = read_status(run_dir)
    if s.get("state") == "running" and s.get("host") == socket.gethostname() and _job_alive(s, run_dir):
        return s["pid"]
    return None


def run_config(run_dir) -> dict:
    """A run folder's config.toml as a dict ({} when it is missing or unreadable)."""
    import tomllib
    try:
        return tomllib.loads((Path(run_dir) / "config.toml").read_text())
    except (OSError, ValueError):  # missing, unreadable, not UTF-8, not TOML
        return {}


def run_total_steps(run_dir) -> int | None:
    """The total (steps, > 0) a run trains to: its status's ``total_steps`` (what the job runs to
    now), else its config.toml's ``train.steps`` (written before the status), else None."""
    total = read_status(run_dir).get("total_steps")
    if isinstance(total, int) and total > 0:
        return total
    train = run_config(run_dir).get("train")
    total = train.get("steps") if isinstance(train, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) and total > 0 else None


def run_method(run_dir) -> str:
    """The method a run trains (its status's ``method``, else its config.toml's), "" if neither says."""
    method = read_status(run_dir).get("method") or run_config(run_dir).get("method")
    return method if isinstance(method, str) else ""


def checkpoint_step(run_dir) -> int:
    """The step of the run's latest complete checkpoint (where a resume starts), 0 if none."""
    found = RunDir(run_dir).latest_checkpoint()
    return found[0] if found else 0


def data_stage(status: dict) -> tuple[int, int] | None:
    """(done, total), 0 <= done <= total, while the job makes its procedural dataset (status
    ``stage`` "dataset" with ``stage_done`` / ``stage_total`` images), else None."""
    if status.get("stage") != "dataset":
        return None
    done, total = status.get("stage_done"), status.get("stage_total")
    if not isinstance(done, int) or not isinstance(total, int) or total <= 0:
        return None
    return max(0, min(done, total)), total


def log_tail(run_dir, n: int = 20) -> list[str]:
    """The last ``n`` non-blank lines of the job's output (``RUN_DIR/job.log``, its last 20,000
    bytes; carriage returns end lines, bytes that are not UTF-8 are replaced); [] without a log."""
    try:
        with open(Path(run_dir) / "job.log", "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 20000))
            data = f.read()
    except OSError:
        return []
    lines = [ln for ln in data.decode(errors="replace").replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-n:]


class Series:
    """One logged key's points as float64 numpy arrays ``step``, ``time`` (seconds since the epoch,
    NaN where not logged) and ``value``; the buffers grow by doubling and nothing is dropped."""

    def __init__(self):
        import numpy as np
        self.n = 0
        self._step = np.empty(1024)
        self._time = np.empty(1024)
        self._value = np.empty(1024)

    def append(self, step, t, value):
        if self.n == len(self._step):
            import numpy as np
            for name in ("_step", "_time", "_value"):
                arr = getattr(self, name)
                grown = np.empty(2 * len(arr))
                grown[:self.n] = arr[:self.n]
                setattr(self, name, grown)
        self._step[self.n], self._time[self.n], self._value[self.n] = step, t, value
        self.n += 1

    @property
    def step(self):
        return self._step[:self.n]

    @property
    def time(self):
        return self._time[:self.n]

    @property
    def value(self):
        return self._value[:self.n]


NOT_CURVES = frozenset({"step", "time", "elapsed"})  # logged with every record, never a curve


class MetricsReader:
    """``RUN_DIR/metrics.jsonl`` read incrementally into a :class:`Series` per numeric key (bools and
    the keys of :data:`NOT_CURVES` left out). :meth:`poll` reads what was appended since the last
    call, through :func:`read_jsonl`: a half-written last line waits for its end, a damaged line
    is skipped and counted (``skipped``), and a file that shrank (a resume cut it back) is read
    again from the start."""

    def __init__(self, path):
        self.path = Path(path)
        self.offset = 0
        self.series: dict[str, Series] = {}
        self.records = 0
        self.skipped = 0

    def reset(self):
        self.offset, self.series, self.records, self.skipped = 0, {}, 0, 0

    def poll(self) -> int:
        """The number of new complete records read (0 when nothing changed)."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return 0
        if size < self.offset:
            self.reset()
        if size == self.offset:
            return 0
        bad = []
        try:
            records, self.offset = read_jsonl(self.path, self.offset, warn=bad.append)
        except OSError:  # unreadable for now (permissions, a network folder gone): the next poll tries again
            return 0
        self.skipped += len(bad)
        for rec in records:
            self.add(rec)
        return len(records)

    def add(self, rec: dict) -> None:
        step, t = rec.get("step"), rec.get("time", math.nan)
        if not isinstance(step, (int, float)) or isinstance(step, bool):
            return
        if not isinstance(t, (int, float)) or isinstance(t, bool):
            t = math.nan
        self.records += 1
        for k, v in rec.items():
            if k in NOT_CURVES or not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            self.series.setdefault(k, Series()).append(step, t, float(v))
