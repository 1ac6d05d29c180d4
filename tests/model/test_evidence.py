"""The chart is evidence: what training measures (held-out accuracy, intervals, per-class
importance) and the verdict it supports, on synthetic plates with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_dcmix.model import TrainConfig, train, train_arrays
from napari_dcmix.model import evidence as ev
from napari_dcmix.model.folds import member_holdouts, stratified_folds
from napari_dcmix.synthetic import synthesize_site
from napari_dcmix.synthetic.plate import site_seed

CHANNELS = ["DNA", "ER", "RNA", "AGP", "Mito"]


def run(gen):
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def cell_arrays(classes: dict[str, dict[str, float] | None], wells_per_class, sites=2, size=48,
                seed=0):  # fmt: skip
    """Cell-like sites: ``classes`` maps a class to its phenotype ({stain: strength}) or None.
    Returns x (N, C, H, W) uint16, labels (N,), well ids (N,)."""
    counts = (
        wells_per_class
        if isinstance(wells_per_class, dict)
        else dict.fromkeys(classes, wells_per_class)
    )
    x, y, g = [], [], []
    well = 0
    for cls, effects in classes.items():
        for _ in range(counts[cls]):
            for s in range(1, sites + 1):
                x.append(synthesize_site(site_seed(seed, f"W{well}", s), CHANNELS, effects, size))
                y.append(cls)
                g.append(well)
            well += 1
    return np.stack(x), np.asarray(y), np.asarray(g)


def fine_texture_arrays(n_wells: int, size: int = 64, seed: int = 0):
    """A phenotype that exists only at native pixels: treated wells carry a one-pixel
    checkerboard texture inside the cells of one stain (AGP), which every 2 x 2 (or larger)
    block average erases exactly. Other stains are the same in both classes."""
    rng = np.random.default_rng(seed)
    checker = ((np.indices((size, size)).sum(axis=0) % 2) * 2 - 1).astype(np.float32)
    x, y, g = [], [], []
    for w in range(n_wells):
        treated = w % 2 == 1
        for s in range(2):
            site = synthesize_site([seed, w, s], CHANNELS, None, size, "float32")
            if treated:
                agp = CHANNELS.index("AGP")
                cells = site[agp] > np.median(site[agp])
                site[agp] += 0.25 * checker * cells * rng.uniform(0.8, 1.2)
            x.append(site)
            y.append("treated" if treated else "control")
            g.append(w)
    return np.stack(x), np.asarray(y), np.asarray(g)


# --- the verdict rule ------------------------------------------------------------------------
def _evidence(ba_interval, importance, interval):
    return {
        "chance": 0.5,
        "held_out": {
            "balanced_accuracy": float(np.mean(ba_interval)),
            "interval": list(ba_interval),
            "n_wells": 24,
        },
        "importance": importance,
        "interval": interval,
    }


def test_verdict_names_a_stain_only_when_the_evidence_holds() -> None:
    imp = {"Mito": 0.5, "ER": 0.3, "DNA": 0.2}
    apart = {"Mito": [0.45, 0.55], "ER": [0.25, 0.35], "DNA": [0.15, 0.25]}
    overlap = {"Mito": [0.35, 0.6], "ER": [0.2, 0.4], "DNA": [0.15, 0.25]}
    v = ev.verdict(_evidence([0.8, 0.95], imp, apart))
    assert v.kind == ev.STAIN and v.top == "Mito" and v.sentence.startswith("Mito drives")
    v = ev.verdict(_evidence([0.41, 0.63], imp, apart))
    assert v.kind == ev.DID_NOT_LEARN and v.top is None and v.learned is False
    assert "did not learn to separate the classes (held-out balanced accuracy 0.52" in v.sentence
    v = ev.verdict(_evidence([0.8, 0.95], imp, overlap))
    assert v.kind == ev.NO_SINGLE_STAIN and v.top is None
    assert "No single stain stands out: Mito and ER overlap" in v.sentence
    v = ev.verdict(_evidence([0.8, 0.95], imp, None))
    assert v.kind == ev.NOT_RANKED and v.top is None
    assert ev.verdict(None).kind == ev.NO_EVIDENCE
    assert ev.verdict({"held_out": None, "chance": 0.5}).kind == ev.NO_EVIDENCE


def test_balanced_accuracy_interval_is_honest_with_few_wells() -> None:
    low, high = ev.balanced_accuracy_interval(np.array([[4, 0], [0, 4]]))
    assert 0.55 < low < 0.75 and high == 1.0
    low16, _ = ev.balanced_accuracy_interval(np.array([[16, 0], [0, 16]]))
    assert low16 > low  # more wells, a narrower interval
    low, high = ev.balanced_accuracy_interval(np.array([[20, 28], [25, 23]]))
    assert low < 0.5 < high
    # imbalanced: 88 controls right and every treated well wrong is chance, not 0.92
    conf = np.array([[88, 0], [8, 0]])
    assert ev.balanced_accuracy(conf) == 0.5
    assert ev.balanced_accuracy_interval(conf)[0] < 0.5


# --- splits -----------------------------------------------------------------------------------
def test_no_well_has_sites_on_both_sides_of_a_split() -> None:
    labels = np.array([0] * 7 + [1] * 5)
    folds = stratified_folds(labels, 5, seed=3)
    for cls in (0, 1):  # stratified: fold sizes differ by at most one within a class
        sizes = np.bincount(folds[labels == cls], minlength=5)
        assert sizes.max() - sizes.min() <= 1
    masks, scheme = member_holdouts(labels, np.zeros(12, int), 5, "wells", seed=3)
    assert "5-fold" in scheme
    assert np.array_equal(np.sum(masks, axis=0), np.ones(12))  # each well held out once
    x, y, g = cell_arrays({"control": None, "treated": {"Mito": 1.0}}, 6, sites=3, size=32)
    result = run(train_arrays(None, x, y, TrainConfig(epochs=1, ensemble=3), groups=g))
    for member in result.model.members:
        info = member.training_info
        assert info["n_train_sites"] % 3 == 0 and info["n_heldout_sites"] % 3 == 0
    held = result.evidence["held_out"]
    assert held["n_wells"] == 12 and np.sum(held["confusion"]) == 12
    masks, scheme = member_holdouts(labels, np.array([0] * 6 + [1] * 6), 3, "plate", seed=0)
    assert [m.nonzero()[0].min() for m in masks] == [0, 6, 0]
    with pytest.raises(Exception, match="at least 2 plates"):
        member_holdouts(labels, np.zeros(12, int), 3, "plate", seed=0)


# --- what training measures -----------------------------------------------------------------
def test_phenotype_at_native_pixels_needs_native_crops() -> None:
    """Binning erases a one-pixel texture: whole-site resizing (64 -> 16 px) stays near
    chance, 16-pixel crops at bin 1 find it and rank its stain first."""
    x, y, g = fine_texture_arrays(20, size=64)
    common = dict(epochs=8, batch_size=8, lr=3e-3, mixing_lr=5e-2, ensemble=3, seed=0)
    native = run(train_arrays(None, x, y, TrainConfig(**common, bin=1, crop=16),
                              channel_names=CHANNELS, groups=g))  # fmt: skip
    resized = run(train_arrays(None, x, y, TrainConfig(**common, crop="full", input_size=16),
                               channel_names=CHANNELS, groups=g))  # fmt: skip
    assert native.evidence["held_out"]["balanced_accuracy"] >= 0.9
    assert max(native.importance, key=native.importance.get) == "AGP"
    assert resized.evidence["held_out"]["balanced_accuracy"] <= 0.7
    assert ev.verdict(resized.evidence).kind == ev.DID_NOT_LEARN


def test_streamed_training_equals_in_memory_training_at_crop_full(tmp_path) -> None:
    from napari_dcmix.plate import open_plate
    from napari_dcmix.synthetic import write_synthetic_plate

    synth = write_synthetic_plate(tmp_path / "p", n_wells=8, sites=2, image_size=32, seed=4)
    plate = open_plate(synth.path)
    cfg = TrainConfig(epochs=2, batch_size=4, ensemble=2, crop="full", input_size=16)
    streamed = run(train(None, plate, synth.labels, cfg))
    keys = [(w, s) for w in plate.wells for s in plate.sites(w)]
    x = np.stack([plate.read(w, s) for w, s in keys])
    y = np.array([synth.labels[w] for w, _ in keys])
    in_memory = run(train_arrays(None, x, y, cfg, channel_names=plate.channels,
                                 groups=np.array([w for w, _ in keys])))  # fmt: skip
    a, b = streamed.model.state_dict(), in_memory.model.state_dict()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert streamed.evidence == in_memory.evidence


def _tiff_plate(folder, n_wells: int, sites: int = 2, size: int = 64) -> dict[str, str]:
    """A TIFF-folder plate of random sites (a bright square in the last stain marks the
    treated wells), written quickly; returns its labels."""
    import tifffile

    from napari_dcmix.synthetic import plate_wells

    folder.mkdir()
    rng = np.random.default_rng(0)
    labels = {}
    for i, well in enumerate(plate_wells(n_wells)):
        labels[well] = "treated" if i % 2 else "control"
        for s in range(1, sites + 1):
            site = rng.integers(100, 1000, (5, size, size)).astype(np.uint16)
            if i % 2:
                site[4, 8:24, 8:24] += 2000
            tifffile.imwrite(folder / f"{well}_s{s}.tif", site)
    return labels


_PEAK_RSS = """
import sys
from napari_dcmix.model import TrainConfig, train
from napari_dcmix.plate import open_plate
from napari_dcmix.plate.labels import read_labels_csv
plate = open_plate(sys.argv[1])
cfg = TrainConfig(epochs=1, batch_size=32, ensemble=1, crop=64, cache_mb=0, k=1,
                  read_threads=1, val_fraction=0.1, max_tiles=1)
