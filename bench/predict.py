"""Plate prediction throughput benchmark (a script, not a test): prints one table.

(a) ceiling: the model's forward pass on pre-loaded, already preprocessed tensors (images/s),
    batches of ``--batch-size`` (the CLI default, 32), softmax included.
(b) end to end: ``napari-dcmix predict PLATE --model MODEL --out CSV`` on a 96-well x 4-site x
    5-channel uint16 plate on disk (``--site-size`` px, default 512): TIFF, and OME-Zarr as
    the two common writers store it (ome-zarr-py / zarr 3: v0.5, zstd, a chunk per site;
    bioformats2raw, the usual converter of vendor HCS formats: v0.4, Blosc lz4, a chunk per
    plane).
    Timed in-process through the CLI's own ``main([...])`` (model load, plate open, streamed
    ``predict_plate``, CSV), median of ``--repeats`` after one warm-up run; and once as a
    subprocess (the ``napari-dcmix`` command, interpreter start-up included).
(c) ratio (b)/(a), target >= 0.85. Beside it, the CPU share F / (F + R): F is the forward's
    CPU per image (its threads keep every core busy), R the CPU that reading, decoding and
    preprocessing one site cost alone on one thread. When the forward keeps all cores busy,
    reading takes its CPU from the forward, and the ratio lands near F / (F + R) (a few points
    above it where reading fills the moments the forward's threads wait for each other).
(d) peak memory: RSS high-water mark of the in-process run (above the RSS just before it; the
    kernel's VmHWM is reset through /proc/self/clear_refs, else RSS is sampled with psutil) and
    the subprocess's peak RSS (``wait4``), for the big plate and a 4x smaller one: bounded
    memory means the big plate's peak stays close to the small one's.
(e) DCMIX model(x) against head(backbone(premixed)), the same backbone fed the K mixed
    channels precomputed: the mixing layer's overhead, target <= 3%.

The default model file is used when it exists (``default_model_path()``), else
``build_model(seed=0)`` with per-channel normalisation estimated from the plate, saved into
the work folder for the CLI. Plates are cached in ``--workdir`` (writing is not timed): a
pool of 16 distinct synthetic sites is written through the layout writers in every well/site
slot (every site is still a separate file / zarr array that is read and decoded).
``torch.set_num_threads(--threads)`` in this process, ``OMP_NUM_THREADS`` for the subprocess.

    .venv/bin/python bench/predict.py [--quick] [--workdir DIR] [--site-size 512]
        [--threads N] [--repeats 3] [--batch-size 32] [--read-threads 2] [--profile]

``--profile`` adds a breakdown of the streaming run (read, preprocess, forward, main-thread
waits); it changes nothing in the package.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
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
CLASSES = ["control", "treated"]
POOL = 16  # distinct synthetic sites per plate
CEILING_TARGET = 0.85
MIX_TARGET = 0.03


# --- memory ----------------------------------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
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


def bench_model(workdir: Path, calibration_plate: Path | None) -> tuple[Any, Path, str]:
    """(model, model file for the CLI, description)."""
    from napari_dcmix.model import build_model, default_model_path, load_model, save_model

    default = default_model_path()
    if default.is_file():
        return load_model(default), default, f"shipped default ({default.name})"
    from napari_dcmix.plate import open_plate
    from napari_dcmix.plate.normalise import estimate_channel_stats
    from napari_dcmix.synthetic import DEFAULT_CHANNELS

    model = build_model(list(DEFAULT_CHANNELS), CLASSES, backbone="small_cnn", k=3,
                        input_size=128, seed=0)  # fmt: skip
    if calibration_plate is not None:
        model.normalisation = estimate_channel_stats(open_plate(calibration_plate), max_sites=16)
    path = save_model(model.eval(), workdir / "bench_model.pt")
    return load_model(path), path, "build_model(seed=0) + estimated normalisation"


# --- timing helpers --------------------------------------------------------------------------
def cli_inprocess(
    plate: Path, model_path: Path, out: Path, args: argparse.Namespace
) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of ``napari-dcmix predict`` run in this process
    through ``cli.main``."""
    from napari_dcmix.cli import main

    argv = ["predict", str(plate), "--model", str(model_path), "--out", str(out), "--quiet",
            "--device", "cpu", "--batch-size", str(args.batch_size),
            "--read-threads", str(args.read_threads)]  # fmt: skip
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
            "--read-threads", str(args.read_threads)]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            log.seek(0)
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{log.read().decode()}")
    return dt, usage.ru_maxrss / 1024


