"""The studio names what stops Qt's platform plugin from loading, before Qt aborts."""
from studio.platform_check import platform_problem


def everything(name):
    return f"lib{name}.so"


def test_a_missing_xcb_cursor_is_named_with_its_package():
    msg = platform_problem({"DISPLAY": ":0"}, "linux", lambda name: None if name == "xcb-cursor" else everything(name))
    assert "libxcb-cursor0" in msg and "apt install libxcb-cursor0" in msg
    assert "libxkbcommon" not in msg


def test_no_display_is_said_plainly_and_offscreen_is_fine():
    assert "DISPLAY" in platform_problem({}, "linux", everything)
    assert platform_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", lambda name: None) is None
    assert platform_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux", lambda name: None) is None
    assert platform_problem({"DISPLAY": ":0"}, "linux", everything) is None
    assert platform_problem({}, "win32", lambda name: None) is None
