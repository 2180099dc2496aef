"""The loss plots under a large run: the UI thread's longest gap while 200,000 points per series
are plotted, re-smoothed, zoomed and shown on a log axis (the studio's goal: no gap over 50 ms).

    python bench/plot_gaps.py [--points 200000]

Prints the longest and the 95th-percentile gap between ticks of a 5 ms timer on the UI thread.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, default=200_000)
    a = p.parse_args()
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from studio.gap_meter import GapMeter
    from studio.metrics import MetricsReader
    from studio.widgets.loss_plots import LossPlots
    app = QApplication.instance() or QApplication([])
    path = Path(tempfile.mkdtemp()) / "metrics.jsonl"
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        for s, d, g in zip(range(1, a.points + 1), rng.random(a.points), rng.random(a.points) + 1):
            f.write(f'{{"step": {s}, "time": {s * 0.01}, "D_real": {d}, "G": {g}}}\n')
    reader = MetricsReader(path)
    reader.poll()
    plots = LossPlots()
    plots.resize(900, 700)
    plots.show()

    def pump(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)

    meter = GapMeter().start()
    plots.set_runs({"big": reader})
    pump(0.4)
    for w in (300, 900, 0, 600):
        plots.smoothing.setValue(w)
        pump(0.15)
    plots.plots["discriminator"].setXRange(1000, 5000)
    pump(0.2)
    plots.logy.setChecked(True)
    pump(0.2)
    meter.stop()
    gaps = sorted(meter.gaps)
    print(f"{a.points} points: {len(gaps)} ticks, longest UI-thread gap {meter.worst} ms, "
          f"p95 {gaps[int(0.95 * (len(gaps) - 1))]} ms (timer interval 5 ms; load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
