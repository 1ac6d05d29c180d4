"""Screens on a local Dask cluster: the same CSV as in-process, the model loaded once per
worker, and the bad inputs of the cluster options."""

from __future__ import annotations

import socket
import time

import pytest
from conftest import assert_same_predictions, keys_once, read_rows, run_cli

from napari_dcmix.cli import main


def test_local_cluster_writes_the_in_process_csv(screen_plates, reference_csv, tmp_path):
    """--workers 2: two worker processes on this machine; batches of wells stream back and the
    CSV is in plate, well, site order, equal to the in-process run's."""
    out = tmp_path / "local.csv"
    result = run_cli("predict", *screen_plates, "--out", out, "--workers", "2", "--device", "cpu",
                     "--max-task-sites", "8")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "in 2 local Dask workers" in result.stdout
    keys_once(out)
    assert_same_predictions(out, reference_csv)
    assert not out.with_name(out.name + ".partial").exists()
    assert "Traceback" not in result.stderr


def test_each_worker_loads_the_model_once(screen_plates, reference_csv):
    """Through the Python API: 12 tasks on 2 workers, each worker process loads the model
    (sent once as a worker plugin, cached by its SHA-256) for its first task only."""
    from napari_dcmix.model import default_model_path
    from napari_dcmix.model.train_settings import PredictConfig
    from napari_dcmix.plate import open_plate
    from napari_dcmix.screen import predict_screen

    plates = [open_plate(p) for p in screen_plates]
    config = PredictConfig(device="cpu", workers=2, max_task_sites=8)
    gen = predict_screen(default_model_path(), plates, config)
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    tasks = result.tasks
    assert len(tasks) == 12 and result.workers == 2
    assert sorted(t.task.index for t in tasks) == list(range(12))  # each task's result once
    by_pid: dict[int, list] = {}
    for t in tasks:
        by_pid.setdefault(t.pid, []).append(t)
    assert len(by_pid) == 2  # both workers worked
    for runs in by_pid.values():
        assert sum(t.model_loaded for t in runs) == 1
        first = min(runs, key=lambda t: t.started)
        assert first.model_loaded and first.load_s > 0
    assert events[-1].done == events[-1].total == 96
    # the same probabilities as the in-process CLI run
    ref = {(r["path"], r["well"], r["site"]): r for r in read_rows(reference_csv)
           if r["level"] == "site"}  # fmt: skip
    for pred in result.predictions:
        for s in pred.sites:
            row = ref[(pred.path, s.well, str(s.site))]
            assert abs(float(row["p_treated"]) - s.probs[1]) <= 1.01e-6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_scheduler_that_does_not_answer_is_named(screen_plates, tmp_path, capsys):
    address = f"tcp://127.0.0.1:{_free_port()}"
    out = tmp_path / "none.csv"
    start = time.monotonic()
    code = main(["predict", str(screen_plates[0]), "--out", str(out), "--scheduler", address,
                 "--scheduler-timeout", "1.5", "--quiet"])  # fmt: skip
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 2
    assert f"no Dask scheduler answered at {address} within 1.5 s" in err
    assert "Traceback" not in err and elapsed < 20
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [(["--workers", "0"], "--workers: expected a number of worker processes >= 1, found 0"),
     (["--workers", "-2"], "found -2"),
     (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "give one of them"),
     (["--max-task-sites", "0"], "sites per task: expected an integer >= 1, found 0"),
     (["--scheduler-timeout", "0"], "--scheduler-timeout: expected seconds > 0, found 0.0"),
     (["--scheduler", "nonsense://x", "--scheduler-timeout", "1"], "nonsense://x")],
)  # fmt: skip
def test_bad_cluster_options(screen_plates, tmp_path, capsys, options, message):
    out = tmp_path / "bad.csv"
    code = main(["predict", str(screen_plates[0]), "--out", str(out), "--quiet", *options])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()
