"""Plate prediction throughput benchmark (a script, not a test): prints one table.

Models. The shipped default is a 5-member ensemble that looks at 128 px crops at bin 1, so a
512 px site is 16 tiles x 5 members. To keep the whole-site figures comparable with earlier
runs, the whole-site rows use a one-member whole-site model derived from it: member 0 with
``PixelScale(bin=1, crop=None)`` and input 128 (every 512 px site area-resized to 128 px, one
forward pass per site). The tiled row uses member 0 at its own scale (crop 128: 16 tiles per
site), the same network at the same 128 px input, so both share one forward ceiling. The
default ensemble itself gets one informational line.

(a) ceiling: the network's forward pass on pre-loaded, already preprocessed 128 px tensors
    (images/s), batches of ``--batch-size`` (the CLI default, 32), softmax included, measured
    four ways: one batch at a time with torch's ``--threads`` intra-op threads, or
    ``--threads`` forward threads of one intra-op thread each running batches side by side
    (what ``predict_plate`` does on the CPU); each batch in one forward pass, or in passes of
    8 inputs per intra-op thread (what ``predict_plate`` does since passes of a few inputs
    were found to keep the activations in the core's cache: on the 2-core machine 222-260
    images/s against 169-181 in passes of 32). The ceilings cycle through 8 distinct batches,
    so a pass does not find its input still in the core's cache from the pass before (the
    pipeline's batches are freshly read). All are measured just before each timed run, and
    that run's ratio (c) is to the best of them.
(b) end to end: ``napari-dcmix predict PLATE --model MODEL --out CSV`` on a 96-well x 4-site x
    5-channel uint16 plate on disk (``--site-size`` px, default 512): TIFF, and OME-Zarr as
    the two common writers store it (ome-zarr-py / zarr 3: v0.5, zstd, a chunk per site;
    bioformats2raw, the usual converter of vendor HCS formats: v0.4, Blosc lz4, a chunk per
    plane). Timed in-process through the CLI's own ``main([...])`` (model load, plate open,
    streamed ``predict_plate``, CSV), median of ``--repeats`` after one warm-up run; and once
    as a subprocess (the ``napari-dcmix`` command, interpreter start-up included). The tiled
    row runs the crop model on the TIFF plate of ``--wells / 4`` wells (tiles/s).
(c) ratio (b)/(a). Targets: TIFF (whole-site and tiled) >= 0.85 of the ceiling; each
    compressed plate >= 0.9 of its own CPU-share bound F / (F + R): F is the forward's CPU per
    image at the ceiling, R the CPU that reading, decoding and preprocessing one site cost
    alone on one thread (``SiteLoader``, what a reader thread of ``predict_plate`` does). When
    the forward keeps every core busy, reading takes its CPU from the forward, so the ratio
    cannot exceed F / (F + R) by much. Beside it, F' and R': the same two kinds of work run
    side by side in plain threads, with no pipeline between them (``side_by_side_cpu_ms``);
    sharing the cores' caches makes each dearer, and F / (F' + R') is the most any pipeline
    could reach on this machine.
(d) peak memory: the subprocess's peak RSS (its own VmHWM, sampled every 10 ms: ``wait4``'s
    ru_maxrss starts from the spawning process's RSS on Linux), for the big plate and a 4x
    smaller one: bounded memory means the big plate's peak stays close to the small one's
    (whole sites, and tiles). For information, the in-process run's high-water mark above the
    RSS just before it (VmHWM reset through /proc/self/clear_refs, else RSS sampled with
    psutil): not judged, because it depends on what earlier runs left free in the allocator
    (the same 96-well TIFF run gave +37 and +171 MB in two runs of this bench).
(e) DCMIX model(x) against head(backbone(premixed)), the same backbone fed the K mixed
    channels precomputed: the mixing layer's overhead, target <= 3%.
(f) the default ensemble: sites/s and tiles/s on a few wells of the TIFF plate (no target).

The machine is shared: each round also records the CPU other processes used while it ran
(from /proc/stat, minus this process and its children), as a share of the machine.

Without a default model file, ``build_model(seed=0)`` with per-channel normalisation
estimated from the plate stands in (and the ensemble line is left out). Plates are cached in
``--workdir`` (writing is not timed): a pool of 16 distinct synthetic sites is written through
the layout writers in every well/site slot (every site is still a separate file / zarr array
that is read and decoded). ``torch.set_num_threads(--threads)`` in this process,
``OMP_NUM_THREADS`` for the subprocess.

    .venv/bin/python bench/predict.py [--quick] [--workdir DIR] [--site-size 512]
        [--threads N] [--repeats 3] [--batch-size 32] [--read-threads 2] [--profile]

``--profile`` adds a breakdown of the streaming run (read, preprocess, forward, main-thread
waits); it changes nothing in the package.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

# bench plates: key -> (writer class in napari_dcmix.synthetic.writers, what it stands for)
PLATES = {
    "tiff": ("TiffWriter", "TIFF: one uncompressed multi-channel file per site"),
    "ome-zarr": ("OmeZarrWriter", "OME-Zarr v0.5 as ome-zarr-py / zarr 3 write it: zstd, "
                 "one chunk per site"),
    "ome-zarr-b2r": ("Bioformats2rawWriter", "OME-Zarr v0.4 as bioformats2raw writes it: "
                     "Blosc lz4 + shuffle, one chunk per plane"),
}  # fmt: skip
LAYOUTS = tuple(PLATES)
COMPRESSED = ("ome-zarr", "ome-zarr-b2r")
CLASSES = ["control", "treated"]
POOL = 16  # distinct synthetic sites per plate
CEILING_TARGET = 0.85  # TIFF (whole-site and tiled): share of the forward ceiling
PASS_PER_THREAD = 8  # the ceiling also tries forward passes of 8 inputs per intra-op thread
POOL_BATCHES = 8  # distinct pre-loaded batches the ceilings cycle through (84 MB at 32 x 128 px)
BOUND_TARGET = 0.9  # compressed plates: share of their CPU-share bound F / (F + R)
MIX_TARGET = 0.03
CROP = 128  # the tiled model's crop and the whole-site model's input size
ENSEMBLE_WELLS = 4  # wells of the small TIFF plate for the default ensemble's line


# --- memory ----------------------------------------------------------------------------------
def _status_kb(field: str, status: str = "/proc/self/status") -> int | None:
    try:
        for line in Path(status).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _rss_mb() -> float:
    kb = _status_kb("VmRSS")
    if kb is not None:
        return kb / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakRss:
    """Peak RSS (MB) while the block runs: the kernel high-water mark reset at entry through
    /proc/self/clear_refs, else a psutil sampling thread (5 ms), else ru_maxrss."""

    def __init__(self) -> None:
        self.before = 0.0
        self.peak = 0.0
        self.method = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        self.before = _rss_mb()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.method = "VmHWM"
        except OSError:
            self.method = "sampled"
            try:
                import psutil
            except ImportError:
                self.method = "ru_maxrss"
                return self
            proc = psutil.Process()

            def sample() -> None:
                while not self._stop.is_set():
                    self.peak = max(self.peak, proc.memory_info().rss / 2**20)
                    self._stop.wait(0.005)

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.method == "VmHWM":
            self.peak = (_status_kb("VmHWM") or 0) / 1024
        elif self.method == "sampled":
            self._stop.set()
            assert self._thread is not None
            self._thread.join()
        else:
            import resource

            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.peak = max(self.peak, self.before)

    @property
    def delta(self) -> float:
        return self.peak - self.before


# --- plates and model ------------------------------------------------------------------------
def cached_plate(
    workdir: Path, layout: str, n_wells: int, sites: int, size: int, channels: list[str]
) -> tuple[Path, float]:
    """Path of a cached plate (written when missing) and the seconds spent writing it."""
    from napari_dcmix.synthetic import plate_wells, synthesize_site, writers
    from napari_dcmix.synthetic.plate import TREATED, assign_labels, phenotype_effects

    writer_name = PLATES[layout][0]
    spec = {"layout": layout, "wells": n_wells, "sites": sites, "size": size,
            "channels": channels, "pool": POOL, "writer": writer_name, "version": 2}  # fmt: skip
    folder = workdir / f"{layout}_{n_wells}w_{sites}s_{size}px"
    record = folder / "bench_plate.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        saved = json.loads(record.read_text())
        if saved["spec"] == spec and (folder / saved["path"]).exists():
            return folder / saved["path"], 0.0
    t0 = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    wells = plate_wells(n_wells)
    labels = assign_labels(wells, 0.5, seed=0)
    truth = phenotype_effects(channels, "Mito" if "Mito" in channels else channels[-1], None, 0)
    pool = [
        synthesize_site([0, i], channels, truth if i % 2 else None, size, "uint16")
        for i in range(POOL)
    ]
    writer = getattr(writers, writer_name)(folder, "BenchPlate", channels, sites, 0)
    i = 0
    for well in wells:
        for site in range(1, sites + 1):
            # treated wells get odd (phenotype) pool entries, control wells even ones
            k = (2 * (i % (POOL // 2))) + (1 if labels[well] == TREATED else 0)
            writer.write_site(well, site, pool[k])
            i += 1
    writer.finish(wells)
    rel = writer.path.relative_to(folder).as_posix()
    record.write_text(json.dumps({"spec": spec, "path": rel}))
    return folder / rel, time.perf_counter() - t0


def bench_models(workdir: Path, calibration_plate: Path | None) -> dict[str, tuple[Any, Path, str]]:
    """``{"whole": ..., "tiled": ..., "ensemble": ...}``: (model, file for the CLI, description).
    The whole-site and tiled models are member 0 of the shipped default (``ensemble``) at a
    whole-site scale and at its own; without a default file, ``build_model(seed=0)`` with an
    estimated normalisation stands in for member 0 (and there is no ensemble)."""
    from napari_dcmix.model import (
        build_model,
        default_model_path,
        load_model,
        save_model,
    )
    from napari_dcmix.model.scale import PixelScale

    out: dict[str, tuple[Any, Path, str]] = {}
    default = default_model_path()
    if default.is_file():
        ensemble = load_model(default).eval()
        out["ensemble"] = (ensemble, default, f"shipped default ({default.name}): "
                           f"{len(ensemble)} members, {ensemble.scale}")  # fmt: skip
        source = f"member 0 of the shipped default ({default.name})"

        def member() -> Any:
            return load_model(default).members[0]
    else:
        from napari_dcmix.plate import open_plate
        from napari_dcmix.plate.normalise import estimate_channel_stats
        from napari_dcmix.synthetic import DEFAULT_CHANNELS

        source = "build_model(seed=0) + estimated normalisation (no default model file)"
        stats = None
        if calibration_plate is not None:
            stats = estimate_channel_stats(open_plate(calibration_plate), max_sites=16)

        def member() -> Any:
            m = build_model(list(DEFAULT_CHANNELS), CLASSES, backbone="small_cnn", k=3,
                            input_size=CROP, seed=0)  # fmt: skip
            m.normalisation = stats
            return m

    for name, scale in (("whole", PixelScale(bin=1, crop=None)), ("tiled", PixelScale(1, CROP))):
        m = member()
        m.scale = scale
        m.input_size = CROP
        path = save_model(m.eval(), workdir / f"bench_{name}_model.pt")
        out[name] = (load_model(path).eval(), path, f"{source} with {scale}")
    return out


# --- timing helpers --------------------------------------------------------------------------
def cli_inprocess(
    plate: Path, model_path: Path, out: Path, args: argparse.Namespace
) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of ``napari-dcmix predict`` run in this process
    through ``cli.main``."""
    from napari_dcmix.cli import main

    argv = ["predict", str(plate), "--model", str(model_path), "--out", str(out), "--quiet",
            "--device", "cpu", "--batch-size", str(args.batch_size),
            "--read-threads", str(args.read_threads), "--overwrite"]  # fmt: skip
    out.unlink(missing_ok=True)
    sink = io.StringIO()
    c0, t0 = time.process_time(), time.perf_counter()
    with contextlib.redirect_stdout(sink):
        rc = main(argv)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    if rc != 0:
        raise SystemExit(f"napari-dcmix {' '.join(argv)} exited {rc}")
    return dt, dc


