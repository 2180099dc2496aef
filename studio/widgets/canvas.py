"""The sketch canvas: pen and eraser strokes on a white QImage, brush size (also the mouse
wheel), tablet pressure, and every stroke, clear and load undoable through a QUndoStack."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QUndoCommand, QUndoStack
from PySide6.QtWidgets import QSizePolicy, QWidget

from studio.images import array_to_qimage, qimage_to_array

CANVAS_SIZE = 512
UNDO_LIMIT = 100


class ImageCommand(QUndoCommand):
    """Swap the canvas image between ``before`` and ``after`` (a stroke, a clear, a load)."""

    def __init__(self, canvas, before: QImage, after: QImage, text: str):
        super().__init__(text)
        self.canvas, self.before, self.after = canvas, before, after
        self.first = True

    def redo(self):
        if self.first:  # the stroke is already on the canvas
            self.first = False
            return
        self.canvas.set_image(self.after)

    def undo(self):
        self.canvas.set_image(self.before)


class SketchCanvas(QWidget):
    changed = Signal(bool)  # True while a stroke is in progress, False when a change is complete
    brush_changed = Signal(int)

    def __init__(self, parent=None, size: int = CANVAS_SIZE):
        super().__init__(parent)
        self.image = QImage(size, size, QImage.Format_RGB888)
        self.image.fill(Qt.white)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(UNDO_LIMIT)
        self.brush = 8
        self.eraser = False
        self.pressure = 1.0
        self._stroke_before: QImage | None = None
        self._last: QPointF | None = None
        self._cursor: QPointF | None = None
        self.setMouseTracking(True)
        self.setAttribute(Qt.WA_TabletTracking, True)
        self.setMinimumSize(256, 256)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setCursor(Qt.CrossCursor)
        self.setToolTip("Draw with the left button (pen or eraser); mouse wheel: brush size")

    # -- state
    def set_brush(self, size: int) -> None:
        self.brush = int(max(1, min(64, size)))
        self.brush_changed.emit(self.brush)
        self.update()

    def set_eraser(self, on: bool) -> None:
        self.eraser = bool(on)

    def set_image(self, image: QImage) -> None:
        self.image = image.convertToFormat(QImage.Format_RGB888).copy()
        self.update()
        self.changed.emit(False)

    def to_array(self) -> np.ndarray:
        return qimage_to_array(self.image)

    def load_array(self, array: np.ndarray, text: str = "Load sketch") -> None:
        """Replace the drawing with ``array`` (uint8 HWC), undoably: scaled to fit the canvas with
        its aspect kept, centred on white (a wide drawing is not squashed)."""
        before = self.image.copy()
        scaled = array_to_qimage(array).scaled(self.image.width(), self.image.height(), Qt.KeepAspectRatio,
                                               Qt.SmoothTransformation)
        image = QImage(self.image.size(), QImage.Format_RGB888)
        image.fill(Qt.white)
        painter = QPainter(image)
        painter.drawImage((image.width() - scaled.width()) // 2, (image.height() - scaled.height()) // 2, scaled)
        painter.end()
        self.set_image(image)
        self.undo_stack.push(ImageCommand(self, before, self.image.copy(), text))

    def clear(self) -> None:
        before = self.image.copy()
        self.image.fill(Qt.white)
        self.update()
        self.undo_stack.push(ImageCommand(self, before, self.image.copy(), "Clear"))
        self.changed.emit(False)

    # -- geometry
    def target_rect(self) -> QRectF:
        side = min(self.width(), self.height())
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def to_image(self, p: QPointF) -> QPointF:
        r = self.target_rect()
        k = self.image.width() / r.width()
        return QPointF((p.x() - r.x()) * k, (p.y() - r.y()) * k)

    # -- strokes (mouse, tablet and scripted tests share these)
    @property
    def in_stroke(self) -> bool:
        return self._stroke_before is not None

    def begin_stroke(self, p: QPointF, pressure: float = 1.0) -> None:
        self._stroke_before = self.image.copy()
        self._last = p
        self.pressure = pressure
        self._segment(p, p)

    def extend_stroke(self, p: QPointF, pressure: float = 1.0) -> None:
        if self._last is None:
            return
        self.pressure = pressure
        self._segment(self._last, p)
        self._last = p

    def end_stroke(self) -> None:
        if self._stroke_before is None:
            return
        text = "Erase" if self.eraser else "Stroke"
        self.undo_stack.push(ImageCommand(self, self._stroke_before, self.image.copy(), text))
        self._stroke_before, self._last = None, None
        self.changed.emit(False)

    def _segment(self, a: QPointF, b: QPointF) -> None:
        painter = QPainter(self.image)
        painter.setRenderHint(QPainter.Antialiasing)
        width = max(1.0, self.brush * (self.pressure if self.pressure > 0 else 1.0))
        painter.setPen(QPen(QColor(Qt.white if self.eraser else Qt.black), width, Qt.SolidLine, Qt.RoundCap,
                            Qt.RoundJoin))
        painter.drawLine(a, b)
        painter.end()
        self.update()
        self.changed.emit(True)

    # -- events
    def mousePressEvent(self, e):
        if e.button() == Qt.LeftButton:
            self.begin_stroke(self.to_image(e.position()))

    def mouseMoveEvent(self, e):
        self._cursor = e.position()
        if e.buttons() & Qt.LeftButton:
            self.extend_stroke(self.to_image(e.position()))
        self.update()

    def mouseReleaseEvent(self, e):
        if e.button() == Qt.LeftButton:
            self.end_stroke()

    def tabletEvent(self, e):
        p, pressure = self.to_image(e.position()), e.pressure()
        t = e.type()
        if t == e.Type.TabletPress:
            self.begin_stroke(p, pressure)
        elif t == e.Type.TabletMove and self._last is not None:
            self.extend_stroke(p, pressure)
        elif t == e.Type.TabletRelease:
            self.end_stroke()
        e.accept()

    def wheelEvent(self, e):
        step = 1 if e.angleDelta().y() > 0 else -1
        self.set_brush(self.brush + step * max(1, self.brush // 6))

    def leaveEvent(self, e):
        self._cursor = None
        self.update()

    def paintEvent(self, e):
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        r = self.target_rect()
        painter.setRenderHint(QPainter.SmoothPixmapTransform)
        painter.drawImage(r, self.image)
        painter.setPen(QPen(QColor(160, 160, 160), 1))
        painter.drawRect(r.adjusted(0, 0, -1, -1))
        if self._cursor is not None:
            radius = self.brush * r.width() / self.image.width() / 2
            painter.setRenderHint(QPainter.Antialiasing)
            painter.setPen(QPen(QColor(0, 120, 215), 1))
            painter.drawEllipse(self._cursor, radius, radius)
        painter.end()
