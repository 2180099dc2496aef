"""A control panel built from a model's declared controls (``trainer.controls.Control``), so a
new method needs no new widget code: choices are combo boxes, numbers sliders or spin boxes (an
int a page asks for as a slider: :class:`IntSlider`), seeds spin boxes with a dice button,
booleans check boxes (an exclusive group behaves like radio buttons that may all be off), a
layer set (kind ``layers``) one check box per declared layer (:class:`LayerSet`). A control that
acts only under some values of another (``Control.active_when``, the dropout seed in pix2pix's
paper mode) is greyed out otherwise. A page may tie controls together with :meth:`ControlPanel.on_edit`
(the Style page's crossover sets its layer set)."""
from __future__ import annotations

import random

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGridLayout, QHBoxLayout, QLabel, QLineEdit,
                               QSlider, QSpinBox, QToolButton, QWidget)

SLIDER_STEPS = 200
LAYER_COLUMNS = 4  # check boxes to a row in a layer set


class FloatSlider(QWidget):
    valueChanged = Signal(float)

    def __init__(self, minimum: float, maximum: float, value: float, parent=None):
        super().__init__(parent)
        self.minimum, self.maximum = minimum, maximum
        self._exact, self._setting = None, False
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.label = QLabel()
        self.label.setMinimumWidth(40)
        self.label.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.label)
        self.slider.valueChanged.connect(self._moved)
        self.setValue(value)

    def value(self) -> float:
        """The value set (a latents file's 0.123 stays 0.123), else the slider's step."""
        if self._exact is not None:
            return self._exact
        return round(self.minimum + (self.maximum - self.minimum) * self.slider.value() / SLIDER_STEPS, 4)

    def setValue(self, v: float) -> None:
        """Set ``v`` exactly (clamped to the range); the slider shows its nearest step."""
        v = max(self.minimum, min(self.maximum, float(v)))
        k = (v - self.minimum) / max(1e-12, self.maximum - self.minimum)
        self._exact, self._setting = v, True
        try:
            self.slider.setValue(round(k * SLIDER_STEPS))
        finally:
            self._setting = False
        self.label.setText(f"{self.value():.2f}")

    def _moved(self, _):
        if not self._setting:  # the user moved it: the slider's steps again
            self._exact = None
        self.label.setText(f"{self.value():.2f}")
        self.valueChanged.emit(self.value())


class SeedBox(QWidget):
    valueChanged = Signal(int)

    def __init__(self, value: int, maximum: int = 2 ** 31 - 1, parent=None):
        super().__init__(parent)
        self.spin = QSpinBox()
        self.spin.setRange(0, maximum)
        self.spin.setValue(int(value))
        self.dice = QToolButton()
        self.dice.setText("Random")
        self.dice.setToolTip("A random seed")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.spin, 1)
        lay.addWidget(self.dice)
        self.spin.valueChanged.connect(self.valueChanged)
        self.dice.clicked.connect(lambda: self.spin.setValue(random.randint(0, min(99999, self.spin.maximum()))))

    def value(self) -> int:
        return self.spin.value()

    def setValue(self, v: int) -> None:
        self.spin.setValue(int(v))


class IntSlider(QWidget):
    """A whole number from ``minimum`` to ``maximum`` on a slider, with a label beside it that shows
    the number unless the page gives it words (:meth:`set_text`)."""
    valueChanged = Signal(int)

    def __init__(self, minimum: int, maximum: int, value: int, parent=None):
        super().__init__(parent)
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(int(minimum), int(maximum))
        self.slider.setValue(int(value))
        self.label = QLabel(str(self.slider.value()))
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.label)
        self.slider.valueChanged.connect(self._moved)

    def value(self) -> int:
        return self.slider.value()

    def setValue(self, v: int) -> None:
        self.slider.setValue(int(v))

    def set_text(self, text: str) -> None:
        self.label.setText(text)

    def _moved(self, v):
        self.label.setText(str(v))
        self.valueChanged.emit(v)


