from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from napari_dcmix.errors import LabelsError, ModelError, PlateError
from napari_dcmix.model import (
    DcmixEnsemble,
    TrainConfig,
    TrainResult,
    build_model,
    train,
    train_arrays,
)

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


FAST = dict(epochs=5, batch_size=8, input_size=16, lr=3e-3, mixing_lr=5e-2, ensemble=3)


def each_image_a_well(x) -> np.ndarray:
    return np.arange(len(x))


@pytest.mark.parametrize("informative", [1, 3])
def test_short_run_ranks_informative_channel_first(informative: int, images) -> None:
    x, y = images(32, informative=informative, size=16)
    names = ["a", "b", "c", "d"]
    events, result = run(train_arrays(None, x, y, TrainConfig(**FAST), channel_names=names,
                                      class_names=["neg", "pos"],
                                      groups=each_image_a_well(x)))  # fmt: skip
    imp = result.importance
    assert max(imp, key=imp.get) == names[informative]
    model = result.model
    assert isinstance(model, DcmixEnsemble) and len(model) == 3
    assert model.normalisation is not None
    assert len(result.history) == 3 * 5 and events[-1].epoch == 5
    assert result.history[-1]["train_accuracy"] > 0.8
    held = result.evidence["held_out"]
    assert held["n_wells"] == 32 and held["balanced_accuracy"] > 0.8
    assert sum(imp.values()) == pytest.approx(1.0)
    low, high = result.evidence["interval"][names[informative]]
    assert low <= imp[names[informative]] <= high


def test_deterministic_per_seed(images) -> None:
    x, y = images(24, size=16)
    cfg = TrainConfig(**{**FAST, "epochs": 2})
    g = each_image_a_well(x)
    _, a = run(train_arrays(None, x, y, cfg, groups=g))
    _, b = run(train_arrays(None, x, y, cfg, groups=g))
    assert _same(a.model.state_dict(), b.model.state_dict())
    assert a.evidence == b.evidence
    _, c = run(train_arrays(None, x, y, TrainConfig(**{**FAST, "epochs": 2, "seed": 1}),
                            groups=g))  # fmt: skip
    assert not _same(a.model.state_dict(), c.model.state_dict())


def test_parallel_members_train_the_same_models_as_one_at_a_time(images) -> None:
    x, y = images(24, size=16)
    g = each_image_a_well(x)
    torch.set_num_threads(1)  # the same kernels either way
    _, one = run(train_arrays(None, x, y, TrainConfig(**{**FAST, "epochs": 2, "parallel": 1}),
                              groups=g))  # fmt: skip
    _, two = run(train_arrays(None, x, y, TrainConfig(**{**FAST, "epochs": 2, "parallel": 2}),
                              groups=g))  # fmt: skip
    assert two.model.training_info["parallel_members"] == 2
    assert _same(one.model.state_dict(), two.model.state_dict())


@pytest.mark.parametrize("parallel", [1, 2])
def test_cancel_leaves_model_unchanged(images, parallel: int) -> None:
    x, y = images(24, size=16)
    g = each_image_a_well(x)
    model = build_model(["a", "b", "c", "d"], ["0", "1"], input_size=16)
    before = _state(model)
    calls = iter(range(1000))
    cfg = TrainConfig(**{**FAST, "mode": "all", "parallel": parallel})
    _, result = run(train_arrays(model, x, y, cfg, should_stop=lambda: next(calls) >= 4,
                                 groups=g))  # fmt: skip
    assert result.cancelled and result.model is None
    assert _same(before, model.state_dict()) and model.normalisation is None
    gen = train_arrays(model, x, y, cfg, groups=g)
    for _ in range(6):
        next(gen)
    gen.close()
    assert _same(before, model.state_dict())
    _, done = run(train_arrays(model, x, y, TrainConfig(**{**FAST, "mode": "all", "epochs": 1}),
                               groups=g))  # fmt: skip
    assert done.model is not model and _same(before, model.state_dict())


