"""Fixtures for the napari layer: a small synthetic plate, small models, a docked widget."""

from __future__ import annotations

import pytest

PHENOTYPE = "Mito"


@pytest.fixture(scope="session")
def synth_plate(tmp_path_factory):
    """12 wells x 2 sites x 64 px, phenotype in Mito (written once per session)."""
    from napari_dcmix.synthetic import write_synthetic_plate

    root = tmp_path_factory.mktemp("plate")
    return write_synthetic_plate(
        root / "plate", n_wells=12, sites=2, image_size=64, seed=0, phenotype_channel=PHENOTYPE
    )


@pytest.fixture(scope="session")
def other_plate(tmp_path_factory):
    """A second, smaller plate (6 wells x 1 site) for switching plates."""
    from napari_dcmix.synthetic import write_synthetic_plate

    root = tmp_path_factory.mktemp("other")
    return write_synthetic_plate(
        root / "other", n_wells=6, sites=1, image_size=64, seed=1, plate_name="Other"
    )


@pytest.fixture(scope="session")
def plate_stats(synth_plate):
    from napari_dcmix.plate import open_plate
    from napari_dcmix.plate.normalise import estimate_channel_stats

    return estimate_channel_stats(open_plate(synth_plate.path), seed=0)


@pytest.fixture
def small_model(synth_plate, plate_stats):
    """An untrained DCMIX model for the plate's channels (64 px input: quick on the CPU), with
    the plate's normalisation so that it can predict."""
    from napari_dcmix.model import build_model

    model = build_model(synth_plate.channels, ["control", "treated"], input_size=64, seed=0)
    model.normalisation = plate_stats
    return model


class Answers:
    """Stands in for ``Dialogs.confirm``: records each question, answers ``answer``; the widget
    fixture's default (``None``) fails the test, so no unexpected dialog goes unnoticed."""

    def __init__(self, answer: bool | None = None) -> None:
        self.answer, self.questions = answer, []

    def __call__(self, title: str, question: str) -> bool:
        self.questions.append(question)
        if self.answer is None:
            pytest.fail(f"unexpected confirmation dialog: {question}")
        return self.answer


@pytest.fixture
def notifications():
    """Messages shown through napari's notification manager during the test."""
    from napari.utils.notifications import notification_manager

    seen: list[str] = []

    def record(event) -> None:
        seen.append(str(getattr(event, "message", event)))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer(show=True)


@pytest.fixture
def widget(viewer, qtbot, synth_plate, small_model):
    """The DCMIX widget and chart docked, the synthetic plate open, the small model loaded."""
    from napari_dcmix._napari.widget import DcmixWidget

    w = DcmixWidget(viewer)
    w.dialogs.confirm = Answers()  # a test that expects a question installs its own answer
    viewer.window.add_dock_widget(w, name="DCMIX", area="right")
    w.show_chart()
    assert w.open_plate(synth_plate.path)
    assert w.load_model(small_model)
    w.warm_thread.join(60)
    qtbot.wait(50)
    viewer.reset_view()
    return w


@pytest.fixture
def wait_for(qtbot, widget):
    """``wait_for(job)``: wait until the job has finished and the widget is idle again."""

    def wait(job, timeout: int = 60_000) -> None:
        assert job is not None
        qtbot.waitUntil(lambda: not job.is_running and widget.job is None, timeout=timeout)

    return wait


@pytest.fixture
def answer(widget):
    """``answer(True | False)``: confirmations get that answer; returns the recorder."""

    def install(value: bool) -> Answers:
        widget.dialogs.confirm = Answers(value)
        return widget.dialogs.confirm

    return install


@pytest.fixture
def phenotype() -> str:
    return PHENOTYPE


@pytest.fixture
def evidence_model():
    """``evidence_model(channels, classes, evidence)``: a DcmixClassifier carrying a hand-made
    evidence dict (the schema of napari_dcmix.model.evidence)."""
    from napari_dcmix.model import build_model

    def make(channels, classes, evidence):
        model = build_model(list(channels), list(classes), input_size=32, seed=0)
        model.evidence = evidence
        return model

    return make
