from __future__ import annotations

import csv
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_dcmix.errors import ModelError, PlateError
from napari_dcmix.model import (
    build_model,
    predict_arrays,
    predict_plate,
    predict_plate_all,
    resolve_device,
)
from napari_dcmix.plate.normalise import estimate_channel_stats

CHANNELS = ["DNA", "ER", "RNA", "AGP", "Mito"]


@pytest.fixture
def model(array_plate):
    plate, _ = array_plate
    m = build_model(CHANNELS, ["control", "treated"], input_size=24, seed=1)
    with torch.no_grad():
        m.mixing.logits.normal_(generator=torch.Generator().manual_seed(0))
        m.head.bias.copy_(torch.tensor([0.3, -0.2]))
    m.normalisation = estimate_channel_stats(plate)
    return m.eval()


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            resolve_device("cuda:1")
    with pytest.raises(ModelError, match="expected auto"):
        resolve_device("tpu")


def test_streaming_equals_one_batch_and_many_batches(array_plate, model) -> None:
    plate, _ = array_plate
    images = np.stack([plate.read(w, s) for w, s in plate.site_keys()])
    one = predict_arrays(model, images, batch_size=len(images), device="cpu")
    many = predict_arrays(model, images, batch_size=5, device="cpu")
    streamed = predict_plate_all(model, plate, device="cpu", batch_size=7, read_threads=3)
    single = predict_plate_all(model, plate, device="cpu", batch_size=1, read_threads=1)
    s = np.stack([p.probs for p in streamed.sites])
    assert [(p.well, p.site) for p in streamed.sites] == plate.site_keys()
    np.testing.assert_allclose(one, many, atol=1e-6, rtol=0)
    np.testing.assert_allclose(one, s, atol=1e-6, rtol=0)
    np.testing.assert_allclose(one, np.stack([p.probs for p in single.sites]), atol=1e-6, rtol=0)
    assert np.allclose(one.sum(1), 1) and streamed.device == "cpu"


@pytest.mark.parametrize("layout", ["tiff", "ome-zarr", "imagexpress"])
def test_streaming_from_disk_equals_arrays(tmp_path, model, layout) -> None:
    """Streamed from files on disk by several reader threads (OME-Zarr chunks decoded
    directly): the same predictions as the arrays ``Plate.read`` returns, in one batch."""
    from napari_dcmix.plate import open_plate
    from napari_dcmix.synthetic import write_synthetic_plate

    synth = write_synthetic_plate(tmp_path, layout=layout, n_wells=6, sites=3, image_size=48,
                                  channels=CHANNELS, seed=2)  # fmt: skip
    plate = open_plate(synth.path)
    images = np.stack([plate.read(w, s) for w, s in plate.site_keys()])
    one = predict_arrays(model, images, batch_size=len(images), device="cpu")
    streamed = predict_plate_all(model, plate, device="cpu", batch_size=4, read_threads=3)
    assert [(p.well, p.site) for p in streamed.sites] == plate.site_keys()
    np.testing.assert_allclose(one, np.stack([p.probs for p in streamed.sites]), atol=1e-6)


def test_progress_memory_window_and_cancel(array_plate, model) -> None:
    plate, _ = array_plate
    gen = predict_plate(model, plate, device="cpu", batch_size=4)
    events = list(_drain(gen))
    assert [e.done for e in events] == [4, 8, 12, 16, 20, 24]
    assert all(e.total == 24 and e.device == "cpu" for e in events)
    # bounded window: stopping after the first batch reads far fewer than all sites: at most
    # the read-ahead window (max(2 x 2 sites, 2 + 2 x 2 read threads) = 6) plus the batch each
    # forward thread holds
    from napari_dcmix.model.inference import forward_split

    plate.reads = 0
    calls = iter(range(100))
    result = _run(predict_plate(model, plate, device="cpu", batch_size=2, read_threads=2,
                                should_stop=lambda: next(calls) >= 1))  # fmt: skip
    in_flight = 2 * max(1, len(forward_split(torch.device("cpu"))))
    assert len(result.sites) == 2 and plate.reads <= 6 + in_flight
    assert not [t for t in threading.enumerate() if t.name.startswith("dcmix-forward")]


def test_reads_run_in_background_threads(array_plate, model) -> None:
    plate, _ = array_plate
    seen = set()
    original = plate.read

    def read(well, site):
        seen.add(threading.current_thread().name)
        return original(well, site)

    plate.read = read
    predict_plate_all(model, plate, device="cpu", batch_size=4, read_threads=2)
    assert seen and all(name.startswith("dcmix-read") for name in seen)


