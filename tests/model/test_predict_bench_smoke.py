"""Smoke test of bench/predict.py (the benchmark itself is not a test): a tiny plate, one round."""

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


def test_block_mean_what_if_matches_area_resize(bench):
    from napari_dcmix.model.data import preprocess
    from napari_dcmix.plate.normalise import ChannelStats

    rng = np.random.default_rng(0)
    stats = ChannelStats(list("abc"), [10.0] * 3, [4000.0] * 3)
    what_if = bench.block_mean_preprocess(preprocess)
    # power-of-two factor: bit-identical; other factors: within float32 rounding
    for shape, size, exact in (((3, 64, 64), 16, True), ((3, 48, 96), 16, False),
                               ((3, 50, 50), 16, False)):  # fmt: skip
        image = rng.integers(0, 65535, shape, dtype=np.uint16)
        got, want = what_if(image, size, stats), preprocess(image, size, stats)
        if exact:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_bench_runs_and_prints_one_table(bench, tmp_path, capsys):
    argv = ["--wells", "4", "--sites", "1", "--site-size", "128", "--repeats", "1",
            "--batch-size", "4", "--threads", "1", "--workdir", str(tmp_path)]  # fmt: skip
    rc = bench.main(argv)
    assert rc == 0
    out = capsys.readouterr().out
    keys = ("(a) forward ceiling", "(b) end-to-end in-process (tiff)",
            "(b) CLI subprocess (ome-zarr)", "(c) ratio (b)/(a) (ome-zarr)",
            "(d) peak RSS subprocess (tiff)", "(e) mixing overhead", "all targets")  # fmt: skip
    for key in keys:
        assert key in out
