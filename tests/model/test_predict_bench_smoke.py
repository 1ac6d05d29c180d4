"""Smoke test of bench/predict.py (the benchmark itself is not a test): its helpers, quickly."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "predict.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("dcmix_bench_predict", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_pieces_run_and_format_one_table(bench):
    """The bench's measurement helpers on a tiny model (the full run takes minutes and starts
    CLI subprocesses: it is not a test)."""
    from napari_dcmix.model import build_model

    model = build_model(list("abc"), ["x", "y"], input_size=16, seed=0)
    x = np.random.default_rng(0).normal(size=(4, 3, 16, 16)).astype(np.float32)
    rate, cpu = bench.ceiling_sample(model, x, 3)
    assert rate > 0 and cpu > 0  # images/s and CPU seconds per image of real forwards
    mix = bench.mixing_overhead(model, x, 6)
    assert {"dcmix", "plain", "mixing", "overhead"} <= set(mix)
    # the layer alone is a small part of the whole forward it is timed against
    assert 0 < mix["mixing"] < mix["dcmix"] and mix["plain"] > 0
    rows = [("(a) forward ceiling", f"{rate:.1f} img/s", "note"), ("(b) x", "1", "")]
    lines = bench.fmt_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    # one column of values: every value starts where the header's "value" does
    start = lines[0].index("value")
    assert lines[2][start:].startswith(rows[0][1]) and lines[3][start:].startswith("1")
    assert lines[2].endswith("note") and lines[3] == lines[3].rstrip()
