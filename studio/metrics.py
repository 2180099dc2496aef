"""The Train page's view of a run's metrics: the engine's reader (:class:`trainer.rundir.MetricsReader`,
every point kept) with the loss groups of the run's method (:func:`trainer.api.loss_groups`),
TensorBoard's debiased EMA smoothing, plain-language health warnings and CSV export. No Qt here."""
from __future__ import annotations

import csv

import numpy as np

from trainer import api, rundir
from trainer.rundir import Series

__all__ = ["GROUPS", "group_of", "MetricsReader", "Series", "Smoother", "smooth", "export_csv", "health_warnings"]

GROUPS = api.LOSS_GROUPS


def group_of(key: str, declared: dict | None = None) -> str | None:
    """Which plot a logged key belongs to (None: not a loss curve); ``declared``: the loss groups
    the run's method declares (:func:`trainer.api.loss_group`)."""
    return api.loss_group(key, declared)


class MetricsReader(rundir.MetricsReader):
    """A run's ``metrics.jsonl`` read incrementally (:meth:`poll`), each loss in the plot its
    method declares: the method is read from the run directory (status.json, else config.toml)
    once it is there; until then, and for keys it does not declare, the engine's naming rule."""

    def __init__(self, path, method: str | None = None):
        super().__init__(path)
        self.declared: dict[str, str] | None = None
        if method is not None:
            self._declare(method)

    def _declare(self, method: str) -> None:
        try:
            self.declared = api.loss_groups(method)
        except ValueError:  # a method this installation does not know (a plugin's): the naming rule
            self.declared = {}

    def poll(self) -> int:
        if self.declared is None:
            method = rundir.run_method(self.path.parent)
            if method:
                self._declare(method)
        return super().poll()

    def group_of(self, key: str) -> str | None:
        return group_of(key, self.declared)

    def keys(self, group: str | None = None) -> list[str]:
        """The loss keys read so far (those of ``group`` when given), in the order they came."""
        return [k for k in self.series if (self.group_of(k) == group if group else self.group_of(k) is not None)]


def _ema(x: np.ndarray, weight: float, last: float, count: int):
    """EMA of finite ``x`` continuing from ``last`` after ``count`` points; returns (debiased,
    last, count). Vectorised in chunks: inside a chunk s_k = w^k (carry + (1-w) sum_i x_i w^-i),
    with chunks short enough that w^-k stays far from overflow; all chunks at once as the rows of
    one matrix, then the carries (one scalar per chunk) chained. O(n), ~9 ms per 200k points."""
    n = len(x)
    if n == 0:
        return np.empty(0), last, count
    chunk = min(n, max(1, int(300 / -np.log(weight)))) if 0 < weight < 1 else n
    rows = -(-n // chunk)
    m = np.zeros(rows * chunk)
    m[:n] = x
    m = m.reshape(rows, chunk)
    k = np.arange(1, chunk + 1, dtype=float)
    local = weight ** k * ((1 - weight) * np.cumsum(m * weight ** -k, axis=1))  # each chunk from 0
    carry = np.empty(rows)  # the EMA just before each chunk
    decay, c = weight ** chunk, last
    for j, end in enumerate(local[:, -1].tolist()):
        carry[j] = c
        c = end + decay * c
    biased = (local + weight ** k * carry[:, None]).ravel()[:n]
    # 1 - w^(count + i) through expm1: w ** array reaches denormals, which are ~6x slower
    out = biased / -np.expm1(np.log(weight) * (count + np.arange(1, n + 1, dtype=float)))
    return out, float(biased[-1]), count + n


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average debiased by 1 - weight^n; non-finite
    values are skipped (left as they are and not counted)."""
    out = np.array(values, dtype=float)
    if weight <= 0 or len(out) == 0:
        return out
    finite = np.isfinite(out)
    out[finite] = _ema(out[finite], weight, 0.0, 0)[0]
    return out


class Smoother:
    """The smoothed curve of a growing series, extended with only the new points."""

    def __init__(self):
        self.weight, self.n, self.last, self.count, self.values = None, 0, 0.0, 0, np.empty(0)

    def __call__(self, series: "Series", weight: float) -> np.ndarray:
        if weight != self.weight or series.n < self.n:
            self.weight, self.n, self.last, self.count, self.values = weight, 0, 0.0, 0, np.empty(0)
        if weight <= 0:
            return series.value
        new = np.array(series.value[self.n:], dtype=float)
        finite = np.isfinite(new)
        if finite.any():
            new[finite], self.last, self.count = _ema(new[finite], weight, self.last, self.count)
        self.values = np.concatenate([self.values, new])
        self.n = series.n
        return self.values


def export_csv(path, runs: dict[str, MetricsReader], keys: list[str] | None, weight: float) -> int:
    """Rows run, key, step, time, value, smoothed for every point of the chosen curves; returns
    the number of rows."""
    rows = 0
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "key", "step", "time", "value", "smoothed"])
        for name, reader in runs.items():
            for k in keys or reader.keys():
                if k not in reader.series:
                    continue
                s = reader.series[k]
                sm = smooth(s.value, weight)
                for step, t, v, m in zip(s.step, s.time, s.value, sm):
                    w.writerow([name, k, int(step), repr(float(t)), repr(float(v)), repr(float(m))])
                    rows += 1
    return rows


def health_warnings(reader: MetricsReader, window: int = 20) -> list[str]:
    """Plain-language warnings: a non-finite loss, a discriminator that wins outright (its loss
    near zero while the generator's adversarial loss climbs), mode collapse (sample diversity
    well below its early value)."""
    out = []
    for k, s in reader.series.items():
        if reader.group_of(k) and s.n and not np.isfinite(s.value[-1]):
            out.append(f"{k} is {s.value[-1]} at step {int(s.step[-1])}: training has diverged")
    d_keys, g_keys = reader.keys("discriminator"), reader.keys("generator")
    if d_keys and g_keys:
        d = sum(reader.series[k].value[-window:].mean() for k in d_keys if reader.series[k].n >= window)
        g = reader.series[g_keys[0]].value
        if isinstance(d, float) and len(g) >= 2 * window and d < 0.05 and \
                g[-window:].mean() > 1.5 * g[-2 * window:-window].mean():
            out.append(f"the discriminator is winning outright (D loss {d:.3f}, {g_keys[0]} climbing): "
                       "the generator gets no useful gradient; try a lower D learning rate or more data")
    div = reader.series.get("sample_diversity")
    if div is not None and div.n >= 3:
        early = np.nanmax(div.value[:3])
        if early > 0 and div.value[-1] < 0.3 * early:
            out.append(f"the samples look alike (diversity {div.value[-1]:.3f}, early {early:.3f}): "
                       "possible mode collapse")
    return out