class LayerSet(QWidget):
    """A ``layers`` control: one check box per layer, labelled with the control's ``choices`` (layer
    ``i`` is choice ``i``), :data:`LAYER_COLUMNS` to a row. Its value is the checked layers' numbers
    as the control takes them ("0,1,6"; "" for none); ``valueChanged`` once per edit."""
    valueChanged = Signal(str)

    def __init__(self, labels, value: str = "", parent=None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.checks: list[QCheckBox] = []
        for i, label in enumerate(labels):
            c = QCheckBox(str(label))
            c.toggled.connect(self._toggled)
            grid.addWidget(c, i // LAYER_COLUMNS, i % LAYER_COLUMNS)
            self.checks.append(c)
        self._setting = False
        self.setValue(value)

    def value(self) -> str:
        return ",".join(str(i) for i, c in enumerate(self.checks) if c.isChecked())

    def describe(self, labels=None, tips=None) -> None:
        """Words a page knows better than the declaration: each layer's shown text and tooltip
        (lists in layer order); the value stays the layers' numbers."""
        for i, c in enumerate(self.checks):
            if labels:
                c.setText(str(labels[i]))
            if tips:
                c.setToolTip(str(tips[i]))

    def setValue(self, value) -> None:
        """``value``: layer numbers as text ("0,1,6") or an iterable of ints; others are unchecked."""
        if isinstance(value, str):
            chosen = {int(t) for t in value.split(",") if t.strip()}
        else:
            chosen = {int(i) for i in value}
        before = self.value()
        self._setting = True
        for i, c in enumerate(self.checks):
            c.setChecked(i in chosen)
        self._setting = False
        if self.value() != before:
            self.valueChanged.emit(self.value())

    def _toggled(self, _on):
        if not self._setting:
            self.valueChanged.emit(self.value())


class ControlPanel(QWidget):
    """``changed`` carries the full dict of values after any edit."""
    changed = Signal(dict)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setLabelAlignment(Qt.AlignRight | Qt.AlignVCenter)
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.controls, self.widgets, self.labels = [], {}, {}
        self.rules: dict = {}
        self._quiet = False
        self._sliders: tuple = ()

    def set_controls(self, controls, skip=(), sliders=()) -> None:
        """Rows for ``controls`` (Control objects) but those named in ``skip``; the int controls
        named in ``sliders`` (with both bounds declared) are sliders, not spin boxes. Rules of
        :meth:`on_edit` are dropped."""
        while self.form.rowCount():
            self.form.removeRow(0)
        self.controls = [c for c in controls if c.name not in skip]
        self.widgets, self.labels, self.rules = {}, {}, {}
        self._sliders = tuple(sliders)
        for c in self.controls:
            w = self._make(c)
            w.setToolTip(c.help or c.label)
            self.widgets[c.name] = w
            if c.kind == "bool":
                self.form.addRow("", w)
            else:
                label = QLabel(c.label or c.name)
                label.setToolTip(c.help)
                self.labels[c.name] = label
                self.form.addRow(label, w)
        if not self.controls:
            self.form.addRow(QLabel("This model has no controls."))
        self._update_active()

    def on_edit(self, name: str, rule) -> None:
        """Call ``rule(values)`` when the user edits control ``name``, before the panel tells of the
        edit: the rule may set other controls (through their widgets), and ``changed`` then
        carries all of it, once."""
        self.rules[name] = rule

    def describe_choices(self, name: str, labels: dict | None = None, tips: dict | None = None,
                         help: str | None = None) -> None:
        """Words for a choice control a page knows better than the model's declaration: each
        choice's shown text (its value stays what the model takes), each choice's tooltip, and the
        control's tooltip."""
        w = self.widgets.get(name)
        if not isinstance(w, QComboBox):
            return
        for i in range(w.count()):
            value = w.itemData(i)
            if labels and value in labels:
                w.setItemText(i, labels[value])
            if tips and value in tips:
                w.setItemData(i, tips[value], Qt.ToolTipRole)
        if help is not None:
            w.setToolTip(help)
            if name in self.labels:
                self.labels[name].setToolTip(help)

    def _update_active(self) -> None:
        values = self.values()
        for c in self.controls:
            on = c.active(values)
            self.widgets[c.name].setEnabled(on)
            if c.name in self.labels:
                self.labels[c.name].setEnabled(on)

    def _make(self, c):
        if c.kind == "choice":
            w = QComboBox()
            for choice in c.choices:
                w.addItem(str(choice) if choice != "" else "(none)", choice)
            w.setCurrentIndex(max(0, list(c.choices).index(c.default) if c.default in c.choices else 0))
            w.currentIndexChanged.connect(lambda *_, name=c.name: self._edited(name))
        elif c.kind == "bool":
            w = QCheckBox(c.label or c.name)
            w.setChecked(bool(c.default))
            w.toggled.connect(lambda on, name=c.name: self._toggled(name, on))
        elif c.kind == "seed":
            w = SeedBox(c.default, int(c.maximum or 2 ** 31 - 1))
            w.valueChanged.connect(lambda *_, name=c.name: self._edited(name))
        elif c.kind == "int" and c.name in self._sliders and c.minimum is not None and c.maximum is not None:
            w = IntSlider(c.minimum, c.maximum, c.default if c.default is not None else c.maximum)
            w.valueChanged.connect(lambda *_, name=c.name: self._edited(name))
        elif c.kind == "layers":
            w = LayerSet(c.choices, c.default or "")
            w.valueChanged.connect(lambda *_, name=c.name: self._edited(name))
        elif c.kind == "int":
            w = QSpinBox()
            w.setRange(int(c.minimum if c.minimum is not None else -10 ** 9),
                       int(c.maximum if c.maximum is not None else 10 ** 9))
            w.setValue(int(c.default if c.default is not None else w.maximum()))
            w.valueChanged.connect(lambda *_, name=c.name: self._edited(name))
        elif c.kind == "float":
            w = FloatSlider(float(c.minimum or 0.0), float(c.maximum if c.maximum is not None else 1.0), c.default)
            w.valueChanged.connect(lambda *_, name=c.name: self._edited(name))
        else:
            w = QLineEdit(str(c.default))
            w.editingFinished.connect(lambda name=c.name: self._edited(name))
        return w

    def _toggled(self, name, on):
        c = next(c for c in self.controls if c.name == name)
        if on and c.group:  # exclusive: turning one on turns the rest of its group off
            self._quiet = True
            for other in self.controls:
                if other.group == c.group and other.name != name:
                    self.widgets[other.name].setChecked(False)
            self._quiet = False
        self._edited(name)

    def _edited(self, name: str) -> None:
        """A control was edited: its rule (if any) runs with the panel quiet, then the news."""
        rule = None if self._quiet else self.rules.get(name)
        if rule is not None:
            self._quiet = True
            try:
                rule(self.values())
            finally:
                self._quiet = False
        self._emit()

    def _emit(self, *_):
        self._update_active()
        if not self._quiet:
            self.changed.emit(self.values())

    def values(self) -> dict:
        out = {}
        for c in self.controls:
            w = self.widgets[c.name]
            if c.kind == "choice":
                out[c.name] = w.currentData()
            elif c.kind == "bool":
                out[c.name] = w.isChecked()
            elif c.kind in ("seed", "int", "float", "layers"):
                out[c.name] = w.value()
            else:
                out[c.name] = w.text()
        return out

    def set_values(self, values: dict, emit: bool = True) -> None:
        """Set the controls named in ``values`` (no rule of :meth:`on_edit` runs); ``emit``: then
        tell ``changed`` (unless the panel is quiet: inside a rule)."""
        quiet, self._quiet = self._quiet, True
        try:  # a value a widget refuses must not leave the panel quiet for good
            for c in self.controls:
                if c.name not in values:
                    continue
                w, v = self.widgets[c.name], values[c.name]
                if c.kind == "choice":
                    w.setCurrentIndex(max(0, w.findData(v)))
                elif c.kind == "bool":
                    w.setChecked(bool(v))
                elif c.kind in ("seed", "int", "float", "layers"):
                    w.setValue(v)
                else:
                    w.setText(str(v))
        finally:
            self._quiet = quiet
        if emit:
            self._emit()  # updates which controls act, then tells
        else:
            self._update_active()
