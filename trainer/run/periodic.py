"""The work done every so many steps, on rank 0: a sample grid every ``train.sample_every`` steps
(and at the last), a metrics line and the status every ``train.log_every`` (and at the last), a
checkpoint every ``train.checkpoint_every``; and the terminal progress bar on every step."""
from __future__ import annotations

import time

import torch

from trainer.metrics import mean_pairwise_distance
from trainer.progress import Progress
from trainer.run.checkpoints import save_checkpoint
from trainer.run.job import Job
from trainer.run.step import StepResult


def memory_status(device: torch.device) -> dict:
    """GPU name and memory in MiB (allocated, peak, total) for the monitor; empty off CUDA (the
    studio reads process memory on the CPU itself)."""
    if device.type != "cuda":
        return {}
    return {"gpu": torch.cuda.get_device_name(device),
            "gpu_memory_mb": round(torch.cuda.memory_allocated(device) / 2 ** 20),
            "gpu_memory_peak_mb": round(torch.cuda.max_memory_allocated(device) / 2 ** 20),
            "gpu_memory_total_mb": round(torch.cuda.get_device_properties(device).total_memory / 2 ** 20)}


def format_losses(values: dict) -> str:
    """Losses for the progress bar: ``NAME VALUE`` pairs, three significant digits."""
    return " ".join(f"{k} {v:.3g}" for k, v in values.items())


class PeriodicWork:
    """The job's samples, metrics, status, checkpoints and progress bar (``progress``: show it).

    Each metrics line (``metrics.jsonl``) holds ``step``, ``time`` (Unix seconds), ``elapsed``
    (training seconds of the run), each loss averaged over the steps since the last line (over the
    steps that gave it), ``it_s`` (steps a second over them), the learning rates of the logged
    step, and ``sample_diversity`` when a sample grid was made since the last line."""

    def __init__(self, job: Job, progress: bool):
        self.job = job
        cfg = job.cfg
        self.bar = Progress(cfg.train.steps, start=job.step, desc="train", enabled=progress and job.is_main)
        self.window: dict[str, tuple[float, int]] = {}  # loss -> (sum, count) since the last metrics line
        self.window_n, self.window_t = 0, time.perf_counter()
        self.extra: dict[str, float] = {}  # logged with the next metrics line

    def after_step(self, result: StepResult) -> None:
        """Count the step's losses, then the sample and the metrics line and status when due, and
        advance the progress bar."""
        job, every = self.job, self.job.cfg.train
        step, last = job.step, job.step == every.steps
        for k, v in result.losses.items():  # some losses come every n_critic steps only
            total, count = self.window.get(k, (0.0, 0))
            self.window[k] = (total + v, count + 1)
        self.window_n += 1
        if job.is_main and every.sample_every > 0 and (step % every.sample_every == 0 or last):
            self.sample()
        if step % every.log_every == 0 or last:
            self.log(result.learning_rates)
        self.bar.update(1)

    def sample(self) -> None:
        """Save the sample grid of the preview batch as ``samples/step-N.png``; the diversity of
        its generated part (mean pairwise distance) goes with the next metrics line."""
        job = self.job
        method = job.method
        job.rd.save_sample(method.sample(job.preview), job.step)
        outputs = method.sample_outputs()  # the generated part of the grid, or None
        if outputs is not None:
            self.extra["sample_diversity"] = mean_pairwise_distance(outputs)

    def log(self, lrs: dict[str, float]) -> None:
        """Rank 0: a metrics line and the status (step, rate, ETA and elapsed in seconds, GPU
        memory); every rank: the losses on the progress bar. Starts a new averaging window."""
        job = self.job
        now = time.perf_counter()
        avg = {k: total / count for k, (total, count) in self.window.items()}
        rate = self.window_n / max(now - self.window_t, 1e-9)
        if job.is_main:
            job.rd.append_metrics({"step": job.step, "time": time.time(), "elapsed": round(job.elapsed(), 3),
                                   **avg, "it_s": rate, **lrs, **self.extra})
            self.extra = {}
            eta = (job.cfg.train.steps - job.step) / rate if rate > 0 else None
            job.rd.write_status(state="running", step=job.step, it_s=rate, eta_s=eta, elapsed=job.elapsed(),
                                message="", **memory_status(job.device))
        self.bar.update(0, postfix=format_losses(avg))
        self.window, self.window_n, self.window_t = {}, 0, now

    def checkpoint_if_due(self) -> None:
        """Rank 0: a checkpoint every ``train.checkpoint_every`` steps (0: none until the end); the
        status says its step at once (a job killed before the next log line shows what it kept)."""
        job = self.job
        every = job.cfg.train.checkpoint_every
        if job.is_main and every > 0 and job.step % every == 0:
            save_checkpoint(job.rd, job.method, job.step, job.cfg.train.keep_checkpoints, job.elapsed())
            job.last_checkpoint = job.step
            job.rd.write_status(step=job.step, elapsed=job.elapsed())

    def close(self) -> None:
        """End the progress bar's line."""
        self.bar.close()
