from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from napari_dcmix.errors import LabelsError, ModelError, PlateError
from napari_dcmix.model import TrainConfig, TrainResult, build_model, train, train_arrays

CHANNELS = ["DNA", "ER", "RNA", "AGP", "Mito"]


def run(gen) -> tuple[list, TrainResult]:
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


FAST = dict(epochs=5, batch_size=8, input_size=16, val_fraction=0.25, lr=3e-3, mixing_lr=5e-2)


@pytest.mark.parametrize("informative", [1, 3])
def test_short_run_ranks_informative_channel_first(informative: int, images) -> None:
    x, y = images(32, informative=informative, size=16)
    names = ["a", "b", "c", "d"]
    events, result = run(train_arrays(None, x, y, TrainConfig(**FAST), channel_names=names,
                                      class_names=["neg", "pos"]))  # fmt: skip
    imp = result.importance
    assert max(imp, key=imp.get) == names[informative]
    assert result.model is not None and result.model.normalisation is not None
    assert len(result.history) == 5 and events[-1].epoch == 5
    assert result.history[-1]["train_accuracy"] > 0.8
    assert result.history[-1]["val_accuracy"] > 0.8
    assert sum(imp.values()) == pytest.approx(1.0)


def test_deterministic_per_seed(images) -> None:
    x, y = images(24, size=16)
    cfg = TrainConfig(**{**FAST, "epochs": 2})
    _, a = run(train_arrays(None, x, y, cfg))
    _, b = run(train_arrays(None, x, y, cfg))
    assert _same(a.model.state_dict(), b.model.state_dict())
    _, c = run(train_arrays(None, x, y, TrainConfig(**{**FAST, "epochs": 2, "seed": 1})))
    assert not _same(a.model.state_dict(), c.model.state_dict())


def test_cancel_leaves_model_unchanged(images) -> None:
    x, y = images(24, size=16)
    model = build_model(["a", "b", "c", "d"], ["0", "1"], input_size=16)
    before = _state(model)
    calls = iter(range(100))
    _, result = run(train_arrays(model, x, y, TrainConfig(**{**FAST, "mode": "all"}),
                                 should_stop=lambda: next(calls) >= 2))  # fmt: skip
    assert result.cancelled and result.model is None
    assert _same(before, model.state_dict()) and model.normalisation is None
    gen = train_arrays(model, x, y, TrainConfig(**{**FAST, "mode": "all"}))
    for _ in range(3):
        next(gen)
    gen.close()
    assert _same(before, model.state_dict())
    _, done = run(train_arrays(model, x, y, TrainConfig(**{**FAST, "mode": "all", "epochs": 1})))
    assert done.model is not model and _same(before, model.state_dict())


def test_mixing_mode_freezes_backbone(images) -> None:
    x, y = images(24, size=16)
    model = build_model(["a", "b", "c", "d"], ["0", "1"], input_size=16)
    _, result = run(train_arrays(model, x, y, TrainConfig(**{**FAST, "mode": "mixing",
                                                             "epochs": 2})))  # fmt: skip
    assert _same(_state(model.backbone), result.model.backbone.state_dict())
    assert not torch.equal(model.mixing.logits, result.model.mixing.logits)
    assert not torch.equal(model.head.weight, result.model.head.weight)
    with pytest.raises(ModelError, match="--init"):
        run(train_arrays(None, x, y, TrainConfig(mode="mixing")))


def test_train_on_plate(array_plate) -> None:
    plate, labels = array_plate
    cfg = TrainConfig(epochs=3, batch_size=8, input_size=20, val_fraction=0.25)
    events, result = run(train(None, plate, labels, cfg))
    assert plate.reads == 24  # each labelled site read once
    assert events[0].phase == "read" and events[-1].phase == "train"
    model = result.model
    assert model.channel_names == CHANNELS and model.class_names == ["control", "treated"]
    assert model.input_size == 20 and model.training_info["n_sites"] == 24
    assert result.history[-1]["val_accuracy"] is not None


