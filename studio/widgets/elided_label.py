"""A label of at most a few lines: the text wrapped at word boundaries to the label's width, the
last line cut with an ellipsis when it runs over, the whole text in the tooltip. Its height is
fixed, so a long text never pushes the rows below it (or the window) down."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy


class ElidedLabel(QLabel):
    def __init__(self, text: str = "", lines: int = 2, parent=None):
        super().__init__(parent)
        self.lines = lines
        self.full_text = ""
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)  # the layout gives the width; never asks for more
        self.setFixedHeight(self.fontMetrics().lineSpacing() * lines + 2)
        self.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        self.full_text = text
        self.setToolTip(text)
        self._layout_text()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._layout_text()

    def _layout_text(self) -> None:
        # 2 px spare: elidedText cuts a row exactly as wide as the label
        fm, width = self.fontMetrics(), max(1, self.contentsRect().width() - 2)
        rows, row = [], ""
        for word in self.full_text.split():
            joined = f"{row} {word}" if row else word
            if row and fm.horizontalAdvance(joined) > width:
                rows.append(row)
                row = word
            else:
                row = joined
        if row:
            rows.append(row)
        if len(rows) > self.lines:
            rows = rows[:self.lines - 1] + [" ".join(rows[self.lines - 1:])]
        rows = [fm.elidedText(r, Qt.ElideRight, width) for r in rows]
        super().setText("\n".join(rows))