def test_rows_and_csv(array_plate, model, tmp_path: Path) -> None:
    plate, _ = array_plate
    preds = predict_plate_all(model, plate, device="cpu", wells=["A2", "A03"])
    rows = preds.to_rows()
    assert [r["level"] for r in rows] == ["site"] * 6 + ["well"] * 2
    assert list(rows[0]) == ["plate", "well", "site", "level", "prediction", "confidence",
                             "p_control", "p_treated", "sites_used", "notes", "path"]  # fmt: skip
    assert rows[6]["sites_used"] == 3 and rows[0]["sites_used"] == "" and rows[0]["notes"] == ""
    wells = preds.wells()
    assert [w.well for w in wells] == ["A02", "A03"] and wells[0].n_sites == 3
    np.testing.assert_allclose(wells[0].probs, np.mean([s.probs for s in preds.sites[:3]], 0))
    assert rows[6]["site"] == "" and rows[6]["confidence"] == pytest.approx(wells[0].confidence)
    path = preds.write_csv(tmp_path / "p.csv")
    with path.open() as fh:
        data = list(csv.DictReader(fh))
    assert len(data) == 8 and data[-1]["well"] == "A03" and data[-1]["site"] == ""
    with pytest.raises(PlateError, match="Z09"):
        predict_plate_all(model, plate, wells=["Z9"])


def test_channel_mismatch_names_both_lists(array_plate) -> None:
    plate, _ = array_plate
    other = build_model(["DNA", "Actin"], ["a", "b"], input_size=16)
    with pytest.raises(ModelError, match=r"\['DNA', 'Actin'\].*\['DNA', 'ER', 'RNA'"):
        predict_plate_all(other, plate, device="cpu")


def test_nan_site_is_named(array_plate, model) -> None:
    plate, _ = array_plate
    plate.images = plate.images.astype(np.float32)
    plate.images[3, 2, 1, 0, 0] = np.inf
    with pytest.raises(PlateError, match="well A04 site 3"):
        predict_plate_all(model, plate, device="cpu")


def test_model_training_flag_restored(model) -> None:
    model.train()
    predict_arrays(model, np.zeros((1, 5, 24, 24), np.float32) + 200, device="cpu")
    assert model.training


def _drain(gen):
    while True:
        try:
            yield next(gen)
        except StopIteration:
            return


def _run(gen):
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def test_cuda_oom_halves_batch_then_falls_back_to_cpu(model, monkeypatch) -> None:
    from napari_dcmix.model import inference as inf

    x = np.stack([np.full((5, 24, 24), 100.0 * (i + 1), np.float32) for i in range(8)])
    expected = predict_arrays(model, x, device="cpu")
    original = inf._Runner._forward
    limit = {"n": 2}
    tried = []

    def fake(self, batch, raw=False):  # a pretend CUDA device that holds at most limit["n"] sites
        tried.append((self.device.type, len(batch)))
        if self.device.type == "cuda":
            if len(batch) > limit["n"]:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            self.device = torch.device("cpu")
            try:
                return original(self, batch, raw)
            finally:
                self.device = torch.device("cuda")
        return original(self, batch, raw)

    monkeypatch.setattr(inf._Runner, "_forward", fake)
    runner = inf._Runner(model, torch.device("cpu"))
    runner.device = torch.device("cuda")
    batch = np.stack([runner.host_tiles(im) for im in x])
    np.testing.assert_allclose(runner(batch), expected, atol=1e-6)
    assert ("cuda", 8) in tried and ("cuda", 4) in tried and runner.max_sites == 2
    limit["n"] = 0
    with pytest.warns(RuntimeWarning, match="falling back to the CPU"):
        out = runner(batch)
    assert runner.device.type == "cpu"
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_untrained_model_is_refused(array_plate, model) -> None:
    plate, _ = array_plate
    fresh = model.adapted(CHANNELS)
    assert fresh.normalisation is None
    with pytest.raises(ModelError, match="no stored normalisation: train or fine-tune it first"):
        predict_arrays(fresh, np.zeros((1, 5, 24, 24), np.float32), device="cpu")
    with pytest.raises(ModelError, match="no stored normalisation"):
        predict_plate_all(fresh, plate, device="cpu")


