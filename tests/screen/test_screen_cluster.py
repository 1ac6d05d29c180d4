"""Screens on a local Dask cluster: the same CSV as in-process, the model loaded once per
worker, and the bad inputs of the cluster options."""

from __future__ import annotations

import socket
import time

import pytest
from screen_helpers import assert_same_predictions, keys_once, read_rows, run_cli

from napari_dcmix.cli import main


def test_local_cluster_writes_the_in_process_csv(screen_plates, reference_csv, tmp_path):
    """--workers 2: two worker processes on this machine; 12 tasks of whole wells stream back,
    each worker process loads the model once, and the CSV (plate, well, site order) equals the
    in-process run's."""
    out = tmp_path / "local.csv"
    result = run_cli("predict", *screen_plates, "--out", out, "--workers", "2", "--device", "cpu",
                     "--max-task-sites", "8")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "in 2 local Dask workers" in result.stdout
    assert "12 tasks on 2 Dask workers; the model was loaded 2 time(s)" in result.stdout
    keys_once(out)
    assert_same_predictions(out, reference_csv)
    assert not out.with_name(out.name + ".partial").exists()
    assert "Traceback" not in result.stderr


def test_python_api_streams_progress_and_keeps_plate_order(screen_plates, reference_csv):
    """``predict_screen`` (the core the CLI drives), in-process: progress per batch, results
    per plate in well and site order, equal to the CLI's CSV."""
    from napari_dcmix.model import default_model_path
    from napari_dcmix.model.train_settings import PredictConfig
    from napari_dcmix.plate import open_plate
    from napari_dcmix.screen import predict_screen

    plates = [open_plate(p) for p in screen_plates]
    gen = predict_screen(default_model_path(), plates, PredictConfig(device="cpu", batch_size=8))
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    assert [e.done for e in events] == sorted(e.done for e in events)
    assert events[-1].done == events[-1].total == 96 and len(events) == 12
    assert [e.plate_index for e in events] == [0] * 4 + [1] * 4 + [2] * 4
    ref = {(r["path"], r["well"], r["site"]): r for r in read_rows(reference_csv)
           if r["level"] == "site"}  # fmt: skip
    for plate, pred in zip(plates, result.predictions, strict=True):
        assert [(s.well, s.site) for s in pred.sites] == plate.site_keys()
        for s in pred.sites:
            assert (
                abs(float(ref[(pred.path, s.well, str(s.site))]["p_treated"]) - s.probs[1]) < 1e-6
            )


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
