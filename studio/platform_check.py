"""Before Qt starts: on Linux, will its ``xcb`` platform plugin load? Qt aborts with a long,
generic message when it cannot; this names what is missing and how to get it."""
from __future__ import annotations

import ctypes.util
import os
import sys

# the libraries Qt's xcb plugin loads beyond libxcb itself (Debian / Ubuntu package names)
XCB_LIBRARIES = {"xcb-cursor": "libxcb-cursor0", "xkbcommon-x11": "libxkbcommon-x11-0",
                 "xcb-icccm": "libxcb-icccm4", "xcb-keysyms": "libxcb-keysyms1", "xcb-shape": "libxcb-shape0"}


def platform_problem(environ=None, platform: str = sys.platform, find_library=ctypes.util.find_library) -> str | None:
    """A message saying why Qt's platform plugin cannot load here, or None when it should."""
    env = os.environ if environ is None else environ
    if not platform.startswith("linux"):
        return None
    chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen and not chosen.startswith("xcb"):
        return None  # offscreen, wayland, vnc...: Qt's own checks apply
    if not chosen and env.get("WAYLAND_DISPLAY"):
        return None
    if not env.get("DISPLAY"):
        return ("No display: DISPLAY is not set. Run GAN Studio in a desktop session, or use "
                "`gan-studio --screenshot FILE` (or QT_QPA_PLATFORM=offscreen) without one.")
    missing = [pkg for lib, pkg in XCB_LIBRARIES.items() if find_library(lib) is None]
    if missing:
        return ("Qt's X11 platform plugin needs system libraries that are missing: "
                f"{', '.join(missing)}.\nInstall them, e.g. on Debian or Ubuntu: sudo apt install {' '.join(missing)}")
    return None