def cli_subprocess(
    plate: Path, model_path: Path, out: Path, args: argparse.Namespace
) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of the ``napari-dcmix predict`` command as a subprocess."""
    exe = Path(sys.executable).with_name("napari-dcmix")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "napari_dcmix.cli"]
    cmd += ["predict", str(plate), "--model", str(model_path), "--out", str(out), "--quiet",
            "--device", "cpu", "--batch-size", str(args.batch_size),
            "--read-threads", str(args.read_threads), "--overwrite"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        done = threading.Event()
        peak_kb = [0]

        def watch() -> None:
            """The child's own VmHWM (its memory map's high-water mark), every 10 ms until
            it is reaped. Not ``wait4``'s ru_maxrss: Linux starts a child's maxrss from the
            RSS of the process that spawned it, so that was this bench's own RSS."""
            while not done.wait(0.01):
                value = _status_kb("VmHWM", f"/proc/{proc.pid}/status")
                if value:
                    peak_kb[0] = max(peak_kb[0], value)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, _ = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t0
        done.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            log.seek(0)
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{log.read().decode()}")
    return dt, peak_kb[0] / 1024


def ceiling_modes(threads: int) -> list[tuple[int, int | None]]:
    """The forward ceiling's modes, (forward threads, inputs per pass): one batch at a time
    with every intra-op thread, or ``threads`` forward threads of one; the whole batch per
    pass (None), or PASS_PER_THREAD inputs per intra-op thread (what predict_plate does)."""
    modes: list[tuple[int, int | None]] = [(1, None), (1, PASS_PER_THREAD * threads)]
    if threads > 1:
        modes += [(threads, None), (threads, PASS_PER_THREAD)]
    return modes


