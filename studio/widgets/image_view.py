"""An image view with zoom (wheel, +/-), pan (drag) and fit (double-click), a caption, and a
message in place of the image while there is none or when something went wrong."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from studio.images import array_to_qimage


MIN_SHOWN = 24  # px across: a fitted image is never drawn thinner


class ImageView(QGraphicsView):
    files_dropped = Signal(list)

    def __init__(self, placeholder: str = "", parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.SmoothTransformation)
        self.scene().addItem(self.item)
        self.setRenderHint(QPainter.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setMinimumSize(160, 160)
        self.setAlignment(Qt.AlignCenter)
        self.placeholder, self.message, self.array = placeholder, "", None
        self.busy = False
        self.warning = ""
        self.fitted = True
        self.setToolTip("Wheel: zoom; drag: pan; double-click: fit to the view")
        self.setAcceptDrops(True)

    def set_array(self, array: np.ndarray | None) -> None:
        self.array = array
        self.message = ""
        self.item.setPixmap(QPixmap() if array is None else QPixmap.fromImage(array_to_qimage(array)))
        self.scene().setSceneRect(self.item.boundingRect())
        if self.fitted:
            self.fit()
        self.viewport().update()

    def set_busy(self, busy: bool) -> None:
        """While a newer render is on its way the image shown is not current: dim it and say so."""
        if busy != self.busy:
            self.busy = busy
            self.item.setOpacity(0.4 if busy else 1.0)
            self.viewport().update()

    def set_warning(self, text: str) -> None:
        """A one-line banner over the top of the view (e.g. an input unlike the training data)."""
        self.warning = text
        self.setToolTip(text or "Wheel: zoom; drag: pan; double-click: fit to the view")
        self.viewport().update()

    def set_message(self, text: str) -> None:
        """Show ``text`` over the view (an error or a hint), keeping the last image dimmed."""
        self.message = text
        self.viewport().update()

    def fit(self) -> None:
        """The whole image in the view; one so thin that it would be under :data:`MIN_SHOWN` px across
        (a 4000 x 4 strip) is shown that thick from its start instead, the rest a pan away."""
        self.fitted = True
        pixmap = self.item.pixmap()
        if pixmap.isNull():
            return
        self.fitInView(self.item, Qt.KeepAspectRatio)
        shown = self.transform().m11() * min(pixmap.width(), pixmap.height())
        if 0 < shown < MIN_SHOWN:
            k = MIN_SHOWN / shown
            self.scale(k, k)
            self.centerOn(0, 0)

    def zoom(self, factor: float) -> None:
        self.fitted = False
        self.scale(factor, factor)

    def wheelEvent(self, event):
        self.zoom(1.25 if event.angleDelta().y() > 0 else 0.8)

    def mouseDoubleClickEvent(self, event):
        self.fit()

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self.fitted:
            self.fit()

    def drawForeground(self, painter, rect):
        if self.warning and not self.message:
            painter.save()
            painter.resetTransform()
            bar = self.viewport().rect()
            needed = painter.fontMetrics().boundingRect(bar.adjusted(6, 0, -6, 0), Qt.TextWordWrap, self.warning)
            bar.setHeight(needed.height() + 10)  # every wrapped line of the warning
            painter.fillRect(bar, QColor(255, 236, 160))
            painter.setPen(QColor(90, 60, 0))
            painter.drawText(bar.adjusted(6, 2, -6, -2), Qt.AlignLeft | Qt.AlignVCenter | Qt.TextWordWrap, self.warning)
            painter.restore()
        text = self.message or (self.placeholder if self.item.pixmap().isNull() else "")
        if self.busy and not self.message:
            painter.save()
            painter.resetTransform()
            r = self.viewport().rect()
            badge = r.adjusted(r.width() // 2 - 60, r.height() // 2 - 14, -(r.width() // 2 - 60), -(r.height() // 2 - 14))
            painter.setOpacity(0.85)
            painter.fillRect(badge, Qt.black)
            painter.setOpacity(1.0)
            painter.setPen(Qt.white)
            painter.drawText(badge, Qt.AlignCenter, "rendering...")
            painter.restore()
            return
        if not text:
            return
        painter.save()
        painter.resetTransform()
        r = self.viewport().rect().adjusted(12, 12, -12, -12)
        if self.message and not self.item.pixmap().isNull():
            painter.fillRect(self.viewport().rect(), Qt.white)
            painter.setOpacity(0.9)
        painter.setPen(Qt.darkRed if self.message else Qt.gray)
        painter.drawText(r, Qt.AlignCenter | Qt.TextWordWrap, text)
        painter.restore()

    # drops are forwarded to the page
    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.files_dropped.emit(paths)
            event.acceptProposedAction()