gen = train(None, plate, read_labels_csv(sys.argv[2]), cfg)
for _ in gen:
    pass
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""


def test_training_memory_does_not_grow_with_the_number_of_wells(tmp_path) -> None:
    """Peak RSS (VmHWM of a fresh process) of training on 80 and 320 wells of 256-pixel sites
    (one each; more than the 64 sites sampled for the normalisation) is about the same:
    holding the 240 extra sites as float32 would take 315 MB more (the allocator's own
    variation between runs is some tens of MB)."""
    import os
    import subprocess
    import sys

    from napari_dcmix.plate.labels import write_labels_csv

    peaks = {}
    for n in (80, 320):
        labels = _tiff_plate(tmp_path / f"p{n}", n, sites=1, size=256)
        write_labels_csv(tmp_path / f"l{n}.csv", labels)
        out = subprocess.run(
            [sys.executable, "-c", _PEAK_RSS, str(tmp_path / f"p{n}"), str(tmp_path / f"l{n}.csv")],
            capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "2"},
        )  # fmt: skip
        peaks[n] = int(out.stdout.split()[-1]) / 1024  # MB
    assert peaks[320] < peaks[80] + 60, peaks


def test_intervals_widen_as_the_signal_weakens() -> None:
    """The same task with a strong and a faint bright square in one channel: the members
    agree less on the faint one, so the intervals are wider."""
    widths = {}
    y = np.arange(48) % 2
    for amplitude in (3.0, 0.7):
        x = np.random.default_rng(1).normal(size=(48, 4, 16, 16)).astype(np.float32)
        x[:, 2, 4:12, 4:12] += amplitude * y[:, None, None]
        cfg = TrainConfig(epochs=4, batch_size=8, lr=3e-3, mixing_lr=5e-2, ensemble=5)
        result = run(train_arrays(None, x, y, cfg, groups=np.arange(48)))
        widths[amplitude] = np.mean([hi - lo for lo, hi in result.evidence["interval"].values()])
    assert widths[0.7] > widths[3.0], widths


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_phenotype_names_no_stain(seed: int) -> None:
    x, y, g = cell_arrays({"control": None, "treated": None}, 8, sites=2, size=32, seed=seed)
    cfg = TrainConfig(epochs=6, batch_size=8, mixing_lr=0.1, ensemble=5, seed=seed)
    v = ev.verdict(run(train_arrays(None, x, y, cfg, channel_names=CHANNELS, groups=g)).evidence)
    assert v.top is None and v.kind == ev.DID_NOT_LEARN, v.sentence


