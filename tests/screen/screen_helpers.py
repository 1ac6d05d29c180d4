"""Helpers of the screen tests: the CLI in a subprocess, CSV comparisons, real Dask processes
(``dask scheduler`` and ``dask worker`` commands on 127.0.0.1)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DASK = Path(sys.executable).with_name("dask")


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "napari_dcmix.cli", *map(str, args)]


def run_cli(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess (exit status, stdout, stderr)."""
    return subprocess.run(
        cli_command(*args), capture_output=True, text=True, timeout=timeout, **kwargs
    )


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def assert_same_predictions(path: Path, reference: Path, tol: float = 1e-6) -> None:
    """The same rows in the same order; probabilities and confidences within ``tol`` (plus the
    CSV's rounding to 6 decimals)."""
    rows, ref = read_rows(path), read_rows(reference)
    assert list(rows[0]) == list(ref[0])
    assert len(rows) == len(ref)
    numeric = [c for c in ref[0] if c.startswith("p_") or c == "confidence"]
    for a, b in zip(rows, ref, strict=True):
        assert {k: v for k, v in a.items() if k not in numeric} == {
            k: v for k, v in b.items() if k not in numeric
        }
        for c in numeric:
            assert abs(float(a[c]) - float(b[c])) <= tol + 1.01e-6, (a, b, c)


def keys_once(path: Path) -> None:
    """Every (path, well, site, level) row exactly once."""
    keys = [(r["path"], r["well"], r["site"], r["level"]) for r in read_rows(path)]
    assert len(keys) == len(set(keys))


class DaskProcesses:
    """A ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 (killed at the end)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.scheduler: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.file = folder / "scheduler.json"
        self.address = ""

    def env(self) -> dict[str, str]:
        return {**os.environ, "OMP_NUM_THREADS": "1", "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}

    def start_scheduler(self) -> str:
        self.file.unlink(missing_ok=True)
        log = open(self.folder / "scheduler.log", "ab")  # noqa: SIM115 - closed with the process
        self.scheduler = subprocess.Popen(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(self.file)],
            stdout=log, stderr=log, env=self.env(),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.file.exists():
                try:
                    self.address = json.loads(self.file.read_text())["address"]
                    return self.address
                except (ValueError, KeyError):
                    pass
            assert self.scheduler.poll() is None, "dask scheduler exited"
            time.sleep(0.05)
        raise AssertionError("dask scheduler did not start within 60 s")

    def start_workers(self, n: int) -> None:
        for i in range(n):
            log = open(self.folder / f"worker{len(self.workers)}.log", "ab")  # noqa: SIM115
            self.workers.append(subprocess.Popen(
                [str(DASK), "worker", self.address, "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--death-timeout", "30", "--name", f"w{i}",
                 "--local-directory", str(self.folder)],
                stdout=log, stderr=log, env=self.env(),
            ))  # fmt: skip

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=timeout)

    def kill(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc is not None:
                self.kill(proc)


def wait_for(predicate, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def n_records(out: Path) -> int:
    folder = out.with_name(out.name + ".partial")
    return len(list(folder.glob("wells-*.json"))) if folder.is_dir() else 0