def test_mixing_mode_freezes_backbone(images) -> None:
    x, y = images(24, size=16)
    model = build_model(["a", "b", "c", "d"], ["0", "1"], input_size=16)
    _, result = run(train_arrays(model, x, y, TrainConfig(**{**FAST, "mode": "mixing",
                                                             "epochs": 2}),
                                 groups=each_image_a_well(x)))  # fmt: skip
    for member in result.model.members:
        assert _same(_state(model.backbone), member.backbone.state_dict())
        assert not torch.equal(model.mixing.logits, member.mixing.logits)
        assert not torch.equal(model.head.weight, member.head.weight)
    with pytest.raises(ModelError, match="--init"):
        run(train_arrays(None, x, y, TrainConfig(mode="mixing"), groups=each_image_a_well(x)))


def test_train_on_plate_streams_its_sites(array_plate) -> None:
    plate, labels = array_plate
    cfg = TrainConfig(epochs=3, batch_size=8, ensemble=2, crop=20, cache_mb=0)
    events, result = run(train(None, plate, labels, cfg))
    # no cache: every epoch reads its crops again (sites are read while training runs)
    assert plate.reads > 2 * 3 * 24 * 0.5
    assert events[0].phase == "read" and events[-1].phase == "train"
    model = result.model
    assert model.channel_names == CHANNELS and model.class_names == ["control", "treated"]
    assert model.input_size == 20 and str(model.scale) == "bin 1, crop 20 px"
    assert model.training_info["n_sites"] == 24 and model.training_info["n_wells"] == 8
    assert result.evidence["held_out"]["n_wells"] == 8


def test_plate_errors(array_plate) -> None:
    plate, labels = array_plate
    cfg = TrainConfig(epochs=1, ensemble=2)
    with pytest.raises(LabelsError, match="at least 2 classes"):
        run(train(None, plate, {w: "control" for w in labels}, cfg))
    with pytest.raises(LabelsError, match="H05, H06"):
        run(train(None, plate, {**labels, "H5": "treated", "H06": "control"}, cfg))
    other = build_model(["DNA", "Mito"], ["control", "treated"], input_size=16)
    with pytest.raises(
        ModelError, match=r"\['DNA', 'Mito'\].*\['DNA', 'ER', 'RNA', 'AGP', 'Mito'\]"
    ):
        run(train(other, plate, labels, TrainConfig(mode="mixing", epochs=1)))
    cfg2 = TrainConfig(mode="mixing", epochs=1, fresh_mixing=True, ensemble=2)
    _, result = run(train(other, plate, labels, cfg2))
    assert result.model.channel_names == CHANNELS
    with pytest.raises(
        ModelError, match=r"20 x 20 px after binning by 2 \(40 x 40.*32 x 32 px crop"
    ):
        run(train(None, plate, labels, TrainConfig(epochs=1, bin=2, crop=32)))
    with pytest.raises(LabelsError, match=r"reference class 'DMSO'.*control, treated"):
        run(train(None, plate, labels, TrainConfig(epochs=1, reference="DMSO")))
    plate.sites = lambda well: []  # no site to read
    with pytest.raises(ModelError, match="empty training set"):
        run(train(None, plate, labels, cfg))


def test_array_errors(images) -> None:
    x, y = images(8)
    g = each_image_a_well(x)
    with pytest.raises(LabelsError, match="at least 2"):
        run(train_arrays(None, x, np.zeros(8, int), groups=g))
    with pytest.raises(ModelError, match="empty training set"):
        run(train_arrays(None, x[:0], y[:0], groups=g[:0]))
    with pytest.raises(TypeError, match="groups"):
        run(train_arrays(None, x, y))  # well groups are required
    with pytest.raises(ModelError, match=r"one well id \(group\) per image: 8 images"):
        run(train_arrays(None, x, y, groups=g[:4]))
    with pytest.raises(LabelsError, match="holds images of two classes"):
        run(train_arrays(None, x, y, groups=np.zeros(8, int)))
    x[3, 1, 2, 2] = np.nan
    with pytest.raises(PlateError, match=r"image 3.*NaN"):
        run(train_arrays(None, x, y, groups=g))
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
        ("ensemble", 0, ">= 1"),
        ("crops_per_site", 0, ">= 1"),
        ("seed", -5, "an integer from 0 to 2**63 - 1"),
        ("seed", 2**64, "an integer from 0 to 2**63 - 1"),
        ("max_tiles", 0, "a positive integer"),
        ("bin", 0, "a positive integer"),
        ("crop", 3, "a positive integer of at least 8 pixels"),
    ],
)
def test_config_rejects_bad_settings(setting: str, value, expected: str) -> None:
    with pytest.raises(ModelError, match=rf"expected {re.escape(expected)}.*found {value!r}"):
        TrainConfig(**{setting: value})


