"""The image view: a fitted image is whole in the view, and never drawn too thin to see."""
import numpy as np

from studio.widgets.image_view import MIN_SHOWN, ImageView


def red_pixels(view) -> int:
    a = view.viewport().grab().toImage()
    return sum(1 for y in range(0, a.height(), 2) for x in range(0, a.width(), 2)
               if a.pixelColor(x, y).red() > 200 and a.pixelColor(x, y).green() < 60)


def test_a_thin_strip_is_shown_thick_enough_to_see_and_a_photo_whole(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(300, 300)
    view.show()
    strip = np.zeros((4, 4000, 3), np.uint8)
    strip[..., 0] = 255
    view.set_array(strip)  # fitted whole it would be 0.3 px tall: blank
    assert view.transform().m11() * 4 >= MIN_SHOWN - 1e-6
    assert red_pixels(view) > 50
    photo = np.zeros((200, 100, 3), np.uint8)
    photo[..., 0] = 255
    view.set_array(photo)
    scale = view.transform().m11()
    assert scale * 200 <= view.viewport().height() + 1 and scale * 200 >= view.viewport().height() - 4
