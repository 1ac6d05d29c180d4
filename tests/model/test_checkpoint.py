from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_dcmix.errors import CheckpointError
from napari_dcmix.model import (
    FORMAT_VERSION,
    build_model,
    default_model_path,
    load_model,
    predict_arrays,
    save_model,
)
from napari_dcmix.plate.normalise import ChannelStats


def _model(mode: str = "softmax", backbone: str = "small_cnn"):
    model = build_model(["a", "b", "c"], ["x", "y"], mode=mode, backbone=backbone, input_size=20)
    with torch.no_grad():
        model.mixing.logits.normal_(generator=torch.Generator().manual_seed(0))
    model.normalisation = ChannelStats(["a", "b", "c"], [0.0, 1.0, 2.0], [10.0, 20.0, 30.0])
    model.training_info = {"seed": 4, "history": [{"epoch": 1, "loss": 0.5}], "mode": "scratch"}
    return model.eval()


@pytest.mark.parametrize(("mode", "backbone"), [("softmax", "small_cnn"), ("over", "resnet18")])
def test_round_trip_identical_predictions(tmp_path: Path, mode: str, backbone: str) -> None:
    model = _model(mode, backbone)
    path = save_model(model, tmp_path / "m.pt")
    loaded = load_model(path)
    x = np.random.default_rng(0).uniform(0, 40, size=(3, 3, 25, 25)).astype(np.float32)
    assert np.array_equal(predict_arrays(model, x, device="cpu"),
                          predict_arrays(loaded, x, device="cpu"))  # fmt: skip
    assert loaded.config() == {**model.config(), "members": 1}
    assert loaded.normalisation == model.normalisation
    assert loaded.training_info == model.training_info
    assert loaded.channel_importance() == model.channel_importance()


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/dcmix-pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_checkpoint_is_refused(tmp_path: Path) -> None:
    marker = Path("/tmp/dcmix-pwned")
    marker.unlink(missing_ok=True)
    path = tmp_path / "evil.pt"
    torch.save({"format": "napari-dcmix", "format_version": FORMAT_VERSION, "x": _Evil()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_model(path)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(CheckpointError, match=r"evil.pkl"):
        load_model(raw)
    assert not marker.exists()


def test_truncated_and_other_version(tmp_path: Path) -> None:
    path = save_model(_model(), tmp_path / "m.pt")
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut.pt"):
        load_model(cut)
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    other = tmp_path / "other.pt"
    torch.save(payload, other)
    with pytest.raises(CheckpointError, match=rf"other\.pt.*format version {FORMAT_VERSION + 1}"):
        load_model(other)
    torch.save({"just": "a dict"}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a napari-dcmix checkpoint"):
        load_model(tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.pt")


def test_default_model_path() -> None:
    path = default_model_path()
    assert path.name == "default_model.pt" and path.parent.name == "data"
    if not path.exists():
        with pytest.raises(CheckpointError, match=r"default_model.pt"):
            load_model(path)


def test_shipped_default_model_loads_and_predicts(tmp_path) -> None:
    """The model in the wheel: format, channels, classes, normalisation, and it works."""
    from napari_dcmix.model import predict_plate_all
    from napari_dcmix.plate import open_plate
    from napari_dcmix.synthetic import write_synthetic_plate

    path = default_model_path()
    assert path.is_file(), f"shipped default model missing: {path}"
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["format_version"] == FORMAT_VERSION
    model = load_model(path)
    assert model.channel_names == ["DNA", "ER", "RNA", "AGP", "Mito"]
    assert model.class_names == ["control", "treated"]
    assert model.normalisation is not None
    assert model.normalisation.channel_names == model.channel_names
    synth = write_synthetic_plate(tmp_path, layout="tiff", n_wells=8, sites=1, image_size=128,
                                  phenotype_channel="Mito", seed=0)  # fmt: skip
    result = predict_plate_all(model, open_plate(synth.path), device="cpu")
    wells = result.wells()
    assert len(wells) == 8
    accuracy = sum(w.prediction == synth.labels[w.well] for w in wells) / len(wells)
    assert accuracy >= 0.75, f"default model well accuracy {accuracy:.2f} on a Mito plate"