def preprocessed_batch(model: Any, plate_path: Path, n: int) -> np.ndarray:
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
    """CPU ms per site of what the streaming readers do (``Plate.read``, then ``preprocess``),
    alone on one thread: R of the CPU share F / (F + R). Run in a worker thread, as in the
    pipeline (numcodecs' Blosc spawns its own threads on the main one)."""
    from napari_dcmix.model.data import Normaliser, preprocess
    from napari_dcmix.plate import open_plate

    plate = open_plate(plate_path)
    keys = list(plate.site_keys())[:n]
    norm = Normaliser(model.normalisation)

    def run() -> float:
        preprocess(plate.read(*keys[0]), model.input_size, norm)  # warm-up
        c0 = time.thread_time()
        for key in keys:
            preprocess(plate.read(*key), model.input_size, norm)
        return (time.thread_time() - c0) / len(keys) * 1e3

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def ceiling_sample(model: Any, x: np.ndarray, n_batches: int) -> tuple[float, float]:
    """(images/s, CPU s/image) of model(x) + softmax on a pre-loaded preprocessed batch."""
    import torch

    t = torch.from_numpy(x)
    model.eval()
    with torch.inference_mode():
        torch.softmax(model(t).float(), dim=1)  # warm-up
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(n_batches):
            torch.softmax(model(t).float(), dim=1)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
    n = n_batches * len(x)
    return n / dt, dc / n


def mixing_overhead(model: Any, x: np.ndarray, repeats: int) -> dict[str, float]:
    """Paired, alternating timings of model(x) and head(backbone(premixed)) (premixed =
    mixing(x) precomputed), and of the mixing layer alone. Returns the median per-pair ratio
    dcmix/premixed - 1 and median seconds per batch."""
    import torch

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


# --- profiling (--profile) -------------------------------------------------------------------
class StageTimer:
    """Wall and thread-CPU time of plate reads, preprocess and forward calls in the in-process
    CLI run (module attributes patched for its duration; nothing in the package changes)."""

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
        import napari_dcmix.plate as plate_pkg
        from napari_dcmix.model import inference

        original_open = plate_pkg.open_plate

        def open_plate(*a: Any, **k: Any) -> Any:
            plate = original_open(*a, **k)
            plate.read = self._timed("read", plate.read)
            return plate

        self._patch(plate_pkg, "open_plate", open_plate)
        self._patch(inference, "preprocess", self._timed("preprocess", inference.preprocess))
        runner = inference._Runner
        self._patch(runner, "__call__", self._timed("forward", runner.__call__))
        return self

    def __exit__(self, *exc: object) -> None:
        for undo in reversed(self._undo):
            undo()