def test_clear_phenotype_is_named() -> None:
    x, y, g = cell_arrays({"control": None, "treated": {"Mito": 1.0}}, 8, sites=2, size=48)
    cfg = TrainConfig(epochs=10, batch_size=8, mixing_lr=0.1, ensemble=5)
    result = run(train_arrays(None, x, y, cfg, channel_names=CHANNELS, groups=g))
    v = ev.verdict(result.evidence)
    assert v.kind == ev.STAIN and v.top == "Mito", v.sentence


def test_per_class_importance_ranks_each_class_stain() -> None:
    x, y, g = cell_arrays(
        {"control": None, "mito": {"Mito": 1.0}, "er": {"ER": 1.0}}, 6, sites=2, size=48
    )
    cfg = TrainConfig(epochs=8, batch_size=8, mixing_lr=0.1, ensemble=3)
    result = run(train_arrays(None, x, y, cfg, channel_names=CHANNELS, groups=g))
    e = result.evidence
    assert e["reference"] == "control" and set(e["per_class"]) == {"mito", "er"}
    for cls, stain in (("mito", "Mito"), ("er", "ER")):
        assert max(e["per_class"][cls], key=e["per_class"][cls].get) == stain, e["per_class"]
    assert set(ev.class_verdicts(e)) == {"mito", "er"}