def mode_sample(model: Any, x: np.ndarray, n_batches: int,
                mode: tuple[int, int | None]) -> tuple[float, float]:  # fmt: skip
    """``ceiling_sample`` or ``parallel_ceiling_sample`` for one of ``ceiling_modes``."""
    n, per_pass = mode
    if n == 1:
        return ceiling_sample(model, x, n_batches, per_pass)
    return parallel_ceiling_sample(model, x, n_batches, n, per_pass)


def ceiling_pool(model: Any, plate_path: Path, batch_size: int) -> np.ndarray:
    """The ceilings' input: POOL_BATCHES distinct preprocessed batches (``batches_of``)."""
    x = preprocessed_batch(model, plate_path, POOL_BATCHES * batch_size)
    return x.reshape(POOL_BATCHES, batch_size, *x.shape[1:])


def preprocessed_batch(model: Any, plate_path: Path, n: int) -> np.ndarray:
    """``n`` sites of the plate area-resized to the model's input size and normalised: the
    network's input at the ceiling (whole sites; a tile of a crop model is the same size)."""
    from napari_dcmix.model.data import preprocess
    from napari_dcmix.plate import open_plate

    plate = open_plate(plate_path)
    keys = list(plate.site_keys())
    return np.stack(
        [
            preprocess(plate.read(*keys[i % len(keys)]), model.input_size, model.normalisation)
            for i in range(n)
        ]
    )


def reader_cpu_ms(model: Any, plate_path: Path, n: int = 24) -> float:
    """CPU ms per site of what a reader thread of ``predict_plate`` does (``SiteLoader``: read,
    check, bin / resize or tile, normalise), alone on one thread: R of the CPU share
    F / (F + R). Run in a worker thread, as in the pipeline (numcodecs' Blosc spawns its own
    threads on the main one)."""
    import torch

    from napari_dcmix.model import inference
    from napari_dcmix.plate import open_plate

    plate = open_plate(plate_path)
    keys = list(plate.site_keys())[:n]
    load = inference.SiteLoader(plate, inference._Runner(model, torch.device("cpu")))

    def run() -> float:
        load(keys[0])  # warm-up
        c0 = time.thread_time()
        for key in keys:
            load(key)
        return (time.thread_time() - c0) / len(keys) * 1e3

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def batches_of(x: np.ndarray) -> list[Any]:
    """The ceiling's input batches as tensors: ``x`` is one batch (B, C, H, W) or a pool of
    distinct batches (N, B, C, H, W) that the ceilings cycle through, so that a forward pass
    finds its input in memory, not left in the core's cache by the previous pass (as the
    pipeline's freshly read batches are; one reused batch of 8 stays in a 4 MiB L2)."""
    import torch

    return [torch.from_numpy(b) for b in (x if x.ndim == 5 else x[None])]


