"""A model's user controls: what a Translator declares so that the studio builds its panels and
the CLI checks ``--control`` values, with no widget code per method.

Each :class:`Control` has a ``kind``: ``choice`` (one of ``choices``), ``int``, ``float`` (within
``minimum``..``maximum`` when given), ``bool``, ``seed`` (a whole number from 0 to
:data:`SEED_MAX` unless narrowed) or ``layers`` (a set of style layers written "0,1,6";
``choices`` label each layer). A value that does not fit raises
:class:`~trainer.errors.ControlError`, naming the control and its allowed values.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainer.errors import ControlError

__all__ = ["Control", "ControlError", "SEED_MAX", "KINDS", "parse_layers"]

SEED_MAX = 2 ** 31 - 1  # the largest seed (torch.Generator.manual_seed takes 64 bits; 31 fit every UI)
KINDS = ("choice", "int", "float", "bool", "seed", "layers")


def parse_layers(value, n: int | None = None) -> list[int]:
    """A layer set as written ("0,1,6", " 0, 6 ", [0, 1, 6], range(2) or "") -> its sorted, distinct
    layer indices ([] for an empty set). ValueError when an item is not a whole number, or, with
    ``n`` (the model's number of style layers), when an index is outside 0..n-1; the message names
    the bad item."""
    items = value if isinstance(value, (list, tuple, range)) else str(value).replace(" ", "").split(",")
    layers = set()
    for t in items:
        if t == "":
            continue
        try:
            if isinstance(t, (bool, np.bool_)) or float(t) != int(float(t)):
                raise ValueError
            layers.add(int(float(t)))
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{t!r} is not a layer number (write them comma-separated, e.g. 0,1,6)") from None
    bad = [i for i in sorted(layers) if n is not None and not 0 <= i < n]
    if bad:
        raise ValueError(f"no layer {bad[0]}; this model has layers 0..{n - 1}")
    return sorted(layers)


@dataclass
class Control:
    """One user control of a model: ``kind`` is choice, int, float, bool, seed or layers (a set of
    style layers, written "0,1,6"; ``choices`` label each layer)."""
    name: str
    kind: str
    default: Any
    label: str = ""
    help: str = ""
    choices: list = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    group: str = ""  # bool controls sharing a group are mutually exclusive (at most one on)
    active_when: dict = field(default_factory=dict)  # {other control: [values]} under which this one acts
    data: list = field(default_factory=list)  # per choice: a layers control's resolution of each layer (px)

    def active(self, values: dict) -> bool:
        return all(values.get(k) in v for k, v in self.active_when.items())

    def allowed(self) -> str:
        """What values this control takes, in words (for errors and ``gan-trainer inspect``)."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) if c == "" else str(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "layers":
            n = len(self.choices)
            return f"comma-separated layer numbers from 0 to {n - 1}, or empty" if n else \
                "comma-separated layer numbers"
        what = {"int": "a whole number", "seed": "a whole number", "float": "a number"}.get(self.kind, "a value")
        lo, hi = self.minimum, self.maximum
        if self.kind == "seed":
            lo, hi = (0 if lo is None else lo), (SEED_MAX if hi is None else hi)
        fmt = (lambda v: f"{int(v)}") if self.kind in ("int", "seed") else (lambda v: f"{v:g}")
        if lo is not None and hi is not None:
            return f"{what} from {fmt(lo)} to {fmt(hi)}"
        if lo is not None:
            return f"{what} of at least {fmt(lo)}"
        if hi is not None:
            return f"{what} of at most {fmt(hi)}"
        return f"{what} (finite)"

    def check(self, value):
        """``value`` normalised (ints for int and seed controls, bools for bool ones), or a
        :class:`ControlError` that gives the allowed values."""
        def refuse(why: str = ""):
            rule = f"choose {self.allowed()}" if self.kind == "choice" else f"allowed: {self.allowed()}"
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:30] + "..."  # a 400-digit value
            raise ControlError(f"{self.name} = {shown}: {why + '; ' if why else ''}{rule}")

        if self.kind == "choice":
            if value not in self.choices:
                refuse()
            return value
        if self.kind == "bool":
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            if isinstance(value, numbers.Integral) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            refuse()
        if self.kind in ("int", "seed", "float"):
            number = value
            if isinstance(number, str):
                try:
                    number = float(number.strip())
                except ValueError:
                    refuse("not a number")
            if isinstance(number, (bool, np.bool_)) or not isinstance(number, numbers.Real):
                refuse("not a number")
            try:
                finite = math.isfinite(float(number))
            except OverflowError:  # an int beyond any float: out of every range
                refuse("out of range")
            if not finite:
                refuse("not a finite number")
            if self.kind in ("int", "seed"):
                if float(number) != math.floor(float(number)):
                    refuse("not a whole number")
                number = int(number)
            else:
                number = float(number)
            lo, hi = self.minimum, self.maximum
            if self.kind == "seed":
                lo, hi = (0 if lo is None else lo), (SEED_MAX if hi is None else hi)
            if (lo is not None and number < lo) or (hi is not None and number > hi):
                refuse("out of range")
            return number
        if self.kind == "layers":
            if value in (None, ""):
                return ""
            try:
                parse_layers(value)
            except ValueError:
                refuse("not layer numbers")
            try:
                parse_layers(value, len(self.choices) or None)
            except ValueError:
                refuse("no such layer")
            return value
        return value
