"""Stain mapping: parse, suggest, a mapped plate view, the CLI option, constant channels."""

from __future__ import annotations

import numpy as np
import pytest

from napari_dcmix.plate import open_plate
from napari_dcmix.plate.channel_map import (
    ChannelMapError,
    MappedPlate,
    constant_channels,
    map_channels,
    parse_channel_map,
    suggest_channel_map,
)
from napari_dcmix.session import ConstantChannelsError, DcmixSession, drain

MODEL_STAINS = ["DNA", "ER", "RNA", "AGP", "Mito"]


def test_parse_and_its_errors():
    assert parse_channel_map(" Hoechst 33342 = DNA,MitoTracker Deep Red=Mito, ") == {
        "Hoechst 33342": "DNA",
        "MitoTracker Deep Red": "Mito",
    }
    for text, message in [
        ("", "empty"),
        ("Hoechst", "one '='"),
        ("Hoechst=DNA=x", "one '='"),
        ("=DNA", "empty on one side"),
        ("A=DNA,B=DNA", "model stain 'DNA' twice"),
        ("A=DNA,A=ER", "plate stain 'A' twice"),
    ]:
        with pytest.raises(ChannelMapError, match=message):
            parse_channel_map(text)


def test_suggestions_from_names_and_by_position_only_when_asked():
    plate = ["Hoechst 33342", "Alexa 488 Concanavalin A", "SYTO 14", "Phalloidin 568",
             "WGA 555", "MitoTracker Deep Red"]  # fmt: skip
    s = suggest_channel_map(plate, MODEL_STAINS)
    assert s.complete and not s.by_position
    assert s.mapping == {"Hoechst 33342": "DNA", "Alexa 488 Concanavalin A": "ER",
                         "SYTO 14": "RNA", "Phalloidin 568": "AGP",
                         "MitoTracker Deep Red": "Mito"}  # fmt: skip
    assert "WGA 555" not in s.mapping  # Phalloidin is the better AGP stain
    generic = ["w1", "w2", "w3", "w4", "w5"]
    assert suggest_channel_map(generic, MODEL_STAINS).missing == tuple(MODEL_STAINS)
    by_pos = suggest_channel_map(generic, MODEL_STAINS, by_position=True)
    assert by_pos.by_position and by_pos.mapping == dict(zip(generic, MODEL_STAINS, strict=True))
    # two equally good candidates: none is guessed
    tied = suggest_channel_map(["DAPI", "Hoechst"], ["DNA"])
    assert tied.missing == ("DNA",) and "several plate stains" in tied.notes[0]


def test_mapped_view_reads_the_subset_in_the_model_order(rxrx1_plate):
    plate = open_plate(rxrx1_plate.path)
    # a model that uses three of the plate's five stains, in its own order
    view = map_channels(plate, "MitoTracker=Mito,Hoechst=DNA", order=["DNA", "Syto14", "Mito"])
    assert isinstance(view, MappedPlate) and view.channels == ["DNA", "Syto14", "Mito"]
    well = plate.wells[1]
    raw = plate.read(well, 1)
    got = view.read(well, 1)
    idx = [plate.channels.index(c) for c in ("Hoechst", "Syto14", "MitoTracker")]
    assert np.array_equal(got, raw[idx])
    assert np.array_equal(view.read_thumbnail(well, 1, 4), plate.read_thumbnail(well, 1, 4)[idx])
    assert view.wells == plate.wells and view.name == plate.name
    assert map_channels(plate, None) is plate  # nothing to change: the plate itself

    with pytest.raises(ChannelMapError) as err:
        map_channels(plate, "Hoechst 33342=DNA", order=["DNA"])
    message = str(err.value)  # names the stain and lists the plate's
    assert "'Hoechst 33342'" in message
    assert "Hoechst, ConA, Phalloidin, Syto14, MitoTracker" in message
    with pytest.raises(ChannelMapError, match="no stain mapped to ER"):
        map_channels(plate, "Hoechst=DNA", order=["DNA", "ER"])


def test_predict_a_plate_with_other_stain_names(rxrx1_plate, small_model):
    """The model knows DNA..Mito; the RxRx1 plate calls them Hoechst..MitoTracker."""
    from napari_dcmix.errors import ModelError

    s = DcmixSession()
    s.open_plate(rxrx1_plate.path)
    s.load_model(small_model)
    with pytest.raises(ModelError, match="A mapping is suggested from the names"):
        s.predict_task()
    suggestion = s.suggest_channel_map()
    assert suggestion.complete and suggestion.mapping["MitoTracker"] == "Mito"
    s.set_channel_map(suggestion.mapping)
    assert s.plate.channels == small_model.channel_names  # the model's order
    preds = drain(s.predict())
    assert len(preds.wells()) == len(rxrx1_plate.wells)
    with pytest.raises(ChannelMapError, match="its stains are: Hoechst"):
        s.set_channel_map("DAPI=DNA")
    assert s.state().channel_map == suggestion.mapping  # unchanged by the bad map


