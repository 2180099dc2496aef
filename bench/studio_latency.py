"""Studio latency on the bundled sketch2photo: a scripted drawing session on the Sketch page,
printing, per inference precision and thread count, the time from a stroke's end to its photo on
screen (p50 and p95), the inference time per render, and the UI thread's longest gap, idle and
while a 128 px training job runs beside it (the studio's goals on 2 cores: p95 <= 50 ms idle,
<= 150 ms beside a job; no UI-thread gap over 50 ms).

    python bench/studio_latency.py [--model assets/models/sketch2photo.safetensors]
                                   [--threads 1,2] [--precisions auto,fp32] [--strokes 20] [--no-job]

Precisions are the Preferences' inference precision (auto: bf16 where the CPU computes it); each
figure's line names the one the model ran in. With the inference times (wall) goes each render's
CPU time on its lane's thread, the robust figure on a machine busy with other work.

"Idle" means no job of this bench's; other processes on the machine are not stopped (the load
average printed with each figure says how busy the machine was). The training job is
``gan-trainer train pix2pix-sketches`` at 128 px on a small procedural set, with PyTorch's default
threads and the Train page's lower priority (``--nice``, studio.jobs.JOB_NICE), as a user would
start it from the Train page.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def start_job(folder: Path) -> subprocess.Popen:
    """A 128 px pix2pix job beside the studio; returns once it is training (past the dataset build)."""
    run = folder / "job"
    from studio.jobs import JOB_NICE
    proc = subprocess.Popen([sys.executable, "-m", "trainer", "--nice", str(JOB_NICE), "train", "pix2pix-sketches",
                             "--run-dir", str(run),
                             "--no-progress", "--set", "train.steps=1000000", "--set", "data.image_size=128",
                             "--set", "data.synth_n=200", "--set", "train.sample_every=0",
                             "--set", "train.checkpoint_every=1000000"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "GAN_STUDIO_CACHE": str(folder / "cache")}, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and not (run / "metrics.jsonl").is_file():
        if proc.poll() is not None:
            raise SystemExit(f"the training job exited with {proc.returncode}")
        time.sleep(0.5)
    return proc


LANE_CPU: list[float] = []  # the CPU time (thread_time) of each render on its lane's thread


def time_lane_renders() -> None:
    """Record each render's CPU time on its lane's thread: on a busy machine the work itself, whatever
    share of the cores the scheduler gave (wall times there measure the other work too)."""
    from studio.workers import _Lane
    render = _Lane._render

    def timed(self, req):
        start = time.thread_time()
        try:
            return render(self, req)
        finally:
            LANE_CPU.append(time.thread_time() - start)
    _Lane._render = timed


def draw_session(app, page, strokes: int):
    """Strokes of 30 mouse moves ~8 ms apart; returns (stroke end -> on screen, inference times, UI gaps).

    Between events the UI thread waits in Qt's event loop, as the studio's does (it sleeps in C++ until
    an event comes), not in a Python loop: a loop that polls every 0.5 ms takes the interpreter's lock
    2,000 times a second from the inference threads, which the studio never does (it added 2-5 ms
    to each figure here, 2026-11-30). A photo is on screen when the page has shown the render of the
    stroke's end and nothing it asked for is pending (the out-of-domain check included)."""
    from PySide6.QtCore import QEventLoop, QPointF, Qt, QTimer

    from studio.gap_meter import GapMeter

    def wait(seconds, until=None):
        """The event loop for ``seconds``, or until ``until()`` holds after a render arrives."""
        loop = QEventLoop()
        QTimer.singleShot(max(0, int(seconds * 1000)), loop.quit)
        if until is not None:
            def check(*_):
                if until():
                    loop.quit()
            page.worker.rendered.connect(check, Qt.QueuedConnection)  # after the page's own slot
        try:
            if until is None or not until():
                loop.exec()
        finally:
            if until is not None:
                page.worker.rendered.disconnect(check)

    infer = []
    page.timing.connect(infer.append)
    c = page.canvas
    c.clear()
    wait(0.3)
    meter = GapMeter().start()
    finish = []
    LANE_CPU.clear()
    for k in range(strokes):
        y = 40 + (k * 23) % 420
        c.begin_stroke(QPointF(40, y))
        for j in range(1, 30):
            c.extend_stroke(QPointF(40 + 14 * j, y + 10 * ((j // 5) % 2)))
            wait(0.008)
        n = page.render_count
        t0 = time.perf_counter()
        c.end_stroke()
        wait(60, lambda: page.render_count != n and page.settled())
        if page.render_count == n or not page.settled():
            raise SystemExit("no render within 60 s of a stroke's end")
        finish.append(time.perf_counter() - t0)
        wait(0.05)
    meter.stop()
    page.timing.disconnect(infer.append)
    return finish, infer, meter.worst


def use_precision(app, window, page, precision: str) -> None:
    """The worker set to ``precision`` (as Preferences does) and the page's model reloaded in it."""
    if precision == window.worker.precision and page.info is not None:
        return
    window.worker.configure(window.worker.device, window.worker.threads, precision)
    page.info = None
    page._model_chosen(page.model_combo.currentIndex())
    deadline = time.perf_counter() + 120
    while (page.info is None or not page.settled()) and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.01)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "assets" / "models" / "sketch2photo.safetensors"))
    p.add_argument("--threads", default="1,2", help="inference thread counts to compare, e.g. 1,2")
    p.add_argument("--precisions", default="auto", help="inference precisions to compare, e.g. auto,fp32")
    p.add_argument("--strokes", type=int, default=20)
    p.add_argument("--no-job", action="store_true", help="skip the figures beside a training job")
    a = p.parse_args()
    import torch
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from studio.app import MainWindow
    time_lane_renders()
    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp())
    w = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.IniFormat), scan_user=False)
    w.resize(1280, 800)
    w.show()
    w.add_model(a.model)
    page = w.pages["sketch"]
    deadline = time.perf_counter() + 120
    while (page.info is None or page.render_count == 0) and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.01)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, model {Path(a.model).name} "
          f"({page.info.card.get('image_size')} px), {a.strokes} strokes per figure")
    counts = [int(t) for t in a.threads.split(",")]
    for condition in ("idle", "job") if not a.no_job else ("idle",):
        job = start_job(tmp) if condition == "job" else None
        try:
            for precision in a.precisions.split(","):
                use_precision(app, w, page, precision)
                for threads in counts:
                    w.worker.threads = threads
                    draw_session(app, page, 3)  # warm-up at this thread count
                    finish, infer, gap = draw_session(app, page, a.strokes)
                    ms, cpu = [f * 1000 for f in finish], [c * 1000 for c in LANE_CPU]
                    print(f"{condition:4s} {page.info.precision} {threads} thread(s): stroke end -> on screen p50 "
                          f"{statistics.median(ms):6.1f} ms, p95 {percentile(ms, 0.95):6.1f} ms; inference p50 "
                          f"{statistics.median(infer) * 1000:6.1f} ms ({len(infer)} renders; CPU p50 "
                          f"{statistics.median(cpu):5.1f} ms, p95 {percentile(cpu, 0.95):5.1f} ms); longest UI gap "
                          f"{gap} ms; load {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            if job is not None:
                os.killpg(job.pid, 15)
                job.wait(60)
    w.close()


if __name__ == "__main__":
    main()
