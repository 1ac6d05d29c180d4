"""bench/predict.py's measuring pieces (the benchmark itself is not a test: it takes minutes and
starts CLI subprocesses). Networks of known cost (they sleep a set time per call, which holds
on a busy machine where compute time does not) check that the rates, CPU figures and the
mixing overhead the bench prints follow from what it timed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

BENCH = Path(__file__).resolve().parents[2] / "bench" / "predict.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("dcmix_bench_predict", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Sleeper(nn.Module):
    """A network that takes ``seconds`` per call (asleep: no CPU, the GIL released) and records
    the intra-op threads torch gives the thread that calls it."""

    def __init__(self, seconds: float, output: Callable | None = None) -> None:
        super().__init__()
        self.seconds = seconds
        self.output = output
        self.threads: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.threads.append(torch.get_num_threads())
        time.sleep(self.seconds)
        return self.output(x) if self.output is not None else torch.zeros(len(x), 2)


def test_ceilings_follow_the_time_of_their_batches(bench):
    """4 images per 40 ms call: 100 img/s on one thread, 200 in two forward threads side by side
    (each with 1 intra-op thread); sleeping costs (almost) no CPU per image."""
    x = np.zeros((4, 3, 8, 8), np.float32)
    net = Sleeper(0.04)
    rate, cpu = bench.ceiling_sample(net, x, 3)
    assert 70 <= rate <= 101, rate
    assert cpu < 0.3 / rate  # CPU per image: a small part of the wall time per image
    before = torch.get_num_threads()
    net.threads.clear()
    rate2, cpu2 = bench.parallel_ceiling_sample(net, x, 6, threads=2)
    assert 140 <= rate2 <= 202, rate2
    assert cpu2 < 0.3 / rate2
    assert net.threads == [1] * 8  # (1 warm-up + 3 batches) x 2 threads, 1 intra-op thread each
    assert torch.get_num_threads() == before


def test_ceilings_run_their_batches_in_passes_of_the_size_asked(bench):
    """8 images per batch in passes of 2: four 40 ms calls per batch, 50 img/s on one thread
    (200 in one pass of 8); in passes of 4 in two threads side by side: 200 img/s (400)."""
    x = np.zeros((8, 3, 8, 8), np.float32)
    seen: list[int] = []

    class Counting(Sleeper):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            seen.append(len(t))
            return super().forward(t)

    rate, _ = bench.ceiling_sample(Counting(0.04), x, 2, per_pass=2)
    assert 35 <= rate <= 51, rate
    assert seen == [2] * 12  # (1 warm-up + 2 batches) x 4 passes
    seen.clear()
    rate2, _ = bench.parallel_ceiling_sample(Counting(0.04), x, 4, threads=2, per_pass=4)
    assert 140 <= rate2 <= 202, rate2
    assert seen == [4] * 12  # (1 warm-up + 2 batches) x 2 threads x 2 passes


def test_mixing_overhead_measures_the_mixing_layer(bench):
    """Mixing 10 ms and backbone 40 ms per call: the DCMIX forward costs 25 % more than the
    backbone on premixed input, and the mixing layer alone 10 ms."""
    from napari_dcmix.model import build_model

    model = build_model(list("abc"), ["x", "y"], input_size=16, seed=0)
    k, features = model.k, model.head.in_features
    model.mixing = Sleeper(0.01, lambda x: x[:, :k])  # K blends, no compute
    model.backbone = Sleeper(0.04, lambda x: torch.zeros(len(x), features))
    x = np.random.default_rng(0).normal(size=(2, 3, 16, 16)).astype(np.float32)
    mix = bench.mixing_overhead(model, x, 6)
    assert 0.15 <= mix["overhead"] <= 0.35, mix
    assert 0.0095 <= mix["mixing"] <= 0.03, mix
    assert 0.0395 <= mix["plain"] <= 0.08 and mix["dcmix"] > mix["plain"], mix


def test_table_columns_line_up(bench):
    rows = [
        ("machine", "2 CPUs", "a note"),
        ("(c) ratio (b)/(a) (ome-zarr-b2r)", "0.71", "target: MET"),
        ("plate tiff", "", "TIFF"),
        ("x", "a much longer value than the others", ""),
    ]
    lines = bench.fmt_table(rows).splitlines()
    header = lines[0]
    value_col, note_col = header.index("value"), header.index("note")
    assert header.startswith("measure") and set(lines[1]) == {"-"}
    for line, (measure, value, note) in zip(lines[2:], rows, strict=True):
        assert line[:value_col].rstrip() == measure
        assert line[value_col:note_col].rstrip() == value
        assert line[note_col:] == note


def test_targets_follow_the_issue(bench):
    """Compressed plates: 0.9 of their own CPU-share bound; TIFF and tiles: 0.85 of the ceiling
    (the figures of the last measurement before this change: OME-Zarr 0.62 against a bound
    of 0.75, bioformats2raw 0.68 against 0.87, TIFF 0.82: all missed)."""
    assert not bench.target_met("ome-zarr", 0.62, 0.75)
    assert not bench.target_met("ome-zarr-b2r", 0.68, 0.87)
    assert not bench.target_met("tiff", 0.82, 0.91)
    assert bench.target_met("ome-zarr", 0.68, 0.75) and bench.target_met("tiff", 0.85, 0.99)
    assert not bench.target_met("tiled", 0.84, 0.99) and bench.target_met("tiled", 0.9, 0.5)


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs /proc/stat")
def test_other_cpu_counts_another_process(bench):
    """A process that is not waited for until the block ends is 'other' CPU: at least the half
    second of CPU it burns is counted."""
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\n"
    with bench.OtherCpu() as other:
        proc = subprocess.Popen([sys.executable, "-c", spin])
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # finished, not yet reaped
    proc.wait()
    assert other.seconds >= 0.45, other.seconds
    assert 0 < other.share <= 1.0 and other.wall > 0.45


def test_thread_team_restores_torch_default(bench):
    before = torch.get_num_threads()
    with bench.torch_thread_team(2) as run:
        assert sorted(run(torch.get_num_threads)) == [1, 1]
        fresh = {}
        t = threading.Thread(target=lambda: fresh.setdefault("n", torch.get_num_threads()))
        t.start()
        t.join()
        assert fresh["n"] == before
    assert torch.get_num_threads() == before


def test_side_by_side_costs_both_kinds_of_work(bench, tmp_path):
    """Forward threads and plain reader threads run at once; both costs are measured."""
    from napari_dcmix.model import build_model
    from napari_dcmix.plate import open_plate
    from napari_dcmix.plate.normalise import estimate_channel_stats
    from napari_dcmix.synthetic import write_synthetic_plate

    channels = ["DNA", "ER", "Mito"]
    synth = write_synthetic_plate(tmp_path, layout="tiff", n_wells=2, sites=2, image_size=32,
                                  channels=channels, seed=0)  # fmt: skip
    model = build_model(channels, ["a", "b"], input_size=16, seed=0)
    model.normalisation = estimate_channel_stats(open_plate(synth.path))
    x = np.zeros((8, 3, 16, 16), np.float32)
    f, r = bench.side_by_side_cpu_ms(model, x, synth.path, threads=2, read_threads=2,
                                     n_batches=4)  # fmt: skip
    assert 0 < f < 1000 and 0 < r < 1000, (f, r)
