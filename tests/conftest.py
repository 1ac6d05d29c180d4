"""Test harness: real napari under Xvfb (xcb), CPU-only seeded torch, a throw-away napari config."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

# Before Qt or torch is imported anywhere.
if sys.platform.startswith("linux"):
    # offscreen renders a black canvas or fails in add_image; xcb on Xvfb is the tested path.
    os.environ["QT_QPA_PLATFORM"] = "xcb"
os.environ.setdefault("QT_API", "pyqt6")
os.environ["CUDA_VISIBLE_DEVICES"] = ""  # tests never use a GPU
_config_dir = tempfile.mkdtemp(prefix="dcmix-napari-config-")
os.environ["NAPARI_CONFIG"] = os.path.join(_config_dir, "settings.yaml")

import pytest  # noqa: E402


def pytest_sessionstart(session: pytest.Session) -> None:
    # pytest-xvfb has set DISPLAY by now when Xvfb exists. Without a display Qt calls abort(),
    # which pytest's capture turns into a bare rc 134: stop early with a readable message.
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        hint = (
            "Xvfb is not installed" if shutil.which("Xvfb") is None else "no X display was started"
        )
        pytest.exit(
            f"napari-dcmix tests need an X display and {hint}. Install it with "
            "`apt-get install --no-install-recommends xvfb xauth libxcb-icccm4 libxcb-keysyms1` "
            "(or run `make test`, which installs it), then run the tests again.",
            returncode=3,
        )


@pytest.fixture(autouse=True)
def _seeded_cpu_torch():
    """Seed torch (when a test uses it) and keep it on few CPU threads."""
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(2)
    yield
