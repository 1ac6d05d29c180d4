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
    import hashlib

    from napari_dcmix.model import build_model, save_model

    model_file = session.save_model(tmp_path / "m.pt")
    folder = session.save(tmp_path / "s")
    assert not (folder / "model.pt").exists()
    manifest = json.loads((folder / "session.json").read_text())
    sha = hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert manifest["model"] == {"path": str(model_file.resolve()), "sha256": sha}
    fresh = DcmixSession()
    fresh.load(folder)
    assert fresh.model_path == model_file and not fresh.model_dirty
    assert fresh.load_notes == []
    # the file at that path changed since: it is loaded, and the user is told
    other = build_model(session.model.channel_names, ["control", "treated"], input_size=32, seed=1)
    save_model(other, model_file)
    fresh.load(folder)
    assert fresh.model.input_size == 32
    (note,) = fresh.load_notes
    assert str(model_file) in note and "has changed since the session was saved" in note
    assert sha[:12] in note


def test_saving_never_deletes_what_is_not_a_session(session, synth_plate, tmp_path):
    """Saving over a folder that is not a session (or that holds the session's plate or model)
    is refused, naming the folder and what it holds; its contents stay."""
    from napari_dcmix.session.store import check_session_target

    work = tmp_path / "my-data"
    shutil.copytree(synth_plate.path, work / "plate")
    (work / "notes.txt").write_text("mine")
    before = sorted(p.relative_to(work) for p in work.rglob("*"))
    with pytest.raises(SessionError, match=r"not a napari-dcmix session folder.*2 item\(s\) "
                                           r"\(notes\.txt, plate\)"):  # fmt: skip
        session.save(work, overwrite=True)
    assert sorted(p.relative_to(work) for p in work.rglob("*")) == before
    # a session folder is replaced; an empty folder is used
    folder = session.save(tmp_path / "s")
    session.save(folder, overwrite=True)
    (tmp_path / "empty").mkdir()
    session.save(tmp_path / "empty")
    # a session folder that holds the session's plate (or its model) is refused as well
    shutil.copytree(synth_plate.path, folder / "plate")
    session.open_plate(folder / "plate")
    with pytest.raises(SessionError, match=rf"plate 'plate' \({folder / 'plate'}\) lie"):
        session.save(folder, overwrite=True)
    assert (folder / "plate").is_dir()
    session.close_plate(session.current_key)
    model = session.save_model(folder / "m.pt")
    with pytest.raises(SessionError, match=rf"the model {model} lie"):
        check_session_target(session, folder, overwrite=True)
    assert model.is_file()


def test_settings_are_restored_field_by_field(session, tmp_path):
    session.update_settings("train", seed=7, epochs=12)
    session.update_settings("predict", batch_size=8)
    folder = session.save(tmp_path / "s")
    manifest = json.loads((folder / "session.json").read_text())
    manifest["train_settings"]["epochs"] = -5  # one value this version refuses
    (folder / "session.json").write_text(json.dumps(manifest))
    fresh = DcmixSession()
    fresh.load(folder)
    assert fresh.train_settings.seed == 7  # the others are kept
    assert fresh.train_settings.epochs == DcmixSession().train_settings.epochs
    assert fresh.predict_settings.batch_size == 8
    (note,) = fresh.load_notes
    assert "fine-tune setting epochs = -5 was not restored" in note


def test_skipped_sites_notes_and_path_survive(session, damaged_plate, tmp_path):
    """A plate predicted with skipped sites and site notes reopens with the same overlays
    (predictions) and exports the same CSV."""
    session.open_plate(damaged_plate)
    preds = drain(session.predict(skip_bad_sites=True))
    assert {(k.well, k.site) for k in preds.skipped} == {("A01", 2), ("A03", 1), ("A03", 2)}
    assert [s.site for s in preds.sites if s.well == "A02" and s.notes] == [1]
    exported = session.export_predictions(tmp_path / "before.csv")
    folder = session.save(tmp_path / "s")
    fresh = DcmixSession()
    fresh.load_model(session.model)
    assert fresh.load(folder) == []
    fresh.set_current(session.current_key)
    again = fresh.predictions
    assert again.path == preds.path == str(damaged_plate)
    assert again.skipped == preds.skipped
    assert [(s.well, s.site, s.notes) for s in again.sites] == [
        (s.well, s.site, s.notes) for s in preds.sites
    ]
    assert [(w.well, w.n_sites, w.notes) for w in again.wells()] == [
        (w.well, w.n_sites, w.notes) for w in preds.wells()
    ]
    assert fresh.export_predictions(tmp_path / "after.csv").read_text() == exported.read_text()


