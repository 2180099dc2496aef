"""Studio latency: a scripted drawing session on the Sketch page (and one render per other page),
printing the inference time per update, the time from a stroke's end to its photo on screen,
and the longest gap of the UI thread's event loop.

    python bench/studio_latency.py [--model sketch2photo.safetensors] [--threads 2]

Without --model, a random-weight model of the bundled sketch2photo architecture (128 px U-Net,
ngf 32) is made, so the figures hold before any training.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def random_sketch_model(path: Path) -> Path:
    import torch

    from trainer.modelfile import save_model
    from trainer.nets import build
    torch.manual_seed(0)
    args = dict(input_nc=3, output_nc=3, num_downs=7, ngf=32, norm="batch", use_dropout=True)
    g = build("unet", **args)
    save_model(path, {f"G.{k}": v for k, v in g.state_dict().items()},
               {"method": "pix2pix", "task": "sketch2photo", "image_size": 128, "channels": 3,
                "value_range": [-1, 1], "nets": {"G": {"name": "unet", "args": args}},
                "inference": {"mode": "paper"}})
    return path


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--strokes", type=int, default=20)
    a = p.parse_args()
    import torch
    from PySide6.QtCore import QPointF, QSettings
    from PySide6.QtWidgets import QApplication

    from studio.app import MainWindow
    from studio.gap_meter import GapMeter
    torch.set_num_threads(a.threads)
    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp())
    model = Path(a.model) if a.model else random_sketch_model(tmp / "sketch.safetensors")
    w = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.IniFormat), scan_user=False)
    w.worker.threads = a.threads
    w.resize(1280, 800)
    w.show()
    w.add_model(model)
    page = w.pages["sketch"]

    def pump(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.002)

    deadline = time.perf_counter() + 60
    while page.render_count == 0 and time.perf_counter() < deadline:
        pump(0.05)
    infer = []
    page.timing.connect(infer.append)
    meter = GapMeter().start()
    c = page.canvas
    c.clear()
    finish = []
    for k in range(a.strokes):
        y = 40 + (k * 23) % 420
        c.begin_stroke(QPointF(40, y))
        for j in range(1, 30):  # a stroke of 30 mouse moves, ~8 ms apart (a quick hand)
            c.extend_stroke(QPointF(40 + 14 * j, y + 10 * ((j // 5) % 2)))
            pump(0.008)
        n = page.render_count
        t0 = time.perf_counter()
        c.end_stroke()
        while page.render_count == n or not page.settled():
            pump(0.001)
        finish.append(time.perf_counter() - t0)
    meter.stop()
    renders = page.render_count
    print(f"torch {torch.__version__}, {a.threads} threads, model {model.name} ({page.info.card.get('image_size')} px)")
    print(f"sketch page: {len(infer)} renders during {a.strokes} strokes; inference median "
          f"{statistics.median(infer) * 1000:.1f} ms, p90 {sorted(infer)[int(0.9 * len(infer))] * 1000:.1f} ms, "
          f"max {max(infer) * 1000:.1f} ms")
    print(f"stroke end -> photo on screen: median {statistics.median(finish) * 1000:.1f} ms, "
          f"max {max(finish) * 1000:.1f} ms")
    print(f"UI thread: {len(meter.gaps)} timer ticks, longest gap {meter.worst} ms (timer interval 5 ms); renders {renders}")
    w.close()


if __name__ == "__main__":
    main()