def test_imbalanced_plate_is_not_a_constant_predictor() -> None:
    """8 treated and 88 control wells: the class-balanced loss still learns the treated."""
    x, y, g = cell_arrays({"control": None, "treated": {"Mito": 1.0}},
                          {"control": 88, "treated": 8}, sites=1, size=32)  # fmt: skip
    cfg = TrainConfig(epochs=6, batch_size=16, mixing_lr=0.1, ensemble=2)
    result = run(train_arrays(None, x, y, cfg, channel_names=CHANNELS, groups=g))
    confusion = np.array(result.evidence["held_out"]["confusion"])
    assert confusion[:, 1].sum() > 0, confusion  # some wells predicted treated
    assert confusion[1, 1] >= 4, confusion  # most treated wells found


def test_held_out_wells_seen_by_the_starting_model_are_no_evidence(tmp_path) -> None:
    """A model trained on a plate, then fine-tuned on the same wells: the held-out wells
    trained the starting model's backbone, so the verdict refuses to call them evidence."""
    from napari_dcmix.plate import open_plate

    labels = _tiff_plate(tmp_path / "p", 8, sites=1, size=32)
    plate = open_plate(tmp_path / "p")
    cfg = TrainConfig(epochs=1, batch_size=8, ensemble=2, crop=32)
    first = run(train(None, plate, labels, cfg)).model
    assert len(first.training_info["trained_wells"]) == 8
    tuned = run(train(first, plate, labels, TrainConfig(epochs=1, ensemble=2, mode="mixing",
                                                         fresh_mixing=True)))  # fmt: skip
    v = ev.verdict(tuned.evidence)
    assert tuned.evidence["held_out"]["seen_by_start"] == 8
    assert v.kind == ev.NO_EVIDENCE and "no evidence: 8 of them trained the model" in v.sentence


def test_leave_one_plate_out_names_a_class_only_on_the_held_out_plate(tmp_path) -> None:
    from napari_dcmix.errors import ModelError
    from napari_dcmix.plate import open_plate

    a = _tiff_plate(tmp_path / "a", 4, sites=1, size=32)
    b = _tiff_plate(tmp_path / "b", 4, sites=1, size=32)
    b = {w: ("rare" if i == 0 else c) for i, (w, c) in enumerate(b.items())}
    plates = [open_plate(tmp_path / "a"), open_plate(tmp_path / "b")]
    cfg = TrainConfig(epochs=1, ensemble=2, holdout="plate", crop=32)
    with pytest.raises(ModelError, match=r"holds out b .*without class\(es\) rare"):
        run(train(None, plates, [a, b], cfg))
