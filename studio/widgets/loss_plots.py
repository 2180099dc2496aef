"""Live loss plots (pyqtgraph): one plot per group (discriminator, generator, reconstruction /
regularisation), every point kept and drawn with clip-to-view and peak downsampling, redrawn at
most ten times a second; smoothing (TensorBoard's debiased EMA), x as step / relative / wall
time, log y guarded against non-positive values, outliers ignored in scaling, a crosshair that
reads every curve at the cursor, several runs overlaid in a colour-blind-safe palette, CSV and
PNG export."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout,
                               QWidget)

from studio.metrics import GROUPS, MetricsReader, Smoother, export_csv

# Okabe & Ito's colour-blind-safe palette (and Tol's for more curves)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
           "#332288", "#117733", "#882255", "#44AA99"]
STYLES = [Qt.SolidLine, Qt.DashLine, Qt.DotLine, Qt.DashDotLine]
REDRAW_MS = 100
FULL_PASS = 50_000  # points: more than this to smooth at once waits for its own redraw tick
OUTLIER_SAMPLE = 20_000


class LossPlots(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        pg.setConfigOptions(antialias=False, background="w", foreground="k")
        self.runs: dict[str, MetricsReader] = {}
        self.curves: dict[tuple, pg.PlotDataItem] = {}
        self.curve_groups: dict[tuple, str] = {}  # (run, key) -> the plot its curve is in
        self.smoothers: dict[tuple, Smoother] = {}
        self.dirty = False
        self.layout_widget = pg.GraphicsLayoutWidget()
        self.plots = {}
        for i, g in enumerate(GROUPS):
            p = self.layout_widget.addPlot(row=i, col=0, title=g)
            # no grid: pyqtgraph paints grid lines through the axes' QPictures, ~10 ms per axis a frame
            p.addLegend(offset=(-10, 10))
            p.setClipToView(True)
            p.setDownsampling(auto=True, mode="peak")
            p.vline = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#888", style=Qt.DashLine))
            p.addItem(p.vline, ignoreBounds=True)
            if i:
                p.setXLink(self.plots[GROUPS[0]])
            self.plots[g] = p
        self.readout = QLabel(" ")
        self.readout.setWordWrap(True)
        self.readout.setTextFormat(Qt.RichText)
        self.proxy = pg.SignalProxy(self.layout_widget.scene().sigMouseMoved, rateLimit=30, slot=self._mouse)

        self.smoothing = QSlider(Qt.Horizontal, toolTip="Smoothing: TensorBoard's debiased exponential moving "
                                                        "average (0: raw points)")
        self.smoothing.setRange(0, 999)
        self.smoothing.setValue(600)
        self.smoothing.setMinimumWidth(60)
        self.smoothing_label = QLabel("0.600")
        self.xaxis = QComboBox(toolTip="x axis: training step, hours since the start, or wall-clock time")
        self.xaxis.addItems(["step", "relative", "wall time"])
        self.logy = QCheckBox("Log y", toolTip="Logarithmic y axis (non-positive values are left out)")
        self.outliers = QCheckBox("Ignore outliers", toolTip="Scale y to the 2nd-98th percentiles of the "
                                                             "visible curves")
        self.outliers.setChecked(True)
        reset = QPushButton("Reset zoom", toolTip="Fit every curve (zoom: wheel or drag on a plot)")
        reset.clicked.connect(self.reset_zoom)
        for w in (self.smoothing,):
            w.valueChanged.connect(self._settings_changed)
        self.xaxis.currentIndexChanged.connect(self._settings_changed)
        self.logy.toggled.connect(self._settings_changed)
        self.outliers.toggled.connect(self._settings_changed)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Smoothing"))
        bar.addWidget(self.smoothing, 1)
        bar.addWidget(self.smoothing_label)
        bar.addWidget(self.xaxis)
        bar.addWidget(self.logy)
        bar.addWidget(self.outliers)
        bar.addWidget(reset)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(bar)
        lay.addWidget(self.layout_widget, 1)
        lay.addWidget(self.readout)
        self.timer = QTimer(self, interval=REDRAW_MS)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()

    # -- data
    def set_runs(self, runs: dict[str, MetricsReader]) -> None:
        """Show these runs (name -> reader); curves of other runs are removed."""
        for key in [k for k in self.curves if k[0] not in runs]:
            item = self.curves.pop(key)
            self.plots[self.curve_groups.pop(key)].removeItem(item)
            self.smoothers.pop(key, None)
        self.runs = dict(runs)
        self.dirty = True

    def data_changed(self) -> None:
        self.dirty = True

    def weight(self) -> float:
        return self.smoothing.value() / 1000

    def _settings_changed(self, *_):
        self.smoothing_label.setText(f"{self.weight():.3f}")
        for p in self.plots.values():
            p.setLogMode(y=self.logy.isChecked())
        self.dirty = True  # the redraw timer picks it up

    def _x(self, reader: MetricsReader, s):
        mode = self.xaxis.currentText()
        if mode == "step":
            return s.step
        if mode == "relative":
            t0 = min((v.time[0] for v in reader.series.values() if v.n), default=0.0)
            return (s.time - t0) / 3600
        return s.time

    # -- drawing
    def redraw(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        colours = itertools.cycle(PALETTE)
        multi = len(self.runs) > 1
        budget = 1
        for r_i, (name, reader) in enumerate(self.runs.items()):
            for k_i, key in enumerate(reader.keys()):
                group = reader.group_of(key)
                ident = (name, key)
                item = self.curves.get(ident)
                if item is None:
                    colour = next(colours)
                    label = f"{name}: {key}" if multi else key
                    style = STYLES[r_i % len(STYLES)] if multi else Qt.SolidLine
                    item = self.plots[group].plot(name=label, pen=pg.mkPen(colour, width=1, style=style))
                    item.setClipToView(True)
                    item.setDownsampling(auto=True, method="peak")
                    item.opts["autoDownsampleFactor"] = 1.0  # peak pairs per pixel column, not five: the envelope
                    # looks the same and a frame draws 5x fewer segments
                    self.curves[ident] = item
                    self.curve_groups[ident] = group
                    self.smoothers[ident] = Smoother()
                else:
                    next(colours)
                s = reader.series[key]
                smoother = self.smoothers[ident]
                if budget <= 0 and (smoother.weight != self.weight() or s.n - smoother.n > FULL_PASS):
                    self.dirty = True  # a full pass costs ~10 ms per 200k points, drawing more: one curve per tick
                    continue
                if smoother.weight != self.weight() or s.n - smoother.n > FULL_PASS:
                    budget -= 1
                y = smoother(s, self.weight())
                x = self._x(reader, s)
                if self.logy.isChecked():
                    y = np.where(y > 0, y, np.nan)  # log of non-positive values: a gap, not a crash
                finite = bool(np.isfinite(y).all())
                item.setData(x, y, connect="all" if finite else "finite", skipFiniteCheck=finite)
        if self.outliers.isChecked():
            self._scale_without_outliers()

    def _scale_without_outliers(self):
        for g, p in self.plots.items():
            ys = [c.yData for key, c in self.curves.items() if self.curve_groups[key] == g and c.yData is not None]
            ys = [y[np.isfinite(y)] for y in ys]
            ys = [y for y in ys if len(y)]
            if not ys:
                continue
            allv = np.concatenate([y[::max(1, len(y) // OUTLIER_SAMPLE)] for y in ys])  # percentiles of a sample
            if self.logy.isChecked():
                allv = np.log10(allv[allv > 0]) if (allv > 0).any() else allv
            lo, hi = np.percentile(allv, [2, 98])
            pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1.0
            p.setYRange(lo - pad, hi + pad, padding=0)

    def reset_zoom(self):
        for p in self.plots.values():
            p.enableAutoRange()
        if self.outliers.isChecked():
            self._scale_without_outliers()

    def _mouse(self, event):
        pos = event[0]
        for g, p in self.plots.items():
            if p.sceneBoundingRect().contains(pos):
                x = p.vb.mapSceneToView(pos).x()
                break
        else:
            return
        for p in self.plots.values():
            p.vline.setPos(x)
        parts = []
        for (name, key), item in self.curves.items():
            xd, yd = item.xData, item.yData
            if xd is None or not len(xd):
                continue
            i = int(np.clip(np.searchsorted(xd, x), 0, len(xd) - 1))
            colour = item.opts["pen"].color().name()
            label = f"{name}: {key}" if len(self.runs) > 1 else key
            parts.append(f"<span style='color:{colour}'>{label} {yd[i]:.4g}</span>")
        self.readout.setText(f"x = {x:.6g}: " + " &nbsp; ".join(parts))

    # -- export
    def visible_keys(self):
        """Keys whose legend entry is on (a legend click hides a curve)."""
        return sorted({k for (_, k), c in self.curves.items() if c.isVisible()})

    def export_csv(self, path) -> int:
        return export_csv(path, self.runs, self.visible_keys() or None, self.weight())

    def export_png(self, path) -> bool:
        return self.layout_widget.grab().save(str(Path(path)))
