"""Fixtures for the Qt-free session: small synthetic plates, a small model, a session."""

from __future__ import annotations

import pytest

PHENOTYPE = "Mito"


@pytest.fixture(scope="session")
def synth_plate(tmp_path_factory):
    """12 wells x 2 sites x 64 px, phenotype in Mito (written once per test session)."""
    from napari_dcmix.synthetic import write_synthetic_plate

    root = tmp_path_factory.mktemp("session-plate")
    return write_synthetic_plate(
        root / "plate", n_wells=12, sites=2, image_size=64, seed=0, phenotype_channel=PHENOTYPE
    )


@pytest.fixture(scope="session")
def rxrx1_plate(tmp_path_factory):
    """An RxRx1-style plate: the same stains named Hoechst, ConA, Phalloidin, Syto14,
    MitoTracker (8-bit PNGs)."""
    from napari_dcmix.synthetic import write_synthetic_plate

    root = tmp_path_factory.mktemp("session-rxrx1")
    return write_synthetic_plate(
        root / "rxrx1", layout="rxrx1", n_wells=8, sites=1, image_size=64, seed=3
    )


@pytest.fixture(scope="session")
def plate_stats(synth_plate):
    from napari_dcmix.plate import open_plate
    from napari_dcmix.plate.normalise import estimate_channel_stats

    return estimate_channel_stats(open_plate(synth_plate.path), seed=0)


@pytest.fixture
def small_model(synth_plate, plate_stats):
    """An untrained model for the plate's stains (64 px input) with the plate's
    normalisation, so it can predict."""
    from napari_dcmix.model import build_model

    model = build_model(synth_plate.channels, ["control", "treated"], input_size=64, seed=0)
    model.normalisation = plate_stats
    return model


@pytest.fixture
def session(synth_plate, small_model):
    """A session with the synthetic plate open and the small model loaded."""
    from napari_dcmix.session import DcmixSession

    s = DcmixSession()
    s.open_plate(synth_plate.path)
    s.load_model(small_model)
    return s


@pytest.fixture
def recorder():
    """``recorder(session)``: a list of (signal name, args) of every session event."""

    def attach(session):
        seen: list[tuple[str, tuple]] = []
        for name in session.events.signals:
            getattr(session.events, name).connect(lambda *args, _n=name: seen.append((_n, args)))
        return seen

    return attach


def model_with_evidence(channels, classes, evidence):
    """A DcmixClassifier carrying a hand-made evidence dict (the schema of
    napari_dcmix.model.evidence)."""
    from napari_dcmix.model import build_model

    model = build_model(list(channels), list(classes), input_size=32, seed=0)
    model.evidence = evidence
    return model


@pytest.fixture
def evidence_model():
    return model_with_evidence


@pytest.fixture(scope="session")
def damaged_plate(synth_plate, tmp_path_factory):
    """A copy of the synthetic plate as an imager might leave it: A01 site 2 and both sites of
    A03 truncated (unreadable: skipped with --skip-bad-sites, A03 entirely), A02 site 1 all
    zeros (readable, but a constant input: a note)."""
    import shutil
    from pathlib import Path

    import numpy as np
    import tifffile

    folder = tmp_path_factory.mktemp("damaged") / "plate"
    shutil.copytree(synth_plate.path, folder)
    for name in ("A01_s2.tif", "A03_s1.tif", "A03_s2.tif"):
        site = folder / name
        site.write_bytes(site.read_bytes()[:300])
    blank = folder / "A02_s1.tif"
    shape, dtype = tifffile.imread(blank).shape, tifffile.imread(blank).dtype
    tifffile.imwrite(blank, np.zeros(shape, dtype))
    return Path(folder)