def test_cli_channel_map(rxrx1_plate, small_model, tmp_path, capsys):
    from napari_dcmix.cli import main
    from napari_dcmix.model import save_model

    model = save_model(small_model, tmp_path / "m.pt")
    out = tmp_path / "pred.csv"
    args = ["predict", str(rxrx1_plate.path), "--model", str(model), "--out", str(out),
            "--quiet", "--device", "cpu"]  # fmt: skip
    assert main(args) == 2  # the stains differ
    assert "differ" in capsys.readouterr().err
    text = "Hoechst=DNA,ConA=ER,Syto14=RNA,Phalloidin=AGP,MitoTracker=Mito"
    assert main([*args, "--channel-map", text]) == 0
    assert out.read_text().startswith("plate,well,site")
    assert main([*args, "--overwrite", "--channel-map", "Hoechst 33342=DNA"]) == 2
    err = capsys.readouterr().err
    assert "'Hoechst 33342'" in err and "its stains are: Hoechst, ConA" in err
    assert "Traceback" not in err


@pytest.fixture
def empty_channel_plate(tmp_path, synth_plate):
    """The synthetic plate copied as a TIFF folder whose RNA channel is all zeros."""
    import tifffile

    src = open_plate(synth_plate.path)
    out = tmp_path / "empty-rna"
    out.mkdir()
    (out / "channels.txt").write_text("\n".join(src.channels) + "\n")
    rna = src.channels.index("RNA")
    for well, site in src.site_keys():
        data = src.read(well, site).copy()
        data[rna] = 0
        tifffile.imwrite(out / f"{well}_s{site}.tif", data)
    return out


def test_constant_channel_is_reported_and_can_be_excluded(empty_channel_plate, synth_plate,
                                                          small_model, recorder):  # fmt: skip
    plate = open_plate(empty_channel_plate)
    assert constant_channels(plate, plate.site_keys()) == ["RNA"]
    assert constant_channels(open_plate(synth_plate.path), synth_plate_keys(synth_plate)) == []

    s = DcmixSession()
    s.open_plate(empty_channel_plate)
    s.load_model(small_model)
    seen = recorder(s)
    s.set_annotations(synth_plate.labels)
    with pytest.raises(ConstantChannelsError, match=r"'RNA'.*one value over all 24 annotated"):
        drain(s.fine_tune(epochs=1))
    assert ("constant_channels", (s.current_key, ["RNA"])) in seen
    assert s.model is small_model
    s.exclude_channels(["RNA"])
    assert s.plate.channels == ["DNA", "ER", "AGP", "Mito"]
    result = drain(s.fine_tune(epochs=2, ensemble=2))
    assert result.model.channel_names == ["DNA", "ER", "AGP", "Mito"]
    assert s.stains_match()  # the fine-tuned model reads the remaining four stains
    assert len(drain(s.predict()).wells()) == len(synth_plate.wells)


def synth_plate_keys(synth_plate):
    return open_plate(synth_plate.path).site_keys()


def test_what_a_running_task_reads_cannot_change(session, synth_plate, other_plate_path):
    """The stain mapping, excluded stains, plane and timepoint of a plate stay as they are while
    a task on that plate runs (its result is stored against them); other plates may change."""
    from napari_dcmix.errors import DcmixError

    first = session.current_key
    task = session.predict_task()
    for change, what in [
        (lambda: session.set_channel_map({"DNA": "DNA"}), "stain mapping"),
        (lambda: session.exclude_channels(["DNA"]), "excluded stains"),
        (lambda: session.choose_plane(1), "plane or timepoint"),
    ]:
        with pytest.raises(DcmixError, match=f"Predict is running on plate .*change its {what}"):
            change()
    state = session.current
    assert state.channel_map == {} and state.excluded == []
    session.open_plate(other_plate_path)
    session.exclude_channels(["DNA"])  # another plate
    assert session.current.excluded == ["DNA"]
    task.cancel()
    drain(session.run(task))
    session.exclude_channels(["DNA"], first)  # done: allowed again
    assert session.plates[first].excluded == ["DNA"]


@pytest.fixture
def other_plate_path(tmp_path):
    from napari_dcmix.synthetic import write_synthetic_plate

    return write_synthetic_plate(tmp_path / "other", n_wells=2, sites=1, image_size=32, seed=4,
                                 plate_name="Other").path  # fmt: skip