def profile_rows(model: Any, model_path: Path, plates: dict[str, Path], args: argparse.Namespace,
                 workdir: Path, x: np.ndarray) -> list[tuple[str, str, str]]:  # fmt: skip
    import torch

    from napari_dcmix.model import inference
    from napari_dcmix.model.data import preprocess

    rows: list[tuple[str, str, str]] = []
    images: list[np.ndarray] = []
    # Stage costs in isolation on this thread (torch at the configured threads, then 1).
    from napari_dcmix.plate import open_plate

    for layout, path in plates.items():
        plate = open_plate(path)
        keys = list(plate.site_keys())[:24]
        plate.read(*keys[0])
        c0, t0 = time.process_time(), time.perf_counter()
        images = [plate.read(*k) for k in keys]
        ms = (time.perf_counter() - t0) / len(keys) * 1e3
        cms = (time.process_time() - c0) / len(keys) * 1e3
        rows.append((f"  isolated: read+decode ({layout})", f"{ms:.2f} ms/site, {cms:.2f} ms CPU",
                     "process CPU (zarr decodes in its own threads)"))  # fmt: skip
    variants = [("resize_area + normalise", preprocess)]
    for label, fn in variants:
        for threads in sorted({args.threads, 1}, reverse=True):
            torch.set_num_threads(threads)
            fn(images[0], model.input_size, model.normalisation)
            c0, t0 = time.process_time(), time.perf_counter()
            for im in images:
                fn(im, model.input_size, model.normalisation)
            ms = (time.perf_counter() - t0) / len(images) * 1e3
            cms = (time.process_time() - c0) / len(images) * 1e3
            rows.append((f"  isolated: preprocess, {label}",
                         f"{ms:.2f} ms/site, {cms:.2f} ms CPU",
                         f"torch threads {threads}"))  # fmt: skip
    torch.set_num_threads(args.threads)
    for threads in sorted({args.threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        rate, cpu = ceiling_sample(model, x, 2)
        rows.append(("  isolated: forward", f"{rate:.1f} img/s, {cpu * 1e3:.1f} ms CPU/img",
                     f"torch threads {threads}"))  # fmt: skip
    torch.set_num_threads(args.threads)
    # Inside the streaming run: stage wall and CPU per site, forward share, main-thread waits.
    for label, _ in variants:
        for layout, path in plates.items():
            rate0, _ = ceiling_sample(model, x, 2)
            with StageTimer() as st:
                wall, cpu = cli_inprocess(path, model_path, workdir / "profile.csv", args)
            n = st.count["preprocess"]
            rows.append((
                f"  pipeline: {label} ({layout})",
                f"{n / wall:.1f} img/s = {n / wall / rate0:.2f}x ceiling",
                f"ceiling just before {rate0:.1f} img/s; process CPU {cpu / n * 1e3:.1f} ms/img; "
                f"reader threads: read {st.wall['read'] / n * 1e3:.1f} ms wall "
                f"({st.cpu['read'] / n * 1e3:.1f} CPU) + preprocess "
                f"{st.wall['preprocess'] / n * 1e3:.1f} ms wall "
                f"({st.cpu['preprocess'] / n * 1e3:.1f} CPU) per site; forward "
                f"{n / st.wall['forward']:.1f} img/s = {st.wall['forward'] / wall:.0%} of wall; "
                f"main thread outside forward {wall - st.wall['forward']:.2f} of {wall:.2f} s",
            ))  # fmt: skip
    assert inference.preprocess is preprocess  # patches undone
    return rows


# --- main ------------------------------------------------------------------------------------
def fmt_table(rows: list[tuple[str, str, str]]) -> str:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{'measure':<{w0}}  {'value':<{w1}}  note", "-" * (w0 + w1 + 40)]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c}".rstrip() for a, b, c in rows]
    return "\n".join(lines)


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
    model, model_path, model_desc = bench_model(workdir, plates["tiff", small])
    n_big = big * args.sites
    gib = n_big * len(channels) * args.site_size**2 * 2 / 2**30
    x = preprocessed_batch(model, plates["tiff", big], args.batch_size)
    ceiling_batches = max(2, min(8, n_big // args.batch_size // 3))
    out = workdir / "predictions.csv"

    # (e) first (short), then a warm-up CLI run, then rounds of: ceiling sample, then the
    # in-process CLI on each layout; the ratio is taken per round (same load), median reported.
    fm = mixing_overhead(model, x, mix_repeats)
    cli_inprocess(plates["tiff", small], model_path, out, args)
    ceil: list[tuple[float, float]] = []
    e2e: dict[str, list[tuple[float, float]]] = {lay: [] for lay in LAYOUTS}
    ratios: dict[str, list[float]] = {lay: [] for lay in LAYOUTS}
    mem: dict[tuple[str, int], float] = {}
    method = ""
    for _ in range(rounds):
        ceil.append(ceiling_sample(model, x, ceiling_batches))
        for layout in LAYOUTS:
            with PeakRss() as pk:
                e2e[layout].append(cli_inprocess(plates[layout, big], model_path, out, args))
            mem[layout, big] = max(mem.get((layout, big), 0.0), pk.delta)
            method = pk.method
            ratios[layout].append(n_big / e2e[layout][-1][0] / ceil[-1][0])
        load.append(os.getloadavg())
    # (d) the small plate in-process, and both plates as subprocesses (wall + peak RSS)
    sub: dict[tuple[str, int], tuple[float, float]] = {}
    for layout in LAYOUTS:
        with PeakRss() as pk:
            cli_inprocess(plates[layout, small], model_path, out, args)
        mem[layout, small] = pk.delta
        for n in (big, small):
            sub[layout, n] = cli_subprocess(plates[layout, n], model_path, out, args)
        load.append(os.getloadavg())

    reader_ms = {lay: reader_cpu_ms(model, plates[lay, big]) for lay in LAYOUTS}
    ceiling = statistics.median(c[0] for c in ceil)
    ceiling_cpu = statistics.median(c[1] for c in ceil)
    cpus = os.cpu_count() or 1
    rows: list[tuple[str, str, str]] = []
    rows.append(("machine", f"{cpus} CPUs, torch {torch.__version__}",
                 f"torch.set_num_threads({args.threads}): get_num_threads()="
                 f"{torch.get_num_threads()}; CLI batch {args.batch_size}, "
                 f"{args.read_threads} read threads"))  # fmt: skip
    peak_load = max(v[0] for v in load)
    rows.append(("load average (1 min) start / max", f"{load[0][0]:.2f} / {peak_load:.2f}",
                 "NOISY: load above the CPU count, other work competes"
                 if peak_load > cpus else "quiet"))  # fmt: skip
    rows.append(("model", f"{model.backbone_name}, {model.input_size}px, K={model.k}, "
                 f"C={len(model.channel_names)}, {len(model.class_names)} classes",
                 model_desc))  # fmt: skip
    for layout in LAYOUTS:
        rows.append((f"plate {layout}", "", PLATES[layout][1]))
    rows.append(("plate", f"{big} wells x {args.sites} sites x {len(channels)} ch x "
                 f"{args.site_size}^2 uint16", f"{n_big} sites, {gib:.2f} GiB of pixels; "
                 + (f"written in {write_s:.0f} s (not timed)" if write_s else
                    "cached in --workdir")))  # fmt: skip
    rows.append(("(a) forward ceiling", f"{ceiling:.1f} img/s",
                 f"model(x)+softmax on a pre-loaded preprocessed batch of {args.batch_size}; "
                 f"median of {rounds} rounds x {ceiling_batches} batches; "
                 f"{ceiling_cpu * 1e3:.1f} ms CPU/img"))  # fmt: skip
    ok = True
    for layout in LAYOUTS:
        wall = statistics.median(w for w, _ in e2e[layout])
        cpu = statistics.median(c for _, c in e2e[layout])
        ratio = statistics.median(ratios[layout])
        met = ratio >= CEILING_TARGET
        ok &= met
        sub_wall = sub[layout, big][0]
        rows.append((f"(b) end-to-end in-process ({layout})", f"{n_big / wall:.1f} img/s",
                     f"cli.main(['predict', ...]) {wall:.2f} s, median of {rounds}; "
                     f"{cpu / n_big * 1e3:.1f} ms CPU/img"))  # fmt: skip
        rows.append((f"(b) CLI subprocess ({layout})", f"{n_big / sub_wall:.1f} img/s",
                     f"{sub_wall:.2f} s wall incl. interpreter start-up "
                     f"({n_big / sub_wall / ceiling:.2f}x ceiling)"))  # fmt: skip
        bound = ceiling_cpu * 1e3 / (ceiling_cpu * 1e3 + reader_ms[layout])
        rows.append((f"(c) ratio (b)/(a) ({layout})", f"{ratio:.2f}",
                     f"target >= {CEILING_TARGET}: {'MET' if met else 'MISSED'}; per round "
                     + ", ".join(f"{r:.2f}" for r in ratios[layout])
                     + f"; CPU-time ratio {ceiling_cpu / (cpu / n_big):.2f}; CPU share F/(F+R) "
                     f"{bound:.2f} (F {ceiling_cpu * 1e3:.1f} + R {reader_ms[layout]:.1f} "
                     "ms/img)"))  # fmt: skip
    for layout in LAYOUTS:
        d_big, d_small = mem[layout, big], mem[layout, small]
        s_big, s_small = sub[layout, big][1], sub[layout, small][1]
        bounded = d_big <= 1.25 * d_small + 64 and s_big <= 1.1 * s_small + 64
        ok &= bounded
        rows.append((f"(d) peak RSS in-process ({layout})",
                     f"+{d_big:.0f} MB ({big} wells) / +{d_small:.0f} MB ({small})",
                     f"above the RSS before the run ({method})"))  # fmt: skip
        rows.append((f"(d) peak RSS subprocess ({layout})",
                     f"{s_big:.0f} MB ({big} wells) / {s_small:.0f} MB ({small})",
                     f"bounded (does not grow with the plate): "
                     f"{'MET' if bounded else 'MISSED'}"))  # fmt: skip
    mix_met = fm["overhead"] <= MIX_TARGET
    ok &= mix_met
    rows.append(("(e) backbone+head on premixed input",
                 f"{args.batch_size / fm['plain']:.1f} img/s",
                 f"DCMIX model(x) {args.batch_size / fm['dcmix']:.1f} img/s; median of "
                 f"{mix_repeats} alternating pairs"))  # fmt: skip
    rows.append(("(e) mixing overhead", f"{fm['overhead']:+.1%}",
                 f"target <= {MIX_TARGET:.0%}: {'MET' if mix_met else 'MISSED'}; the mixing "
                 f"layer alone {fm['mixing'] * 1e3:.2f} ms/batch = "
                 f"{fm['mixing'] / fm['plain']:.1%} of the premixed forward"))  # fmt: skip
    if args.profile:
        rows.append(("profile (--profile)", "", "in-process CLI runs, stages timed"))
        rows += profile_rows(model, model_path, {lay: plates[lay, big] for lay in LAYOUTS},
                             args, workdir, x)  # fmt: skip
        load.append(os.getloadavg())
        rows.append(("load average (1 min) at the end", f"{load[-1][0]:.2f}", ""))
    rows.append(("all targets", "MET" if ok else "NOT ALL MET", ""))
    print(fmt_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
