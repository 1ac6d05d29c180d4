"""Make sure Qt has an X display: start a private Xvfb when none is set (headless machines)."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys

from napari_dcmix.errors import DcmixError

XVFB_SCREEN = "1600x1200x24"


def ensure_display() -> bool:
    """Start Xvfb and set DISPLAY when no display is available; return True if one was started.

    On Linux without ``DISPLAY``/``WAYLAND_DISPLAY`` Qt would abort; we start ``Xvfb`` on a free
    display number (``-displayfd``) and stop it when the process exits.
    """
    if not sys.platform.startswith("linux"):
        return False
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return False
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise DcmixError(
            "No display is set and Xvfb is not installed, so napari cannot open a window. "
            "Install it (Debian/Ubuntu: apt-get install --no-install-recommends xvfb xauth "
            "libxcb-icccm4 libxcb-keysyms1) or run from a desktop session."
        )
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", XVFB_SCREEN, "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        raise DcmixError("Xvfb did not start (no display number reported).")
    os.environ["DISPLAY"] = f":{number}"
    os.environ["QT_QPA_PLATFORM"] = "xcb"  # offscreen renders a black canvas

    def _stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()

    atexit.register(_stop)
    return True
