"""The Train page's preset description: at most two lines at a fixed height, the rest elided."""
from studio.widgets.elided_label import ElidedLabel

LONG = ("sketch2photo, the bundled model: pix2pix on procedural sketches -> photos, 128x128, trained on CPU "
        "in the background (~2 h on 1 core)")


def test_a_long_text_keeps_two_lines_and_its_tooltip(qtbot):
    label = ElidedLabel(LONG, lines=2)
    qtbot.addWidget(label)
    label.resize(200, 10)
    height = label.height()
    label.show()
    rows = label.text().split("\n")
    assert len(rows) == 2 and rows[-1].endswith("\u2026")
    assert all(label.fontMetrics().horizontalAdvance(r) <= label.contentsRect().width() for r in rows)
    assert label.toolTip() == LONG and label.height() == height
    assert " ".join(rows)[:-1].replace("\u2026", "") in LONG  # words in order, none cut but the last


def test_a_short_text_is_shown_whole_and_rewraps_on_resize(qtbot):
    label = ElidedLabel("BicycleGAN on procedural sketches", lines=2)
    qtbot.addWidget(label)
    label.show()  # a hidden widget gets its resize events only when shown
    label.resize(1000, 10)
    assert label.text() == "BicycleGAN on procedural sketches"
    label.resize(label.fontMetrics().horizontalAdvance("BicycleGAN on procedural") + 12, 10)
    assert label.text() == "BicycleGAN on procedural\nsketches"
    label.setText("")
    assert label.text() == ""
