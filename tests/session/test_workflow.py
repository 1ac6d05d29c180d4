"""The user's workflow on the Qt-free session: open, predict, annotate, fine-tune, cancel,
export; every change is announced by an event."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from napari_dcmix.errors import DcmixError, LabelsError
from napari_dcmix.session import CANCELLED, DONE, DcmixSession, drain


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_session_imports_neither_qt_nor_napari():
    import subprocess
    import sys

    code = (
        "import sys, napari_dcmix.session, napari_dcmix.report, napari_dcmix.plate.channel_map\n"
        "from napari_dcmix.session import DcmixSession\nDcmixSession()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'napari','qtpy','PyQt6','PyQt5','PySide6','magicgui','matplotlib.pyplot'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_open_predict_and_export(session, synth_plate, recorder, tmp_path):
    seen = recorder(session)
    assert session.plate.name == synth_plate.name and session.predictions is None
    events = []
    preds = session.predict()
    for event in preds:
        events.append(event)
    assert events and events[-1].done == events[-1].total == len(synth_plate.wells) * 2
    result = session.predictions
    assert result is not None and result.device == "cpu" and session.device_used == "cpu"
    assert [w.well for w in result.wells()] == synth_plate.wells
    names = [n for n, _ in seen]
    assert names[0] == "task_started" and names[-1] == "task_finished"
    assert ("predictions_changed", (session.current_key,)) in seen
    assert seen[-1][1][0].outcome == DONE and session.task is None

    out = session.export_predictions(tmp_path / "wells")  # .csv is added
    assert out == tmp_path / "wells.csv"
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["well"] for r in rows] == synth_plate.wells
    assert [r["prediction"] for r in rows] == [w.prediction for w in result.wells()]
    assert np.allclose([float(r["p_treated"]) for r in rows], [w.probs[1] for w in result.wells()],
                       atol=1e-4)  # fmt: skip
    # nothing the user had is replaced without asking
    out.write_text("keep me")
    with pytest.raises(DcmixError, match="exists"):
        session.export_predictions(out)
    assert out.read_text() == "keep me"
    session.export_predictions(out, overwrite=True)
    assert out.read_text().startswith("plate,well,prediction,confidence,n_sites,p_control")


def test_annotations_classes_and_plate_maps(session, synth_plate, recorder, tmp_path):
    seen = recorder(session)
    wells = synth_plate.wells
    session.annotate(wells[:3], "treated")
    session.annotate([wells[1]], None)
    assert session.annotations == {wells[0]: "treated", wells[2]: "treated"}
    session.annotate([wells[4]], "odd")  # a new class joins the list
    assert session.classes() == ["control", "treated", "odd"]
    session.rename_class("treated", "hit")
    assert set(session.annotations.values()) == {"hit", "odd"}
    with pytest.raises(LabelsError, match="unique"):
        session.rename_class("hit", "odd")
    assert session.remove_class("odd") == 1 and "odd" not in session.classes()
    assert ("annotations_changed", (session.current_key,)) in seen
    with pytest.raises(LabelsError, match="does not have: Z99"):
        session.set_annotations({"Z99": "hit"})

    path = session.save_annotations(tmp_path / "labels.csv")
    session.set_annotations({})
    assert session.import_annotations(path) == {wells[0]: "hit", wells[2]: "hit"}
    assert session.annotations == {wells[0]: "hit", wells[2]: "hit"}
    with pytest.raises(DcmixError, match="exists"):
        session.save_annotations(path)
    session.import_annotations(synth_plate.labels_csv)
    assert session.annotations == synth_plate.labels


def test_plates_keep_their_own_state(session, synth_plate, tmp_path):
    from napari_dcmix.synthetic import write_synthetic_plate

    other = write_synthetic_plate(tmp_path / "o", n_wells=4, sites=1, image_size=32, seed=1,
                                  plate_name="Other")  # fmt: skip
    first = session.current_key
    session.set_annotations({synth_plate.wells[0]: "treated"})
    drain(session.predict())
    session.open_plate(other.path)
    assert session.plate.name == "Other" and session.annotations == {}
    assert session.predictions is None
    session.add_class("third")
    session.set_current(first)
    assert session.annotations == {synth_plate.wells[0]: "treated"}
    assert session.predictions is not None and "third" not in session.classes()


def test_finetune_finds_the_phenotype_and_cancel_keeps_the_model(session, synth_plate, recorder):
    seen = recorder(session)
    before = session.model
    params = _params(before)
    session.set_annotations(synth_plate.labels)
    # cancel mid-training: the previous model stays, untouched
    gen = session.fine_tune(mode="all", epochs=200)
    for _ in gen:
        if len(session.losses) >= 2:
            session.cancel()
    assert session.model is before and not session.model_dirty
    assert all(torch.equal(a, b) for a, b in zip(params, _params(before), strict=True))
    finished = [a[0] for n, a in seen if n == "task_finished"]
    assert finished[-1].outcome == CANCELLED
    assert seen[-1] == ("task_finished", (finished[-1],))
    # the chart is told to go back to the model's importance
    assert ("importance_preview", (None, "")) in seen

    seen.clear()
    result = drain(session.fine_tune(mode="all", epochs=10, mixing_lr=0.2, seed=0, ensemble=2))
    assert result.model is session.model and session.model_dirty
    info = session.model.training_info  # the overrides were used, not the defaults
    assert (info["mode"], info["epochs"], info["mixing_lr"]) == ("all", 10, 0.2)
    assert len(session.model.members) == 2
    assert len(session.history) == 10 * 2 and len(session.runs) == 1  # every member's epochs
    previews = {a[1] for n, a in seen if n == "importance_preview" and a[0] is not None}
    assert previews == {f"Channel importance (member {m}/2, epoch {e})"
                        for m in (1, 2) for e in range(1, 11)}  # fmt: skip
    ranking = sorted(session.model.channel_importance().items(), key=lambda kv: -kv[1])
    assert ranking[0][0] == "Mito"
    assert ("model_changed", ()) in seen


def test_finetune_refuses_without_two_classes_or_with_unknown_options(session, synth_plate):
    with pytest.raises(DcmixError, match="no wells are annotated"):
        session.finetune_task()
    session.set_annotations({w: "treated" for w in synth_plate.wells[:2]})
    with pytest.raises(DcmixError, match="at least two classes"):
        session.finetune_task()
    session.set_annotations(synth_plate.labels)
    with pytest.raises(TypeError, match="mixing_rl"):
        session.finetune_task(mixing_rl=0.1)
    assert session.task is None


def test_one_task_at_a_time(session):
    task = session.predict_task()
    with pytest.raises(DcmixError, match="Predict is running"):
        session.predict_task()
    task.cancel()
    drain(session.run(task))
    assert task.outcome == CANCELLED and session.predictions is None and session.task is None


def test_a_generator_never_run_starts_no_task(session, synth_plate):
    """predict() / fine_tune() start their task at the first next(): one never run leaves the
    session idle; cancel() ends a task whose work never started."""
    session.set_annotations(synth_plate.labels)
    unused = [session.predict(), session.fine_tune(epochs=1)]
    assert not session.busy and session.task is None
    del unused
    task = session.predict_task()  # made, never run
    assert session.busy
    session.cancel()
    assert not session.busy and task.outcome == CANCELLED
    assert drain(session.run(task)) is None and not session.busy  # ended: it does not start
    gen = session.predict()
    next(gen)
    assert session.busy
    gen.close()
    assert not session.busy
    assert drain(session.predict()) is not None


def test_clear_forgets_the_ablation_check(session, synth_plate, recorder):
    session.set_annotations(synth_plate.labels)
    drain(session.run(session.ablation_task()))
    assert session.ablation is not None
    seen = recorder(session)
    session.clear()
    assert session.ablation is None and ("ablation_changed", ()) in seen


def test_no_plate_and_stain_mismatch(small_model):
    from napari_dcmix.model import build_model

    s = DcmixSession()
    with pytest.raises(DcmixError, match="open a plate first"):
        s.predict_task()
    s.load_model(build_model(["DNA", "ER"], ["a", "b"], input_size=32))
    assert s.model_is_default is False


def test_save_model_asks_by_refusing(session, tmp_path):
    from napari_dcmix.model import load_model

    path = session.save_model(tmp_path / "model")
    assert path == tmp_path / "model.pt" and not session.model_dirty
    stamp = path.stat().st_mtime_ns
    with pytest.raises(DcmixError, match="exists"):
        session.save_model(path)
    assert path.stat().st_mtime_ns == stamp
    assert session.save_model(path, overwrite=True) == path
    assert load_model(path).channel_names == session.model.channel_names


def test_network_view_and_heatmap_scores(session, synth_plate):
    from napari_dcmix.session import ScoreSpec
    from napari_dcmix.session.scores import score_colors, well_scores

    session.focus(synth_plate.wells[3], 2)
    view = session.network_view()
    assert (view.well, view.site) == (synth_plate.wells[3], 2)
    assert view.images.shape == (session.model.k, 64, 64) and view.images.dtype == np.float32
    with pytest.raises(DcmixError, match="no site 9"):
        session.focus(synth_plate.wells[0], 9)

    preds = drain(session.predict())
    wells, p = well_scores(preds, ScoreSpec())  # default: p(last class)
    assert wells == synth_plate.wells
    assert np.allclose(p, [w.probs[1] for w in preds.wells()])
    _, margin = well_scores(preds, ScoreSpec("margin", "control", "treated"))
    assert np.allclose(margin, [w.probs[0] - w.probs[1] for w in preds.wells()])
    colors = score_colors(np.array([0.0, 1.0]), ScoreSpec().resolved(preds.class_names))
    assert colors.shape == (2, 4) and not np.allclose(colors[0], colors[1])
