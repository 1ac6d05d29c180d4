"""Save a session as a folder and open it again; moved plates; bad session folders."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from napari_dcmix.session import DcmixSession, ScoreSpec, SessionError, drain


@pytest.fixture
def worked_session(session, synth_plate):
    """Predicted, annotated (with an extra class), fine-tuned briefly (unsaved), a heatmap and
    a well in focus."""
    session.set_annotations(synth_plate.labels)
    session.add_class("unused")
    drain(session.fine_tune(mode="all", epochs=2, ensemble=2))
    drain(session.predict())
    session.set_heatmap(ScoreSpec("margin", "treated", "control"))
    session.focus(synth_plate.wells[2], 1)
    session.view = {"camera": {"center": [1.0, 2.0], "zoom": 0.5}}
    return session


def _snapshot(session: DcmixSession) -> dict:
    state = session.current
    return {
        "plate": (state.name, str(state.path)),
        "classes": state.classes,
        "annotations": dict(state.annotations),
        "predicted": [(s.well, s.site) for s in state.predictions.sites],
        "importance": {k: round(v, 6) for k, v in session.model.channel_importance().items()},
        "dirty": session.model_dirty,
        "heatmap": session.heatmap,
        "focus": state.focus,
        "history": len(session.history),
        "train": session.train_settings,
        "view": session.view,
    }


def test_save_and_open_restores_everything(worked_session, tmp_path, recorder):
    before = _snapshot(worked_session)
    folder = worked_session.save(tmp_path / "my-session")
    assert (folder / "model.pt").is_file()  # fine-tuned, unsaved: it travels with the session
    assert not [p for p in tmp_path.iterdir() if ".dcmix-tmp-" in p.name]
    fresh = DcmixSession()
    seen = recorder(fresh)
    assert fresh.load(folder) == []
    assert _snapshot(fresh) == before
    probs = [np.stack([s.probs for s in x.predictions.sites]) for x in (fresh, worked_session)]
    assert np.allclose(*probs, atol=1e-6)  # the CSV keeps 6 decimals
    assert ("predictions_changed", (fresh.current_key,)) in seen
    # nothing is overwritten without asking
    with pytest.raises(SessionError.__mro__[1], match="exists and is not empty"):
        worked_session.save(folder)
    worked_session.save(folder, overwrite=True)


def test_a_saved_model_is_referenced_not_copied(session, tmp_path):
    model_file = session.save_model(tmp_path / "m.pt")
    folder = session.save(tmp_path / "s")
    assert not (folder / "model.pt").exists()
    manifest = json.loads((folder / "session.json").read_text())
    assert manifest["model"] == {"path": str(model_file.resolve())}
    fresh = DcmixSession()
    fresh.load(folder)
    assert fresh.model_path == model_file and not fresh.model_dirty


def test_a_moved_plate_is_asked_for(worked_session, synth_plate, tmp_path):
    moved_root = tmp_path / "moved"
    shutil.copytree(synth_plate.path, moved_root / "plate")
    folder = worked_session.save(tmp_path / "s")
    manifest = json.loads((folder / "session.json").read_text())
    manifest["plates"][0]["path"] = str(tmp_path / "gone")
    manifest["plates"][0]["relative_path"] = "../gone"
    (folder / "session.json").write_text(json.dumps(manifest))

    fresh = DcmixSession()
    missing = fresh.load(folder)
    assert [m.name for m in missing] == [synth_plate.name] and fresh.plates == {}
    assert fresh.missing == missing and str(tmp_path / "gone") in missing[0].path
    state = fresh.locate_plate(missing[0], moved_root / "plate")
    assert fresh.missing == [] and state.annotations == synth_plate.labels
    assert state.predictions is not None and "unused" in state.classes


def test_a_session_moved_with_its_plate_still_opens(session, synth_plate, tmp_path):
    work = tmp_path / "project"
    shutil.copytree(synth_plate.path, work / "plate")
    other = DcmixSession()
    other.load_model(session.model)
    other.open_plate(work / "plate")
    other.set_annotations({synth_plate.wells[0]: "treated"})
    other.save(work / "session")
    shutil.move(work, tmp_path / "elsewhere")
    fresh = DcmixSession()
    assert fresh.load(tmp_path / "elsewhere" / "session") == []
    assert fresh.annotations == {synth_plate.wells[0]: "treated"}


def test_bad_session_folders(worked_session, tmp_path):
    folder = worked_session.save(tmp_path / "s")
    manifest = json.loads((folder / "session.json").read_text())
    target = DcmixSession()
    target.load_model(worked_session.model)
    keep = target.model

    newer = dict(manifest, format_version=99, napari_dcmix_version="9.0")
    (folder / "session.json").write_text(json.dumps(newer))
    with pytest.raises(SessionError, match=r"format version 99 \(written by napari-dcmix 9.0\)"):
        target.load(folder)
    assert target.model is keep  # a bad folder changes nothing

    (folder / "session.json").write_text(json.dumps(manifest))
    (folder / "plates" / "1-predictions.csv").unlink()
    with pytest.raises(SessionError, match=r"plates/1-predictions\.csv .*is missing"):
        target.load(folder)
    (folder / "model.pt").unlink()
    (folder / "session.json").write_text("{not json")
    with pytest.raises(SessionError, match="not valid JSON"):
        target.load(folder)
    (folder / "session.json").unlink()
    with pytest.raises(SessionError, match=r"session\.json is missing"):
        target.load(folder)
    with pytest.raises(SessionError, match="does not exist"):
        target.load(tmp_path / "nowhere")
    assert target.model is keep