def test_a_plate_that_opens_is_restored_as_far_as_it_can_be(rxrx1_plate, tmp_path):
    """A stale stain mapping and annotations of wells the plate lacks: the plate opens with
    the rest, the notes say what was left out, and it is not reported missing."""
    from napari_dcmix.model import build_model

    s = DcmixSession()
    s.load_model(build_model(["DNA", "ER", "RNA", "AGP", "Mito"], ["a", "b"], input_size=32))
    s.open_plate(rxrx1_plate.path)
    s.set_channel_map("Hoechst=DNA,ConA=ER,Syto14=RNA,Phalloidin=AGP,MitoTracker=Mito")
    wells = list(s.plate.wells)
    s.set_annotations({wells[0]: "a", wells[1]: "b"})
    s.focus(wells[1])
    folder = s.save(tmp_path / "s")
    manifest = json.loads((folder / "session.json").read_text())
    manifest["plates"][0]["channel_map"]["Gone"] = "RNA"  # a stain the plate no longer has
    (folder / "session.json").write_text(json.dumps(manifest))
    annotations = folder / manifest["plates"][0]["annotations"]
    annotations.write_text(annotations.read_text() + "P24,a\n")  # a well it lacks

    fresh = DcmixSession()
    assert fresh.load(folder) == [] and fresh.missing == []
    state = fresh.current
    assert state.annotations == {wells[0]: "a", wells[1]: "b"} and state.focus == (wells[1], None)
    assert state.channel_map == {}
    mapping, dropped = fresh.load_notes
    assert "the stain mapping could not be restored" in mapping and "Gone" in mapping
    assert "1 annotation(s) could not be restored" in dropped and "P24" in dropped


def test_a_plate_that_no_longer_opens_is_missing_with_the_reason(session, synth_plate, tmp_path):
    plate = tmp_path / "plate"
    shutil.copytree(synth_plate.path, plate)
    other = DcmixSession()
    other.load_model(session.model)
    other.open_plate(plate)
    folder = other.save(tmp_path / "s")
    shutil.rmtree(plate)
    plate.mkdir()
    (plate / "readme.txt").write_text("not a plate any more")
    fresh = DcmixSession()
    (missing,) = fresh.load(folder)
    assert missing.reason != "not found" and "matches no supported plate layout" in missing.reason
    assert fresh.plates == {}


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


def test_a_plate_not_found_survives_saving_over_its_session(
    session, synth_plate, rxrx1_plate, tmp_path
):
    """Open a session while one plate's drive is away, work on the other, save over the same
    folder: the away plate keeps its annotations and predictions, and locating it later gives
    it its own data, not the plate now saved first."""
    away = tmp_path / "drive" / "plate"
    shutil.copytree(synth_plate.path, away)
    session.close_plate(next(iter(session.plates)))
    session.open_plate(away)
    session.set_annotations(synth_plate.labels)
    drain(session.predict())
    predicted = [(s.well, s.site) for s in session.current.predictions.sites]
    session.open_plate(rxrx1_plate.path)
    other = {rxrx1_plate.wells[0]: "control"}
    session.set_annotations(other)
    folder = session.save(tmp_path / "s")
    shutil.move(away, tmp_path / "later")  # the drive is unmounted

    fresh = DcmixSession()
    (missing,) = fresh.load(folder)
    assert next(iter(fresh.plates.values())).annotations == other
    fresh.save(folder, overwrite=True)  # the user saves over the session they opened
    saved = json.loads((folder / "session.json").read_text())
    assert [p["name"] for p in saved["plates"]] == [rxrx1_plate.name, missing.name]
    assert missing.folder == folder and missing.entry == saved["plates"][1]

    state = fresh.locate_plate(missing, tmp_path / "later")  # the drive is back elsewhere
    assert state.annotations == synth_plate.labels  # its own, not the other plate's
    assert [(s.well, s.site) for s in state.predictions.sites] == predicted
    again = DcmixSession()
    (missing_again,) = again.load(folder)
    assert missing_again.name == missing.name


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


@pytest.fixture(scope="module")
def served_plate(tmp_path_factory):
    """An OME-Zarr plate served by a real HTTP server on 127.0.0.1: (URL, local folder)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from napari_dcmix.synthetic import write_synthetic_plate

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    root = tmp_path_factory.mktemp("served")
    plate = write_synthetic_plate(root / "remote", layout="ome-zarr", n_wells=4, sites=1,
                                  image_size=32, seed=5, plate_name="Remote")  # fmt: skip
    local = plate.path
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{local.relative_to(root).as_posix()}"
        yield url, local
    finally:
        server.shutdown()
        server.server_close()


def test_a_remote_plate_is_saved_as_its_url(served_plate, tmp_path):
    url, _local = served_plate
    s = DcmixSession()
    state = s.open_plate(url)
    assert state.key == url
    s.set_annotations({state.raw.wells[0]: "treated"})
    folder = s.save(tmp_path / "s")
    entry = json.loads((folder / "session.json").read_text())["plates"][0]
    assert entry["path"] == url and entry["relative_path"] is None
    fresh = DcmixSession()
    assert fresh.load(folder) == []
    assert fresh.current.raw.path == url and fresh.annotations == {state.raw.wells[0]: "treated"}