def test_plate_errors(array_plate) -> None:
    plate, labels = array_plate
    cfg = TrainConfig(epochs=1, input_size=16)
    with pytest.raises(LabelsError, match="at least 2 classes"):
        run(train(None, plate, {w: "control" for w in labels}, cfg))
    with pytest.raises(LabelsError, match="H05, H06"):
        run(train(None, plate, {**labels, "H5": "treated", "H06": "control"}, cfg))
    other = build_model(["DNA", "Mito"], ["control", "treated"], input_size=16)
    with pytest.raises(
        ModelError, match=r"\['DNA', 'Mito'\].*\['DNA', 'ER', 'RNA', 'AGP', 'Mito'\]"
    ):
        run(train(other, plate, labels, TrainConfig(mode="mixing", epochs=1)))
    _, result = run(train(other, plate, labels,
                          TrainConfig(mode="mixing", epochs=1, fresh_mixing=True)))  # fmt: skip
    assert result.model.channel_names == CHANNELS
    plate.sites = lambda well: []  # no site to read
    with pytest.raises(ModelError, match="empty training set"):
        run(train(None, plate, labels, cfg))


def test_array_errors(images) -> None:
    x, y = images(8)
    with pytest.raises(LabelsError, match="at least 2"):
        run(train_arrays(None, x, np.zeros(8, int)))
    with pytest.raises(ModelError, match="empty training set"):
        run(train_arrays(None, x[:0], y[:0]))
    x[3, 1, 2, 2] = np.nan
    with pytest.raises(PlateError, match=r"image 3.*NaN"):
        run(train_arrays(None, x, y))
    with pytest.raises(ModelError, match="training mode"):
        TrainConfig(mode="fast")


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("lr", 0.0, "> 0"),
        ("lr", float("nan"), "> 0"),
        ("mixing_lr", -1e-3, "> 0"),
        ("batch_size", 0, ">= 1"),
        ("epochs", 0, ">= 1"),
        ("weight_decay", -1.0, ">= 0"),
        ("k", 0, ">= 1"),
        ("temperature", 0.0, "> 0"),
        ("read_threads", 0, ">= 1"),
        ("input_size", 4, ">= 8"),
        ("val_fraction", 1.0, "0 <= f < 1"),
    ],
)
def test_config_rejects_bad_settings(setting: str, value, expected: str) -> None:
    with pytest.raises(ModelError, match=rf"expected {re.escape(expected)}.*found {value!r}"):
        TrainConfig(**{setting: value})


def test_progress_names_the_device(images, array_plate) -> None:
    x, y = images(8, size=16)
    events, _ = run(train_arrays(None, x, y, TrainConfig(epochs=1, input_size=16)))
    plate, labels = array_plate
    plate_events, _ = run(train(None, plate, labels, TrainConfig(epochs=1, input_size=16)))
    assert {e.phase for e in plate_events} == {"read", "train"}
    assert {e.device for e in events + plate_events} == {"cpu"}


def test_one_normalise_for_train_and_predict(images) -> None:
    """Training normalises in place with plate.normalise itself: bit-identical to prediction."""
    from napari_dcmix.model import training
    from napari_dcmix.plate.normalise import estimate_channel_stats, normalise

    x, _ = images(6, size=16)
    stats = estimate_channel_stats(x)
    expected = normalise(x, stats)
    x_u16 = (x * 100 + 1000).astype(np.uint16)
    same = x.copy()
    assert normalise(same, stats, inplace=True) is same
    assert np.array_equal(same, expected) and same.dtype == np.float32
    assert np.array_equal(normalise(x_u16, stats, inplace=True), normalise(x_u16, stats))
    assert not hasattr(training, "_normalise_inplace")


def test_scratch_copies_the_given_models_architecture() -> None:
    from napari_dcmix.model.training import _prepare_model

    base = build_model(CHANNELS, ["a", "b"], k=2, mode="over", temperature=0.5, input_size=20)
    cfg = TrainConfig(mode="scratch", seed=3)
    net, notes = _prepare_model(base, CHANNELS, ["a", "b"], cfg)
    assert net.config() == base.config() and net is not base
    assert "architecture of the given model" in notes[0]
    fresh, notes = _prepare_model(None, CHANNELS, ["a", "b"], TrainConfig(k=2, input_size=20))
    assert (fresh.k, fresh.mode, fresh.input_size, notes) == (2, "softmax", 20, [])
    with pytest.raises(ModelError, match="fine-tunes a trained model"):
        _prepare_model(None, CHANNELS, ["a", "b"], TrainConfig(mode="mixing"))
