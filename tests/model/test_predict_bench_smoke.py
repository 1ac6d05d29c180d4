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
    import torch

    from napari_dcmix.model import build_model

    model = build_model(list("abc"), ["x", "y"], input_size=16, seed=0)
    x = np.random.default_rng(0).normal(size=(4, 3, 16, 16)).astype(np.float32)
    rate, cpu = bench.ceiling_sample(model, x, 1)
    mix = bench.mixing_overhead(model, x, 2)
    assert rate > 0 and cpu >= 0 and {"dcmix", "plain", "mixing", "overhead"} <= set(mix)
    table = bench.fmt_table([("(a) forward ceiling", f"{rate:.1f} img/s", "note")])
    assert "(a) forward ceiling" in table and torch.get_num_threads() >= 1
