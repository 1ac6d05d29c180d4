"""The README's demo path with the form defaults: the sample plate, the shipped default model,
the demo's annotated wells, press Fine-tune -> the chart should move to Mito (the phenotype)."""

from __future__ import annotations

import time

import pytest
import torch

from napari_dcmix._napari.demo import demo_annotations


def test_default_finetune_on_the_sample_ranks_mito_first(viewer, qtbot, tmp_path):
    from napari_dcmix._napari.widget import DcmixWidget
    from napari_dcmix.sample import sample_plate

    sample = sample_plate(tmp_path / "sample")
    w = DcmixWidget(viewer)
    w.dialogs.confirm = lambda title, question: pytest.fail(question)
    viewer.window.add_dock_widget(w, name="DCMIX", area="right")
    w.show_chart()
    assert w.open_plate(sample.path) and w.load_model(None)
    w.set_annotations(demo_annotations(sample.labels))
    form = w.finetune_section.form
    assert form.value("mode") == "mixing" and form.value("fresh_mixing")  # the defaults
    assert (form.value("epochs"), form.value("mixing_lr")) == (30, 0.1)
    before = w.model
    params = [p.detach().clone() for p in before.mixing.parameters()]
    t0 = time.perf_counter()
    job = w.run_finetune()
    qtbot.waitUntil(lambda: not job.is_running and w.job is None, timeout=300_000)
    assert not job.failed and not job.cancelled
    assert w.model is not before and w.model_dirty
    assert all(torch.equal(a, b) for a, b in zip(params, before.mixing.parameters(), strict=True))
    ranking = w.chart.ranking()
    print(f"default fine-tune: {time.perf_counter() - t0:.1f} s,", w.model.channel_importance())
    assert ranking[0] == "Mito"
