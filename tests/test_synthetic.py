"""Synthetic plates: deterministic, interleaved labels, phenotype only in the chosen channels."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import open_plate
from napari_dcmix.plate.labels import read_labels_csv
from napari_dcmix.plate.wells import well_row_col
from napari_dcmix.synthetic import (
    assign_labels,
    load_synthetic_plate,
    plate_wells,
    synthesize_plate_arrays,
    synthesize_site,
    write_synthetic_plate,
)


def test_deterministic_per_seed():
    a = synthesize_plate_arrays(4, 2, image_size=32, seed=1)
    b = synthesize_plate_arrays(4, 2, image_size=32, seed=1)
    c = synthesize_plate_arrays(4, 2, image_size=32, seed=2)
    assert np.array_equal(a.images, b.images) and a.labels == b.labels
    assert not np.array_equal(a.images, c.images)
    assert np.array_equal(
        synthesize_site([3, 1], image_size=16), synthesize_site([3, 1], image_size=16)
    )


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_dtypes_and_shape(dtype):
    site = synthesize_site(0, ["DNA", "Mito", "other"], image_size=40, dtype=dtype)
    assert site.shape == (3, 40, 40) and site.dtype == np.dtype(dtype)
    assert np.isfinite(site).all() and site.std(axis=(1, 2)).min() > 0


def test_labels_interleave_across_the_plate():
    wells = plate_wells(96)
    labels = assign_labels(wells, 0.5, seed=0)
    assert sum(v == "treated" for v in labels.values()) == 48
    for half in (wells[:48], wells[48:]):
        assert 20 <= sum(labels[w] == "treated" for w in half) <= 28
    columns = {c: [labels[w] for w in wells if well_row_col(w)[1] == c] for c in range(1, 13)}
    assert all(len(set(v)) == 2 for v in columns.values())  # no column is one class
    assert sum(v == "treated" for v in assign_labels(wells, 0.25, 0).values()) == 24


def _granularity(images: np.ndarray) -> np.ndarray:
    """Per site and channel: 99.5th percentile / mean (the puncta of the phenotype)."""
    flat = images.reshape(*images.shape[:3], -1).astype(np.float64)
    return np.percentile(flat, 99.5, axis=-1) / flat.mean(axis=-1)


def _effect(values: np.ndarray, treated: np.ndarray) -> float:
    a, b = values[treated], values[~treated]
    return float((a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2))


def test_phenotype_only_in_chosen_channels():
    arrays = synthesize_plate_arrays(
        24, 2, image_size=64, seed=4, phenotype_channel="RNA", second_channel="AGP",
        second_strength=0.5,
    )  # fmt: skip
    assert arrays.ground_truth == {"DNA": 0.0, "ER": 0.0, "RNA": 1.0, "AGP": 0.5, "Mito": 0.0}
    treated = np.array([[arrays.labels[w] == "treated"] * 2 for w in arrays.wells])
    texture = _granularity(arrays.images)
    means = arrays.images.reshape(*arrays.images.shape[:3], -1).mean(axis=-1)
    effects = {c: _effect(texture[..., i], treated) for i, c in enumerate(arrays.channels)}
    assert effects["RNA"] > 2.0 and effects["AGP"] > 1.0
    assert all(abs(effects[c]) < 1.0 for c in ("DNA", "ER", "Mito"))
    # mean intensity alone is a weak cue
    assert abs(_effect(means[..., arrays.channels.index("RNA")], treated)) < 1.5


def test_write_records_labels_and_ground_truth(tmp_path):
    synth = write_synthetic_plate(tmp_path, "tiff", n_wells=6, sites=1, image_size=16, seed=9,
                                  second_channel="DNA", second_strength=0.2)  # fmt: skip
    assert read_labels_csv(synth.labels_csv) == synth.labels
    assert set(synth.labels.values()) == {"control", "treated"}
    record = json.loads((tmp_path / "ground_truth.json").read_text())
    assert record["channel_strength"] == {"DNA": 0.2, "ER": 0.0, "RNA": 0.0, "AGP": 0.0,
                                          "Mito": 1.0}  # fmt: skip
    assert load_synthetic_plate(tmp_path) == synth
    assert open_plate(synth.path).wells == synth.wells


def test_rxrx1_maps_channel_names(tmp_path):
    synth = write_synthetic_plate(tmp_path, "rxrx1", n_wells=2, sites=1, image_size=16,
                                  channels=("DNA", "Mito"), phenotype_channel="Mito")  # fmt: skip
    assert synth.channels == ["Hoechst", "MitoTracker"]
    assert synth.ground_truth == {"Hoechst": 0.0, "MitoTracker": 1.0}
    plate = open_plate(synth.path)
    assert plate.channels == ["Hoechst", "MitoTracker"] and plate.dtype == np.uint8


def test_explicit_wells_beyond_z(tmp_path):
    synth = write_synthetic_plate(tmp_path, "operetta", wells=["af48", "B2"], sites=1,
                                  image_size=16)  # fmt: skip
    assert open_plate(synth.path).wells == ["B02", "AF48"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"phenotype_channel": "GFP"}, "phenotype channel 'GFP'"),
     ({"second_channel": "Mito"}, "must differ"), ({"layout": "cv7000"}, "unknown layout")],
)  # fmt: skip
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(PlateError, match=match):
        write_synthetic_plate(tmp_path, **{"n_wells": 2, "sites": 1, **kwargs})


def test_generation_is_fast():
    start = time.perf_counter()
    synthesize_plate_arrays(24, 4, image_size=128, seed=0)
    assert time.perf_counter() - start < 5.0  # ~0.6 s here; 96 wells x 4 sites take ~2.5 s