def forward_passes(model: Any, t: Any, per_pass: int | None = None) -> None:
    """model + softmax over the batch ``t``, ``per_pass`` inputs per forward pass (None: the
    whole batch in one pass). Call under ``torch.inference_mode()``."""
    import torch

    step = per_pass or len(t)
    for i in range(0, len(t), step):
        torch.softmax(model(t[i : i + step]).float(), dim=1)


def ceiling_sample(
    model: Any, x: np.ndarray, n_batches: int, per_pass: int | None = None
) -> tuple[float, float]:
    """(images/s, CPU s/image) of model(x) + softmax on a pre-loaded preprocessed batch, one
    batch at a time on this thread (torch's intra-op threads as set), ``per_pass`` inputs per
    forward pass (None: the whole batch)."""
    import torch

    ts = batches_of(x)
    model.eval()
    with torch.inference_mode():
        forward_passes(model, ts[-1], per_pass)  # warm-up
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(n_batches):
            forward_passes(model, ts[i % len(ts)], per_pass)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
    n = n_batches * len(ts[0])
    return n / dt, dc / n


@contextlib.contextmanager
def torch_thread_team(threads: int) -> Any:
    """``threads`` Python threads, each running torch ops with one intra-op thread; yields
    ``run(fn)``, which calls ``fn()`` once in every thread at the same time and returns the
    results. Written here, not taken from the package: the ceiling must not depend on the
    code it judges (``bench/predict_ab.py`` runs it against older revisions)."""
    import queue

    import torch

    jobs: list[queue.Queue] = [queue.Queue() for _ in range(threads)]
    done: queue.Queue = queue.Queue()
    ready = threading.Barrier(threads + 1)
    lock = threading.Lock()

    def worker(i: int) -> None:
        with lock:  # the per-thread setting is read from torch's default the first time
            torch.set_num_threads(1)
            torch.get_num_threads()
        ready.wait()
        while (fn := jobs[i].get()) is not None:
            try:
                done.put((i, fn(), None))
            except BaseException as exc:  # handed to the caller
                done.put((i, None, exc))

    prev = torch.get_num_threads()
    team = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in team:
        t.start()
    ready.wait()
    torch.set_num_threads(prev)

    def run(fn: Callable[[], Any]) -> list[Any]:
        for q in jobs:
            q.put(fn)
        results: list[Any] = [None] * threads
        for _ in range(threads):
            i, value, exc = done.get()
            if exc is not None:
                raise exc
            results[i] = value
        return results

    try:
        yield run
    finally:
        for q in jobs:
            q.put(None)
        for t in team:
            t.join()


