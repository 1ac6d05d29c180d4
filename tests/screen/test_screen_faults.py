"""Exactly once under faults, with real Dask processes: a worker killed mid-run, a lost
scheduler, then ``--resume``."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time

import pytest
from screen_helpers import (
    assert_same_predictions,
    cli_command,
    keys_once,
    n_records,
    run_cli,
    wait_for,
)

from napari_dcmix.cli import main
from napari_dcmix.screen import ExecutorError, dask_client, run_tasks


def test_a_worker_killed_mid_run_changes_nothing(screen_plates, reference_csv, dask_processes,
                                                 tmp_path):  # fmt: skip
    """SIGKILL one of two workers after the first batch of wells came back: Dask reruns its
    tasks on the other; every site row and well row is in the CSV once, as in-process."""
    address = dask_processes.start_scheduler()
    dask_processes.start_workers(2)
    dask_processes.wait_for_workers(2)
    out = tmp_path / "cluster.csv"
    proc = subprocess.Popen(
        cli_command("predict", *screen_plates, "--out", out, "--scheduler", address,
                    "--device", "cpu", "--max-task-sites", "2", "--quiet"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: n_records(out) >= 1 or proc.poll() is not None, what="a first batch")
        assert proc.poll() is None, proc.communicate()
        dask_processes.kill(dask_processes.workers[0])
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert dask_processes.workers[0].returncode == -signal.SIGKILL
    keys_once(out)
    assert_same_predictions(out, reference_csv)
    assert not out.with_name(out.name + ".partial").exists()

    # The surviving worker goes on: a task that meets a corrupt site ends the run with the
    # plate, well and site named (exit 2), raised on the worker and reported here.
    broken = tmp_path / "broken"
    shutil.copytree(screen_plates[0], broken)
    (broken / "A03_s1.tif").write_bytes((broken / "A03_s1.tif").read_bytes()[:200])
    bad = run_cli("predict", broken, "--out", tmp_path / "bad.csv", "--scheduler", address,
                  "--device", "cpu", "--quiet")  # fmt: skip
    assert bad.returncode == 2, bad.stderr
    assert "error: plate 'broken' well A03 site 1" in bad.stderr and "A03_s1.tif" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "bad.csv").exists()


def test_a_lost_scheduler_ends_the_run_and_resume_finishes_it(
    screen_plates, reference_csv, dask_processes, tmp_path, capsys
):
    """The scheduler is killed mid-run: the CLI says so and exits 2 (no hang), the finished
    wells stay in OUT.partial, no CSV at OUT; --resume (in-process) completes the same CSV."""
    address = dask_processes.start_scheduler()
    dask_processes.start_workers(1)
    dask_processes.wait_for_workers(1)
    out = tmp_path / "lost.csv"
    proc = subprocess.Popen(
        cli_command("predict", *screen_plates, "--out", out, "--scheduler", address,
                    "--device", "cpu", "--max-task-sites", "2", "--quiet"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: n_records(out) >= 2 or proc.poll() is not None, what="two batches")
        assert proc.poll() is None, proc.communicate()
        dask_processes.kill(dask_processes.scheduler)
        _, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, stderr
    assert f"lost the connection to the Dask scheduler at {address}" in stderr, stderr
    assert "Traceback" not in stderr and "--resume" in stderr, stderr
    assert not out.exists()
    kept = n_records(out)
    assert kept >= 2
    assert main(["predict", *map(str, screen_plates), "--out", str(out), "--device", "cpu",
                 "--resume", "--quiet"]) == 0  # fmt: skip
    assert f"sites, {kept * 2} from an earlier run" in capsys.readouterr().out
    keys_once(out)
    assert_same_predictions(out, reference_csv)


def test_a_scheduler_without_workers_is_given_up_on(dask_processes):
    """``run_tasks`` (the executor the lead's ensembles reuse) on a scheduler that has no
    worker: an error naming the scheduler after ``no_worker_timeout``, not a hang."""
    address = dask_processes.start_scheduler()
    with dask_client(scheduler=address, timeout=10) as client:
        start = time.monotonic()
        with pytest.raises(ExecutorError, match=f"scheduler at {address} has had no worker"):
            list(run_tasks(client, abs, [(-1,), (-2,)], no_worker_timeout=1.0))
        assert time.monotonic() - start < 15
    # in-process (no client): the same call runs the tasks here, in order
    assert list(run_tasks(None, abs, [(-1,), (-2,)])) == [(0, 1), (1, 2)]