def test_progress_names_the_device_and_members(images, array_plate) -> None:
    x, y = images(8, size=16)
    cfg = TrainConfig(epochs=1, ensemble=2)
    events, _ = run(train_arrays(None, x, y, cfg, groups=each_image_a_well(x)))
    plate, labels = array_plate
    plate_events, _ = run(train(None, plate, labels, cfg))
    assert {e.phase for e in plate_events} == {"read", "train"}
    assert {e.device for e in events + plate_events} == {"cpu"}
    train_events = [e for e in events if e.phase == "train"]
    assert {e.member for e in train_events} == {1, 2} and {e.members for e in events} == {2}
    assert train_events[-1].done == train_events[-1].total > 0


def test_one_normalise_for_train_and_predict(images) -> None:
    """Training and prediction normalise with the same float32 arithmetic."""
    from napari_dcmix.model import PixelScale
    from napari_dcmix.model.sites import SitePrep
    from napari_dcmix.plate.normalise import estimate_channel_stats, normalise

    x, _ = images(6, size=16)
    stats = estimate_channel_stats(x)
    expected = normalise(x, stats)
    x_u16 = (x * 100 + 1000).astype(np.uint16)
    same = x.copy()
    assert normalise(same, stats, inplace=True) is same
    assert np.array_equal(same, expected) and same.dtype == np.float32
    assert np.array_equal(normalise(x_u16, stats, inplace=True), normalise(x_u16, stats))
    prep = SitePrep(PixelScale(bin=1, crop=None), 16, stats)
    assert np.array_equal(prep.prepared(x_u16[0]), normalise(x_u16[0], stats))


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


def test_fine_tune_on_fewer_classes_gets_a_head_of_those_classes(images) -> None:
    """A 3-class model fine-tuned (its mixing kept) on wells of 2 of its classes: the head is
    rebuilt for the labelled classes, so labels index the outputs they name."""
    x, y = images(24, size=16)
    base = build_model(["a", "b", "c", "d"], ["a", "b", "c"], input_size=16)
    names = np.array(["a", "c"])[y]
    for mode in ("mixing", "all"):
        cfg = TrainConfig(**{**FAST, "mode": mode, "epochs": 2, "fresh_mixing": False})
        _, result = run(train_arrays(base, x, names, cfg, groups=each_image_a_well(x)))
        assert result.model.class_names == ["a", "c"]
        assert result.evidence["classes"] == ["a", "c"]
        assert np.sum(result.evidence["held_out"]["confusion"]) == 24


def test_a_last_batch_of_one_does_not_break_batchnorm() -> None:
    """9 training images at batch 8 leave one image for the last step: it joins the one
    before (BatchNorm cannot train on a single input)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 2, 16, 16)).astype(np.float32)
    y = np.arange(12) % 2
    cfg = TrainConfig(epochs=1, batch_size=8, ensemble=1, val_fraction=0.25, crop=16)
    _, result = run(train_arrays(None, x, y, cfg, groups=np.arange(12)))
    assert result.model is not None


def test_absent_classes_do_not_lower_chance() -> None:
    """Class names with a class that has no labelled well: chance is that of the labelled
    classes, and no per-class bar is made for the empty one."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 2, 16, 16)).astype(np.float32)
    y = np.arange(16) % 2
    cfg = TrainConfig(epochs=1, batch_size=8, ensemble=2, crop=16)
    _, result = run(train_arrays(None, x, y, cfg, class_names=["ctrl", "a", "b"],
                                 groups=np.arange(16)))  # fmt: skip
    assert result.evidence["chance"] == 0.5 and result.evidence["per_class"] == {}