def parallel_ceiling_sample(
    model: Any, x: np.ndarray, n_batches: int, threads: int, per_pass: int | None = None
) -> tuple[float, float]:
    """(images/s, CPU s/image) of model(x) + softmax in ``threads`` forward threads of one
    intra-op thread each, ``n_batches`` batches in all, side by side (``torch_thread_team``),
    ``per_pass`` inputs per forward pass (None: the whole batch)."""
    import torch

    ts = batches_of(x)
    turn = itertools.count()  # the threads take the pool's batches in turn
    model.eval()
    per_thread = max(1, n_batches // threads)

    def forward(k: int) -> Callable[[], None]:
        def fn() -> None:
            with torch.inference_mode():
                for _ in range(k):
                    forward_passes(model, ts[next(turn) % len(ts)], per_pass)

        return fn

    with torch_thread_team(threads) as run:
        run(forward(1))  # warm-up
        c0, t0 = time.process_time(), time.perf_counter()
        run(forward(per_thread))
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
    n = per_thread * threads * len(ts[0])
    return n / dt, dc / n


def side_by_side_cpu_ms(model: Any, x: np.ndarray, plate_path: Path, threads: int,
                       read_threads: int, n_batches: int,
                       per_pass: int | None = None) -> tuple[float, float]:  # fmt: skip
    """(F', R'): CPU ms per image of the forward and per site of the reader work when both run
    at once, with no pipeline between them: ``threads`` forward threads of one intra-op thread
    (``torch_thread_team``, ``n_batches`` batches in all, ``per_pass`` inputs per pass) while
    ``read_threads`` plain threads run ``SiteLoader`` over the plate's sites. Sharing the
    cores' caches and memory bandwidth makes each dearer than alone (F, R); F / (F' + R') is
    then the most a pipeline can reach relative to the ceiling, whatever it does."""
    import torch

    from napari_dcmix.model import inference
    from napari_dcmix.plate import open_plate

    plate = open_plate(plate_path)
    keys = list(plate.site_keys())
    load = inference.SiteLoader(plate, inference._Runner(model, torch.device("cpu")))
    stop = threading.Event()
    read_cpu = [0.0] * read_threads
    read_n = [0] * read_threads

    def reader(i: int) -> None:
        j = i
        load(keys[j % len(keys)])  # warm-up, not counted
        c0 = time.thread_time()
        while not stop.is_set():
            j += read_threads
            load(keys[j % len(keys)])
            read_n[i] += 1
        read_cpu[i] = time.thread_time() - c0

    ts = batches_of(x)
    turn = itertools.count()
    model.eval()
    per_thread = max(1, n_batches // threads)

    def forward() -> float:
        c0 = time.thread_time()
        with torch.inference_mode():
            for _ in range(per_thread):
                forward_passes(model, ts[next(turn) % len(ts)], per_pass)
        return time.thread_time() - c0

    with torch_thread_team(threads) as run:
        run(forward)  # warm-up, alone
        readers = [threading.Thread(target=reader, args=(i,)) for i in range(read_threads)]
        for r in readers:
            r.start()
        try:
            forward_cpu = sum(run(forward))
        finally:
            stop.set()
            for r in readers:
                r.join()
    f = forward_cpu / (per_thread * threads * len(ts[0])) * 1e3
    return f, sum(read_cpu) / max(1, sum(read_n)) * 1e3


def _machine_busy_s() -> float | None:
    """CPU seconds all processes have used since boot (user, nice, system, irq, softirq and the
    hypervisor's steal, from /proc/stat), or None where /proc/stat is missing."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class OtherCpu:
    """CPU that other processes used while the block ran: ``seconds``, and ``share`` of the
    machine (CPUs x wall time). This process and its waited-for children are left out."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.share = float("nan")
        self.wall = 0.0

    def __enter__(self) -> OtherCpu:
        self._busy, self._own, self._t = _machine_busy_s(), _own_cpu_s(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, own = _machine_busy_s(), _own_cpu_s()
        self.wall = time.perf_counter() - self._t
        if busy is None or self._busy is None:
            return
        self.seconds = max(0.0, (busy - self._busy) - (own - self._own))
        machine = (os.cpu_count() or 1) * self.wall
        # (/proc/stat counts in clock ticks: clamp the rounding above a busy machine's 100 %)
        self.share = min(1.0, self.seconds / machine) if machine else 0.0


def mixing_overhead(model: Any, x: np.ndarray, repeats: int) -> dict[str, float]:
    """Paired, alternating timings of model(x) and head(backbone(premixed)) (premixed =
    mixing(x) precomputed), and of the mixing layer alone. Returns the median per-pair ratio
    dcmix/premixed - 1 and median seconds per batch."""
    import torch

    if hasattr(model, "members"):  # a one-member ensemble: time the member itself
        model = model.members[0]
    t = torch.from_numpy(x)
    model.eval()
    with torch.inference_mode():
        premixed = model.mixing(t).contiguous()
        fns: dict[str, Callable[[], Any]] = {
            "dcmix": lambda: model(t),
            "plain": lambda: model.head(model.backbone(premixed)),
            "mixing": lambda: model.mixing(t),
        }
        times: dict[str, list[float]] = {k: [] for k in fns}
        for fn in fns.values():
            fn()  # warm-up
        for r in range(repeats):
            for name in list(fns) if r % 2 == 0 else list(reversed(fns)):
                t0 = time.perf_counter()
                fns[name]()
                times[name].append(time.perf_counter() - t0)
    ratios = [a / b - 1 for a, b in zip(times["dcmix"], times["plain"], strict=True)]
    out = {k: statistics.median(v) for k, v in times.items()}
    out["overhead"] = statistics.median(ratios)
    return out


def ensemble_rate(model: Any, plate_path: Path, n_wells: int, args: argparse.Namespace
                  ) -> tuple[float, float, int]:  # fmt: skip
    """(sites/s, tiles/s, sites) of ``predict_plate`` with ``model`` on the first ``n_wells``
    wells of a plate (CPU, the CLI's batch size and reader threads)."""
    import torch

    from napari_dcmix.model.inference import _Runner, predict_plate_all
    from napari_dcmix.plate import open_plate

    plate = open_plate(plate_path)
    wells = list(plate.wells)[:n_wells]
    tiles = _Runner(model, torch.device("cpu")).tiles_per_site(tuple(plate.image_shape))
    t0 = time.perf_counter()
    result = predict_plate_all(model, plate, wells=wells, device="cpu",
                               batch_size=args.batch_size,
                               read_threads=args.read_threads)  # fmt: skip
    dt = time.perf_counter() - t0
    n = len(result.sites)
    return n / dt, n * tiles / dt, n


# --- profiling (--profile) -------------------------------------------------------------------
class StageTimer:
    """Wall and thread-CPU time of plate reads, preprocessing and forward calls in the
    in-process CLI run (attributes patched for its duration; nothing in the package changes)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {"read": 0.0, "preprocess": 0.0, "forward": 0.0}
        self.cpu: dict[str, float] = dict(self.wall)
        self.count: dict[str, int] = dict.fromkeys(self.wall, 0)
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []

    def _timed(self, stage: str, fn: Callable) -> Callable:
        def wrapper(*a: Any, **k: Any) -> Any:
            c0, t0 = time.thread_time(), time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                dt, dc = time.perf_counter() - t0, time.thread_time() - c0
                with self._lock:
                    self.wall[stage] += dt
                    self.cpu[stage] += dc
                    self.count[stage] += 1

        return wrapper

    def _patch(self, obj: Any, name: str, value: Any) -> None:
        old = getattr(obj, name)
        setattr(obj, name, value)
        self._undo.append(lambda: setattr(obj, name, old))

    def __enter__(self) -> StageTimer:
        from napari_dcmix.cli import predict as cli_predict
        from napari_dcmix.model import inference

        original_open = cli_predict.open_plates

        def open_plates(*a: Any, **k: Any) -> Any:
            plates = original_open(*a, **k)
            for plate in plates:
                plate.read_with_notes = self._timed("read", plate.read_with_notes)
            return plates

        self._patch(cli_predict, "open_plates", open_plates)
        runner = inference._Runner
        self._patch(runner, "host_tiles", self._timed("preprocess", runner.host_tiles))
        self._patch(runner, "__call__", self._timed("forward", runner.__call__))
        return self

    def __exit__(self, *exc: object) -> None:
        for undo in reversed(self._undo):
            undo()


def profile_rows(model: Any, model_path: Path, plates: dict[str, Path], args: argparse.Namespace,
                 workdir: Path, x: np.ndarray) -> list[tuple[str, str, str]]:  # fmt: skip
    rows: list[tuple[str, str, str]] = []
    # Inside the streaming run: stage wall and CPU per site, forward share, main-thread waits.
    for layout, path in plates.items():
        rate0, _ = ceiling_sample(model, x, 2)
        with StageTimer() as st:
            wall, cpu = cli_inprocess(path, model_path, workdir / "profile.csv", args)
        n = max(1, st.count["preprocess"])
        rows.append((
            f"  pipeline ({layout})",
            f"{n / wall:.1f} img/s",
            f"process CPU {cpu / n * 1e3:.1f} ms/img; reader threads: read "
            f"{st.wall['read'] / n * 1e3:.1f} ms wall ({st.cpu['read'] / n * 1e3:.1f} CPU) + "
            f"preprocess {st.wall['preprocess'] / n * 1e3:.1f} ms wall "
            f"({st.cpu['preprocess'] / n * 1e3:.1f} CPU) per site; forward calls "
            f"{st.wall['forward']:.2f} s wall, {st.cpu['forward'] / n * 1e3:.1f} ms CPU/img on "
            f"their threads, of {wall:.2f} s; one forward pass at a time just before: "
            f"{rate0:.1f} img/s",
        ))  # fmt: skip
    return rows


# --- main ------------------------------------------------------------------------------------
def fmt_table(rows: Sequence[tuple[str, str, str]]) -> str:
    w0 = max(len("measure"), *(len(r[0]) for r in rows))
    w1 = max(len("value"), *(len(r[1]) for r in rows))
    lines = [f"{'measure':<{w0}}  {'value':<{w1}}  note", "-" * (w0 + w1 + 40)]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c}".rstrip() for a, b, c in rows]
    return "\n".join(lines)


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def target_met(layout: str, ratio: float, bound: float) -> bool:
    """The throughput target of a plate: compressed plates reach ``BOUND_TARGET`` of their
    CPU-share bound, the others (TIFF, tiles) ``CEILING_TARGET`` of the forward ceiling."""
    if layout in COMPRESSED:
        return ratio >= BOUND_TARGET * bound
    return ratio >= CEILING_TARGET


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="24-well plate (6-well small), 1 round")
    p.add_argument("--workdir", default=None, help="plate cache folder (default: a temp dir)")
    p.add_argument("--site-size", type=int, default=512)
    p.add_argument("--wells", type=int, default=None, help="wells of the big plate (96)")
    p.add_argument("--sites", type=int, default=4)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=None, help="measurement rounds (3)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--read-threads", type=int, default=2)
    p.add_argument("--profile", action="store_true", help="add a where-time-goes breakdown")
    args = p.parse_args(argv)
    big = args.wells or (24 if args.quick else 96)
    small = max(1, big // 4)
    rounds = args.repeats or (1 if args.quick else 3)
    mix_repeats = 8 if args.quick else 40

    import torch

    torch.set_num_threads(args.threads)
    load = [os.getloadavg()]
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="dcmix-bench-")
        workdir = Path(tmp.name)
    else:
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, workdir, big, small, rounds, mix_repeats, load)
    finally:
        if tmp is not None:
            tmp.cleanup()


def run(args: argparse.Namespace, workdir: Path, big: int, small: int, rounds: int,
        mix_repeats: int, load: list) -> int:  # fmt: skip
    import torch

    from napari_dcmix.model import default_model_path, load_model
    from napari_dcmix.model.inference import _Runner
    from napari_dcmix.synthetic import DEFAULT_CHANNELS

    channels = list(DEFAULT_CHANNELS)
    if default_model_path().is_file():
        channels = list(load_model(default_model_path()).channel_names)
    plates: dict[tuple[str, int], Path] = {}
    write_s = 0.0
    for layout in LAYOUTS:
        for n in (big, small):
            plates[layout, n], dt = cached_plate(workdir, layout, n, args.sites, args.site_size,
                                                 channels)  # fmt: skip
            write_s += dt
    models = bench_models(workdir, plates["tiff", small])
    whole, whole_path, whole_desc = models["whole"]
    tiled, tiled_path, tiled_desc = models["tiled"]
    n_big, n_small = big * args.sites, small * args.sites
    tiles = _Runner(tiled, torch.device("cpu")).tiles_per_site((args.site_size, args.site_size))
    gib = n_big * len(channels) * args.site_size**2 * 2 / 2**30
    x = ceiling_pool(whole, plates["tiff", big], args.batch_size)
    ceiling_batches = max(2, min(8, n_big // args.batch_size // 3))
    threads = args.threads
    out = workdir / "predictions.csv"

    # (e) first (short), then warm-up CLI runs, then rounds of: both ceilings, the in-process
    # CLI on each layout (whole sites) and on the small TIFF plate (tiles); ratios per round.
    fm = mixing_overhead(whole, x[0], mix_repeats)
    cli_inprocess(plates["tiff", small], whole_path, out, args)
    cli_inprocess(plates["tiff", small], tiled_path, out, args)
    modes = ceiling_modes(threads)
    ceil: dict[tuple[int, int | None], list[tuple[float, float]]] = {m: [] for m in modes}
    e2e: dict[str, list[tuple[float, float]]] = {lay: [] for lay in (*LAYOUTS, "tiled")}
    ratios: dict[str, list[float]] = {lay: [] for lay in (*LAYOUTS, "tiled")}
    other: list[float] = []
    mem: dict[tuple[str, int], float] = {}
    method = ""
    side: dict[str, list[tuple[float, float]]] = {lay: [] for lay in LAYOUTS}

    def ceiling_now(r: int) -> float:
        """Every ceiling mode, in alternating order, just before a timed run: the best one."""
        for mode in modes if r % 2 == 0 else modes[::-1]:
            ceil[mode].append(mode_sample(whole, x, ceiling_batches, mode))
        return max(ceil[m][-1][0] for m in modes)

    def side_pass() -> int | None:
        """Inputs per pass of the side-by-side forward: the better parallel mode so far."""
        return max(((m, v) for m, v in ceil.items() if m[0] > 1),
                   key=lambda mv: statistics.median(c[0] for c in mv[1]))[0][1]  # fmt: skip

    for r in range(rounds):
        with OtherCpu() as busy:
            for layout in LAYOUTS:
                for n in (big, small):  # (d): both plates in every round, the peak of the rounds
                    ceiling_r = ceiling_now(r) if n == big else 0.0
                    with PeakRss() as pk:
                        timed = cli_inprocess(plates[layout, n], whole_path, out, args)
                    mem[layout, n] = max(mem.get((layout, n), 0.0), pk.delta)
                    method = pk.method
                    if n == big:
                        e2e[layout].append(timed)
                        ratios[layout].append(n_big / timed[0] / ceiling_r)
                if threads > 1:
                    side[layout].append(side_by_side_cpu_ms(
                        whole, x, plates[layout, big], threads, args.read_threads,
                        ceiling_batches, side_pass()))  # fmt: skip
            ceiling_r = ceiling_now(r)
            e2e["tiled"].append(cli_inprocess(plates["tiff", small], tiled_path, out, args))
            ratios["tiled"].append(n_small * tiles / e2e["tiled"][-1][0] / ceiling_r)
        other.append(busy.share)
        load.append(os.getloadavg())
    # (d) both plates as subprocesses (wall + peak RSS)
    sub: dict[tuple[str, int], tuple[float, float]] = {}
    for layout in LAYOUTS:
        for n in (big, small):
            sub[layout, n] = cli_subprocess(plates[layout, n], whole_path, out, args)
        load.append(os.getloadavg())
    for n in (big, small):
        sub["tiled", n] = cli_subprocess(plates["tiff", n], tiled_path, out, args)
    load.append(os.getloadavg())
    ens = None
    if "ensemble" in models:
        ens = ensemble_rate(models["ensemble"][0], plates["tiff", small], ENSEMBLE_WELLS, args)
        load.append(os.getloadavg())

    reader_ms = {lay: reader_cpu_ms(whole, plates[lay, big]) for lay in LAYOUTS}
    reader_ms["tiled"] = reader_cpu_ms(tiled, plates["tiff", big])
    rate = {m: statistics.median(c[0] for c in v) for m, v in ceil.items()}
    best = max(modes, key=lambda m: rate[m])
    ceiling = rate[best]
    f_ms = statistics.median(c[1] for c in ceil[best]) * 1e3
    cpus = os.cpu_count() or 1
    rows: list[tuple[str, str, str]] = []
    rows.append(("machine", f"{cpus} CPUs, torch {torch.__version__}",
                 f"torch.set_num_threads({threads}): get_num_threads()="
                 f"{torch.get_num_threads()}; CLI batch {args.batch_size}, "
                 f"{args.read_threads} read threads"))  # fmt: skip
    peak_load = max(v[0] for v in load)
    rows.append(("load average (1 min) start / max", f"{load[0][0]:.2f} / {peak_load:.2f}",
                 "NOISY: load above the CPU count, other work competes"
                 if peak_load > cpus else "quiet"))  # fmt: skip
    rows.append(("other processes' CPU per round",
                 ", ".join(f"{v:.0%}" for v in other),
                 "share of the machine that other processes used while each round ran "
                 "(/proc/stat)"))  # fmt: skip
    rows.append(("model (whole-site rows)", f"{whole.backbone_name}, {whole.input_size}px, "
                 f"K={whole.k}, C={len(whole.channel_names)}, {len(whole.class_names)} classes",
                 f"one member, whole sites resized to {CROP} px: {whole_desc}"))  # fmt: skip
    rows.append(("model (tiled row)", f"{tiles} tiles of {CROP} px per site",
                 f"one member: {tiled_desc}; the same network at the same input size: "
                 "the same ceiling"))  # fmt: skip
    for layout in LAYOUTS:
        rows.append((f"plate {layout}", "", PLATES[layout][1]))
    rows.append(("plate", f"{big} wells x {args.sites} sites x {len(channels)} ch x "
                 f"{args.site_size}^2 uint16", f"{n_big} sites, {gib:.2f} GiB of pixels; "
                 + (f"written in {write_s:.0f} s (not timed)" if write_s else
                    "cached in --workdir")))  # fmt: skip
    described = []
    for m in modes:
        n, per_pass = m
        how = (f"one batch at a time with {threads} intra-op threads" if n == 1 else
               f"{n} forward threads x 1 intra-op thread")  # fmt: skip
        size = f"passes of {per_pass}" if per_pass else f"passes of the whole {args.batch_size}"
        cpu_ms = statistics.median(c[1] for c in ceil[m]) * 1e3
        described.append(f"{how}, {size}: {rate[m]:.1f} img/s ({cpu_ms:.1f} ms CPU/img)")
    rows.append(("(a) forward ceiling", f"{ceiling:.1f} img/s",
                 f"the best of: {'; '.join(described)}; model(x)+softmax on a pre-loaded "
                 f"preprocessed batch of {args.batch_size} ({POOL_BATCHES} distinct batches in "
                 f"turn), {ceiling_batches} batches, "
                 f"measured just before each timed run: median of {len(ceil[best])}"))  # fmt: skip
    ok = True
    for layout in LAYOUTS:
        wall = statistics.median(w for w, _ in e2e[layout])
        cpu = statistics.median(c for _, c in e2e[layout])
        ratio = statistics.median(ratios[layout])
        bound = f_ms / (f_ms + reader_ms[layout])
        per_round = ", ".join(f"{v:.2f}" for v in ratios[layout])
        sub_wall = sub[layout, big][0]
        rows.append((f"(b) end-to-end in-process ({layout})", f"{n_big / wall:.1f} img/s",
                     f"cli.main(['predict', ...]) {wall:.2f} s, median of {rounds}; "
                     f"{cpu / n_big * 1e3:.1f} ms CPU/img"))  # fmt: skip
        rows.append((f"(b) CLI subprocess ({layout})", f"{n_big / sub_wall:.1f} img/s",
                     f"{sub_wall:.2f} s wall incl. interpreter start-up "
                     f"({n_big / sub_wall / ceiling:.2f}x ceiling)"))  # fmt: skip
        share = (f"CPU share F/(F+R) {bound:.2f} (F {f_ms:.1f} + R {reader_ms[layout]:.1f} "
                 "ms/img)")  # fmt: skip
        if side[layout]:
            f2 = statistics.median(v[0] for v in side[layout])
            r2 = statistics.median(v[1] for v in side[layout])
            share += (f"; side by side F' {f2:.1f} + R' {r2:.1f}: F/(F'+R') "
                      f"{f_ms / (f2 + r2):.2f}")  # fmt: skip
        met = target_met(layout, ratio, bound)
        if layout in COMPRESSED:
            rows.append((f"(c) ratio (b)/(a) ({layout})", f"{ratio:.2f}",
                         f"{ratio / bound:.2f} of its {share}: target >= {BOUND_TARGET} of it: "
                         f"{verdict(met)}; per round {per_round}"))  # fmt: skip
        else:
            rows.append((f"(c) ratio (b)/(a) ({layout})", f"{ratio:.2f}",
                         f"target >= {CEILING_TARGET}: {verdict(met)}; per round {per_round}; "
                         f"{share}"))  # fmt: skip
        ok &= met
    wall = statistics.median(w for w, _ in e2e["tiled"])
    ratio = statistics.median(ratios["tiled"])
    bound = f_ms / (f_ms + reader_ms["tiled"] / tiles)
    met = target_met("tiled", ratio, bound)
    ok &= met
    rows.append(("(b) tiled, in-process (tiff)", f"{n_small * tiles / wall:.1f} tiles/s",
                 f"{small} wells = {n_small} sites x {tiles} tiles, {wall:.2f} s, median of "
                 f"{rounds}; {n_small / wall:.1f} sites/s"))  # fmt: skip
    rows.append(("(c) tiled ratio (b)/(a) (tiff)", f"{ratio:.2f}",
                 f"target >= {CEILING_TARGET}: {verdict(met)}; per round "
                 + ", ".join(f"{v:.2f}" for v in ratios["tiled"])
                 + f"; CPU share F/(F+R) {bound:.2f} (R {reader_ms['tiled']:.1f} ms per site "
                 f"= {reader_ms['tiled'] / tiles:.2f} per tile)"))  # fmt: skip
    for layout in (*LAYOUTS, "tiled"):
        s_big, s_small = sub[layout, big][1], sub[layout, small][1]
        bounded = s_big <= 1.1 * s_small + 64
        if layout != "tiled":
            d_big, d_small = mem[layout, big], mem[layout, small]
            rows.append((f"(d) peak RSS in-process ({layout})",
                         f"+{d_big:.0f} MB ({big} wells) / +{d_small:.0f} MB ({small})",
                         f"above the RSS before the run ({method}); for information "
                         "(it depends on what earlier runs left free), not judged"))  # fmt: skip
        ok &= bounded
        name = "tiff, tiled" if layout == "tiled" else layout
        rows.append((f"(d) peak RSS subprocess ({name})",
                     f"{s_big:.0f} MB ({big} wells) / {s_small:.0f} MB ({small})",
                     f"bounded (does not grow with the plate): {verdict(bounded)}"))  # fmt: skip
    mix_met = fm["overhead"] <= MIX_TARGET
    ok &= mix_met
    rows.append(("(e) backbone+head on premixed input",
                 f"{args.batch_size / fm['plain']:.1f} img/s",
                 f"DCMIX model(x) {args.batch_size / fm['dcmix']:.1f} img/s; median of "
                 f"{mix_repeats} alternating pairs"))  # fmt: skip
    rows.append(("(e) mixing overhead", f"{fm['overhead']:+.1%}",
                 f"target <= {MIX_TARGET:.0%}: {verdict(mix_met)}; the mixing "
                 f"layer alone {fm['mixing'] * 1e3:.2f} ms/batch = "
                 f"{fm['mixing'] / fm['plain']:.1%} of the premixed forward"))  # fmt: skip
    if ens is not None:
        ensemble, _, ens_desc = models["ensemble"]
        rows.append(("(f) default ensemble (tiff)", f"{ens[0]:.1f} sites/s",
                     f"{ens[1]:.1f} tiles/s, each through {len(ensemble)} members; "
                     f"predict_plate on {ens[2]} sites; {ens_desc}; for information, "
                     "no target"))  # fmt: skip
    if args.profile:
        rows.append(("profile (--profile)", "", "in-process CLI runs, stages timed"))
        rows += profile_rows(whole, whole_path, {lay: plates[lay, big] for lay in LAYOUTS},
                             args, workdir, x)  # fmt: skip
        load.append(os.getloadavg())
        rows.append(("load average (1 min) at the end", f"{load[-1][0]:.2f}", ""))
    rows.append(("all targets", "MET" if ok else "NOT ALL MET", ""))
    print(fmt_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
