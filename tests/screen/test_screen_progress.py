"""Progress: a tqdm bar on a terminal (a real pseudo-terminal), a line per plate otherwise,
nothing with --quiet; the training helper for ``train``."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios

import numpy as np
from screen_helpers import cli_command


def _run_in_terminal(args: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run a command with stdout and stderr on a pseudo-terminal; its exit status and output."""
    master, slave = pty.openpty()
    # a terminal 120 columns wide (a fresh pseudo-terminal reports 0 x 0)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm"}
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side closed
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=timeout)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_on_a_terminal(screen_plates, tmp_path):
    out = tmp_path / "bar.csv"
    code, text = _run_in_terminal(cli_command("predict", *screen_plates[:2], "--out", out,
                                              "--device", "cpu"))  # fmt: skip
    assert code == 0, text
    # tqdm's bar: the total over plates, sites done / total, rate and time left
    assert re.search(r"2 plates: 100%\|[^|]*\| 64/64 \[[0-9:]+<00:00, *[0-9.]+ ?site/s", text)
    assert "\r" in text  # redrawn in place
    # a line per plate as it finishes, above the bars
    for name in ("Screen0", "Screen1"):
        assert re.search(rf"{name}: 32/32 sites in [0-9.]+ s, [0-9.]+ sites/s on cpu", text)
    assert "wrote" in text


def test_a_line_per_plate_when_not_a_terminal(screen_plates, tmp_path):
    out = tmp_path / "lines.csv"
    result = subprocess.run(cli_command("predict", *screen_plates[:2], "--out", out,
                                        "--device", "cpu"),
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "predicting 2 plate(s), 64 sites, in this process"
    assert re.fullmatch(r"Screen0: 32/32 sites in [0-9.]+ s, [0-9.]+ sites/s on cpu", lines[1])
    assert re.fullmatch(r"Screen1: 32/32 sites in [0-9.]+ s, [0-9.]+ sites/s on cpu", lines[2])
    assert lines[3].startswith("wrote ") and len(lines) == 4
    assert "\r" not in result.stdout + result.stderr and "%|" not in result.stderr


def test_quiet_prints_only_the_result(screen_plates, tmp_path, capsys):
    from napari_dcmix.cli import main

    out = tmp_path / "quiet.csv"
    assert main(["predict", str(screen_plates[0]), "--out", str(out), "--device", "cpu",
                 "--quiet"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.splitlines() == [f"wrote {out}: 32 sites, 16 wells (device cpu)"]


def _training(epochs: int = 2):
    from napari_dcmix.model import TrainConfig, train_arrays

    rng = np.random.default_rng(0)
    x = rng.integers(100, 4000, size=(12, 3, 24, 24)).astype(np.uint16)
    y = ["a", "a", "b", "b"] * 3  # 6 wells of 2 images (groups), 3 per class
    config = TrainConfig(epochs=epochs, batch_size=4, input_size=16, seed=0, ensemble=2)
    return train_arrays(None, x, y, config, channel_names=["c1", "c2", "c3"],
                        groups=np.arange(12) // 2)  # fmt: skip


def test_training_progress_helper(capsys):
    """``follow_training`` drives a real training generator: one line per epoch off a
    terminal, a bar over every step otherwise; it returns the trained result."""
    from napari_dcmix.cli._progress import follow_training

    result = follow_training(_training(), "lines")
    assert result.model is not None and len(result.history) == 4  # 2 members x 2 epochs
    lines = capsys.readouterr().out.splitlines()
    assert "mapping where sites have signal 12/12" in lines  # the reading phase, once done
    epochs = sorted(line.split(":")[0] for line in lines if " done" in line)
    assert epochs == [f"member {m}/2 epoch {e}/2 done" for m in (1, 2) for e in (1, 2)]

    result = follow_training(_training(), "bar")
    assert result.model is not None
    err = capsys.readouterr().err
    assert re.search(r"training 2 member\(s\) on cpu: 100%\|[^|]*\| 8/8 ", err)
    # members train side by side on the cores: the bar ends on whichever finished last
    assert re.search(r"member [12]/2, epoch 2/2, loss \d", err)
    assert re.search(r"mapping where sites have signal: 100%\|[^|]*\| 12/12 ", err)

    assert follow_training(_training(1), "quiet").model is not None
    assert capsys.readouterr() == ("", "")
