"""Whole-screen benchmark (a script, not a test): 8 plates predicted in-process against a local
Dask cluster (``--workers``, default 2), through ``napari_dcmix.screen.predict_screen``, the
function behind ``napari-dcmix predict [--workers N]``. Prints one table.

- in-process: one process streams every plate through the model (torch uses every core).
- cluster: N worker processes, one thread each, tasks of whole wells (``--task-sites``, default
  the CLI's ``max_task_sites``). The cluster is started once (its start-up is a row of its
  own), a warm-up run on one plate imports torch and loads the model in every worker, then the
  screen is timed.
- wall-time ratio: cluster / in-process (below 1: the cluster is faster), in-process and cluster
  runs alternated ``--repeats`` times (this machine's speed drifts); medians and every round.
- scheduler overhead per task: the time a worker is not computing while tasks are queued,
  per task: the gap between one task's end and the next task's start on the same worker (the
  scheduler's dispatch and the result's trip back) plus the time inside a task outside
  ``predict_plate`` (plate cache, model cache). Target <= 5 % of a task's compute (the
  ``predict_plate`` time of a task at this task size). Beside it the all-in figure
  ``(workers x wall - total compute) / tasks``, which adds the wait for the first task and the
  tail where fewer tasks than workers remain.
- tasks/s: tasks finished per second of the timed run.

Plates (24 wells x 4 sites x 5 channels x 256 px uint16 TIFF by default) are written once to
``--workdir``. The shipped default model is used. ``--workers-list 1,2,4,8`` adds a row per
cluster size (for machines with more cores).

    flock /tmp/dcmix-cpu.lock .venv/bin/python bench/screen.py [--workdir DIR] [--workers 2]
        [--workers-list 1,2,4,8] [--plates 8] [--wells 24] [--sites 4] [--size 256]
        [--task-sites 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

TARGET = 0.05  # scheduler overhead per task / compute per task


def _cores() -> tuple[int, int]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    return os.cpu_count() or 0, usable or (os.cpu_count() or 0)


def write_plates(workdir: Path, n: int, wells: int, sites: int, size: int) -> list[Path]:
    from napari_dcmix.synthetic import write_synthetic_plate

    root = workdir / f"screen-{n}x{wells}x{sites}x{size}"
    paths = []
    for i in range(n):
        folder = root / f"plate{i:02d}"
        marker = folder / "ground_truth.json"
        if not marker.exists():
            write_synthetic_plate(
                folder, layout="tiff", n_wells=wells, sites=sites, image_size=size,
                seed=100 + i, plate_name=f"P{i:02d}",
            )  # fmt: skip
        paths.append(folder)
    return paths


def run_screen(plates: list[Any], config: Any, client: Any = None) -> tuple[float, Any]:
    from napari_dcmix.model import default_model_path
    from napari_dcmix.screen import predict_screen

    start = time.perf_counter()
    gen = predict_screen(default_model_path(), plates, config, client=client)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return time.perf_counter() - start, stop.value


def overhead(result: Any, wall: float, workers: int) -> dict[str, float]:
    """Per-task figures of a cluster run (times from the workers' clocks: one machine)."""
    tasks = result.tasks
    compute = [t.compute_s for t in tasks]
    inside = [t.finished - t.started - t.compute_s - t.load_s for t in tasks]
    by_worker: dict[tuple[str, int], list] = {}
    for t in tasks:
        by_worker.setdefault((t.worker, t.pid), []).append(t)
    gaps = []
    for runs in by_worker.values():
        runs.sort(key=lambda t: t.started)
        gaps += [b.started - a.finished for a, b in itertools.pairwise(runs)]
    gap = statistics.mean(gaps) if gaps else 0.0
    return {
        "tasks": len(tasks),
        "workers_used": len(by_worker),
        "compute_ms": 1e3 * statistics.mean(compute),
        "gap_ms": 1e3 * gap,
        "inside_ms": 1e3 * statistics.mean(inside),
        "sched_ms": 1e3 * (gap + statistics.mean(inside)),
        "allin_ms": 1e3 * (workers * wall - sum(compute)) / len(tasks),
        "tasks_per_s": len(tasks) / wall,
        "loads": sum(t.model_loaded for t in tasks),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dcmix-bench-screen"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workers-list", default=None, help="e.g. 1,2,4,8: a row per size")
    parser.add_argument("--plates", type=int, default=8)
    parser.add_argument("--wells", type=int, default=24)
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--task-sites", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="alternated rounds")
    args = parser.parse_args(argv)

    import torch

    from napari_dcmix.model.train_settings import PredictConfig
    from napari_dcmix.plate import open_plate
    from napari_dcmix.screen import dask_client

    task_sites = args.task_sites or PredictConfig().max_task_sites
    sizes = [int(w) for w in args.workers_list.split(",")] if args.workers_list else [args.workers]
    cpus, usable = _cores()
    args.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = write_plates(args.workdir, args.plates, args.wells, args.sites, args.size)
    plates = [open_plate(p) for p in paths]
    n_sites = sum(len(p.site_keys()) for p in plates)
    rows: list[tuple[str, str, str]] = []
    rows.append(
        (
            "machine",
            f"{cpus} CPUs ({usable} usable), torch {torch.__version__}",
            f"in-process torch threads {torch.get_num_threads()}; workers: 1 thread each",
        )
    )
    rows.append(("load average (1 min) at start", f"{os.getloadavg()[0]:.2f}",
                 "above the CPU count: other work competes" if os.getloadavg()[0] > usable
                 else ""))  # fmt: skip
    rows.append(("screen", f"{len(plates)} plates x {args.wells} wells x {args.sites} sites",
                 f"{n_sites} sites, 5 x {args.size}^2 uint16 TIFF; ready in "
                 f"{time.perf_counter() - t0:.1f} s"))  # fmt: skip
    config = PredictConfig(device="cpu", max_task_sites=task_sites)
    run_screen(plates[:1], config)  # warm-up: torch, the model, the page cache
    verdicts = []
    for workers in sizes:
        t = time.perf_counter()
        with dask_client(workers=workers) as client:
            startup = time.perf_counter() - t
            client.wait_for_workers(workers)
            wall_warm, _ = run_screen(plates[:1], config, client)
            walls_in, walls, results = [], [], []
            for _ in range(args.repeats):  # alternated: the machine's speed drifts
                walls_in.append(run_screen(plates, config)[0])
                wall, result = run_screen(plates, config, client)
                walls.append(wall)
                results.append(result)
        ratios = [w / i for w, i in zip(walls, walls_in, strict=True)]
        mid = sorted(range(len(walls)), key=lambda k: walls[k])[len(walls) // 2]
        wall_in, wall = statistics.median(walls_in), walls[mid]
        o = overhead(results[mid], wall, workers)
        share = o["sched_ms"] / o["compute_ms"]
        met = share <= TARGET
        verdicts.append(met)
        w = f"{workers} workers"
        rounds = ", ".join(f"{r:.2f}" for r in ratios)
        rows += [
            ("in-process wall", f"{wall_in:.2f} s",
             f"{n_sites / wall_in:.1f} sites/s; median of {args.repeats}, alternated with the "
             f"{w} runs"),
            (f"{w}: cluster start-up", f"{startup:.2f} s",
             f"LocalCluster({workers} processes); then a warm-up plate {wall_warm:.2f} s "
             "(torch import, model load)"),
            (f"{w}: wall", f"{wall:.2f} s", f"{n_sites / wall:.1f} sites/s (median run); "
             f"{o['tasks']} tasks of <= {task_sites} sites on {o['workers_used']} workers, "
             f"model loads in the run: {o['loads']}"),
            (f"{w}: wall-time ratio", f"{statistics.median(ratios):.2f}",
             f"cluster / in-process, per round {rounds}"),
            (f"{w}: compute per task", f"{o['compute_ms']:.0f} ms", "predict_plate inside a task"),
            (f"{w}: scheduler overhead", f"{o['sched_ms']:.1f} ms/task",
             f"{100 * share:.2f}% of a task's compute (target <= {100 * TARGET:.0f}%): "
             f"{'MET' if met else 'MISSED'}; gap between tasks {o['gap_ms']:.1f} ms + in a "
             f"task outside predict_plate {o['inside_ms']:.1f} ms"),
            (f"{w}: all-in overhead", f"{o['allin_ms']:.1f} ms/task",
             "(workers x wall - compute) / tasks: adds the first dispatch and the tail"),
            (f"{w}: tasks/s", f"{o['tasks_per_s']:.2f}", ""),
        ]  # fmt: skip
    rows.append(("load average (1 min) at end", f"{os.getloadavg()[0]:.2f}", ""))
    width = max(len(r[0]) for r in rows) + 2
    vwidth = max(len(r[1]) for r in rows) + 2
    print(f"{'measure':<{width}}{'value':<{vwidth}}note")
    print("-" * (width + vwidth + 40))
    for name, value, note in rows:
        print(f"{name:<{width}}{value:<{vwidth}}{note}")
    print(f"scheduler overhead target: {'MET' if all(verdicts) else 'MISSED'}")
    return 0


if __name__ == "__main__":  # (guarded: the local cluster's workers are spawned processes)
    sys.exit(main())
