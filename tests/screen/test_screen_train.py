"""The training ensemble on Dask: members (and per-class layers) as tasks on worker processes
give the same models and evidence as training in this process."""

from __future__ import annotations

import numpy as np
import torch

from napari_dcmix.cli import main
from napari_dcmix.model import TrainConfig, train_arrays
from napari_dcmix.screen import dask_client


def _run(gen):
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def test_members_on_a_local_cluster_equal_members_in_this_process() -> None:
    """Three classes, so the one-vs-reference layers run as tasks too. Dask workers run torch
    on one thread: so does the in-process run here, for the same kernels."""
    rng = np.random.default_rng(0)
    y = np.arange(36) % 3
    x = rng.normal(size=(36, 4, 16, 16)).astype(np.float32)
    for cls in (1, 2):
        x[y == cls, cls, 4:12, 4:12] += 2.5
    y_names = np.array(["control", "a", "b"])[y]
    cfg = TrainConfig(epochs=2, batch_size=8, ensemble=2, crop=16, parallel=1)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _, here = _run(train_arrays(None, x, y_names, cfg, groups=np.arange(36)))
    finally:
        torch.set_num_threads(previous)
    with dask_client(workers=2) as client:
        events, there = _run(train_arrays(None, x, y_names, cfg, groups=np.arange(36),
                                          client=client))  # fmt: skip
    assert sum("done on a Dask worker" in e.message for e in events) == 2 + 2 * 2
    a, b = here.model.state_dict(), there.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert here.evidence == there.evidence
    assert set(there.evidence["per_class"]) == {"a", "b"}


def test_train_cli_on_workers_and_an_unreachable_scheduler(screen_plates, tmp_path, capsys):
    plate = str(screen_plates[0])
    labels = tmp_path / "labels.csv"
    from napari_dcmix.plate import open_plate

    wells = open_plate(plate).wells
    labels.write_text("well,label\n" + "".join(
        f"{w},{'treated' if i % 2 else 'control'}\n" for i, w in enumerate(wells)
    ))  # fmt: skip
    out = tmp_path / "m.pt"
    assert main(["train", plate, "--labels", str(labels), "--out", str(out), "--epochs", "1",
                 "--crop", "32", "--ensemble", "2", "--workers", "2"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "member 1/2 done on a Dask worker" in text and out.is_file()
    assert "held out (2-fold cross-validation by well" in text
    code = main(["train", plate, "--labels", str(labels), "--out", str(tmp_path / "n.pt"),
                 "--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "tcp://127.0.0.1:9" in err and "Traceback" not in err
    assert not (tmp_path / "n.pt").exists()