@pytest.mark.parametrize(
    ("dtype", "hw"),
    [(np.uint16, 48), (np.uint16, 40), (np.uint32, 48), (np.int16, 72), (np.float32, 30),
     (np.float64, 48), (np.uint8, 24)],
)  # fmt: skip
def test_device_preprocessing_matches_host(model, dtype, hw) -> None:
    """The CUDA path's on-device resize (avg_pool2d / area) + normalisation, run here on the CPU
    (no pinning), equals the host preprocess used by training, and so does a raw batch on the
    CPU (the path taken after a CUDA fallback)."""
    from napari_dcmix.model import inference as inf

    rng = np.random.default_rng(4)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    hi = 4000 if info is None else min(int(info.max), 70000)
    raw = rng.integers(0, hi, (6, 5, hw, hw)).astype(dtype)
    if info is not None:
        raw[0, 0, 0, 0] = info.max  # above the signed range: the unsigned views must hold
    runner = inf._Runner(model, torch.device("cpu"))
    host = np.stack([runner.host_tiles(a) for a in raw])  # (B, T, C, S, S), T = 1 here
    on_device = runner._device_preprocess(raw).numpy()
    np.testing.assert_allclose(on_device, host[:, 0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(runner._device_preprocess(list(raw)).numpy(), on_device, atol=0)
    np.testing.assert_allclose(runner(list(raw), raw=True), runner(host), atol=1e-6, rtol=0)


def test_forward_split_and_pool_threads() -> None:
    """Forward threads share torch's intra-op threads; each keeps its own setting, and the
    caller's setting and torch's default (what a new thread gets) are left as they were."""
    from napari_dcmix.model import inference as inf

    cpu = torch.device("cpu")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        assert inf.forward_split(cpu) == [2, 1]
        assert inf.forward_split(cpu, threads=0) == [] and inf.forward_split(cpu, 1) == []
        assert inf.forward_split(torch.device("meta")) == []  # only the CPU runs forward threads
        torch.set_num_threads(1)
        assert inf.forward_split(cpu) == []
        torch.set_num_threads(2)
        assert inf.forward_split(cpu) == [1, 1]
        with inf.forward_pool([2, 1]) as pool:
            assert torch.get_num_threads() == 2  # the caller's setting
            seen = {}
            barrier = threading.Barrier(2)

            def probe() -> None:
                barrier.wait()  # two tasks at once: one in each pool thread
                seen[threading.current_thread().name] = torch.get_num_threads()

            for fut in [pool.submit(probe) for _ in range(2)]:
                fut.result()
            assert sorted(seen.values()) == [1, 2]
        assert torch.get_num_threads() == 2
        with inf.forward_pool([1, 1]):
            fresh = {}
            t = threading.Thread(target=lambda: fresh.setdefault("n", torch.get_num_threads()))
            t.start()
            t.join()
            assert fresh["n"] == 2  # torch's default for new threads is restored
        with inf.forward_pool([]) as none:
            assert none is None
    finally:
        torch.set_num_threads(before)


def test_forward_threads_same_predictions_in_order(array_plate, model, monkeypatch) -> None:
    """Forward passes in forward threads (torch at 2 threads here: 2 x 1) give the predictions of
    forward passes on the calling thread, in plate order, with a bad site skipped in place."""
    from napari_dcmix.model import inference as inf

    plate, _ = array_plate
    original = plate.read

    def read(well, site):
        if (well, site) == ("A03", 2):
            raise OSError("simulated unreadable site")
        return original(well, site)

    plate.read = read
    where: dict[int | None, set[str]] = {}
    runner_call = inf._Runner.__call__

    def call(self, batch, raw=False):
        where.setdefault(inf.FORWARD_THREADS, set()).add(threading.current_thread().name)
        return runner_call(self, batch, raw)

    monkeypatch.setattr(inf._Runner, "__call__", call)
    results = {}
    for threads in (0, None):
        monkeypatch.setattr(inf, "FORWARD_THREADS", threads)
        results[threads] = predict_plate_all(model, plate, device="cpu", batch_size=3,
                                             skip_bad_sites=True)  # fmt: skip
    old, new = results[0], results[None]
    keys = [k for k in plate.site_keys() if k != ("A03", 2)]
    assert [(p.well, p.site) for p in new.sites] == [(p.well, p.site) for p in old.sites] == keys
    skipped = [[(s.well, s.site) for s in r.skipped] for r in (old, new)]
    assert skipped == [[("A03", 2)], [("A03", 2)]]
    new_p, old_p = (np.stack([p.probs for p in r.sites]) for r in (new, old))
    np.testing.assert_allclose(new_p, old_p, atol=1e-6, rtol=0)
    assert where[0] == {threading.current_thread().name}
    assert where[None] and all(n.startswith("dcmix-forward") for n in where[None])
    assert len(where[None]) == 2  # both forward threads took batches


def test_cpu_batches_run_in_passes_of_a_few_inputs(model) -> None:
    """On the CPU a batch runs in passes of ``cpu_chunk()`` inputs, 8 per intra-op thread of
    the calling thread (their activations stay in the core's cache); the probabilities are
    those of one pass over the whole batch. The batch size still caps a pass."""
    from napari_dcmix.model import inference as inf
    from napari_dcmix.model.training import torch_threads

    x = np.random.default_rng(2).normal(size=(20, 1, 5, 24, 24)).astype(np.float32)
    with torch.inference_mode():
        expected = torch.softmax(model(torch.from_numpy(x[:, 0])), dim=1).double().numpy()
    sizes: list[int] = []
    runner = inf._Runner(model, torch.device("cpu"), chunk=64)
    handle = runner.net.register_forward_pre_hook(lambda _m, args: sizes.append(len(args[0])))
    try:
        with torch_threads(1):
            assert inf.cpu_chunk() == inf.CPU_CHUNK_PER_THREAD == 8
            np.testing.assert_allclose(runner(x), expected, atol=1e-6, rtol=0)
            assert sizes == [8, 8, 4]
            sizes.clear()
            runner.chunk = 5
            runner(x)
            assert sizes == [5, 5, 5, 5]
        sizes.clear()
        runner.chunk = 64
        with torch_threads(2):
            np.testing.assert_allclose(runner(x), expected, atol=1e-6, rtol=0)
            assert sizes == [16, 4]
    finally:
        handle.remove()
