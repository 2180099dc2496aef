"""The run directory: a training job's whole state on disk (DESIGN.md, "run directory").

Written only by the job (rank 0), read by anyone: the studio, ``gan-trainer resume``,
``export``. Every file is replaced atomically (temp file, fsync, rename); metrics are
appended one whole line at a time, and a reader tolerates a half-written last line.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

def atomic_write(path, data: bytes | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return True


def read_jsonl(path, start: int = 0) -> tuple[list[dict], int]:
    """Complete JSON lines of ``path`` from byte offset ``start``; returns (records, new offset).
    A last line without its newline (being written) is left for the next read."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return [], start
    end = data.rfind(b"\n") + 1
    records = []
    for line in data[:end].splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a crash mid-write
    return records, start + end


class RunDir:
    def __init__(self, path):
        self.path = Path(path)

    # paths
    config_path = property(lambda self: self.path / "config.toml")
    status_path = property(lambda self: self.path / "status.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    samples_dir = property(lambda self: self.path / "samples")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    model_path = property(lambda self: self.path / "model.safetensors")

    def exists(self) -> bool:
        return self.config_path.is_file()

    # status
    def read_status(self) -> dict:
        try:
            return json.loads(self.status_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def write_status(self, **fields) -> dict:
        status = self.read_status()
        status.update(fields)
        status.setdefault("started", time.time())
        status["updated"] = time.time()
        status["pid"] = os.getpid()
        status["host"] = socket.gethostname()
        atomic_write(self.status_path, json.dumps(status, indent=1))
        return status

    # metrics
    def append_metrics(self, record: dict) -> None:
        line = (json.dumps(record, allow_nan=True) + "\n").encode()
        fd = os.open(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def read_metrics(self) -> list[dict]:
        return read_jsonl(self.metrics_path)[0]

    def truncate_metrics(self, last_step: int) -> None:
        """Drop records after ``last_step`` (logged after the checkpoint a resume starts from)."""
        if not self.metrics_path.exists():
            return
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= last_step]
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
        return sorted((int(p.stem.split("-")[1]), p) for p in self.samples_dir.glob("step-*.png"))

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
        found = self.checkpoints()
        return found[-1] if found else None

    def commit_checkpoint(self, tmp_dir: Path, step: int, keep: int) -> Path:
        """Move a fully written checkpoint folder into place, then keep only the last ``keep``."""
        final = self.checkpoint_path(step)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp_dir, final)
        for _, old in self.checkpoints()[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def new_checkpoint_dir(self) -> Path:
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".incomplete-", dir=self.checkpoints_dir))
