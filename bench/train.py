"""Training benchmark (a script, not a test): streamed crops at the camera's pixels.

A 384-well x 9-site x 5-channel plate of 1080x1080 uint16 sites (a ``tiff``-layout folder of
hard links to a few real site files, as ``bench/plates.py`` writes it: every site file is
opened and its crops read, from the page cache) is trained on at bin 1, crop 128:

(a) training crops/s while training runs (sites read crop by crop by the reader threads,
    memory-mapped: no site is decoded whole), against the ceiling: the same training loop
    (``train_arrays``, the same crop size, batch, model and threads) on crops pre-loaded in
    memory, in the same run. Target: ratio >= 0.8.
(b) peak RSS of training on a 24-well and on the 384-well plate (each in a fresh process;
    VmHWM): target within 10 % of each other and below 2 GB.

The rate counts the training steps only (between the first and the last step of the epoch);
estimating the normalisation, mapping where sites have signal and predicting held-out wells
come before and after. Each case runs in a fresh subprocess.

    .venv/bin/python bench/train.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SITE = 1080
CROP = 128
BATCH = 16


def _settings(quick: bool) -> dict:
    return dict(
        epochs=1, batch_size=BATCH, bin=1, crop=CROP, ensemble=1, val_fraction=0.05,
        max_tiles=1, k=3, read_threads=2, seed=0,
    )  # fmt: skip


def _rate(gen) -> tuple[object, float, int]:
    """Run a training generator; (result, crops/s over the training steps, crops)."""
    first = last = None
    crops = 0
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        if ev.phase == "train" and " done: " not in ev.message:
            now = time.perf_counter()
            if first is None:
                first = now  # the first step has run: count from here
            else:
                crops += BATCH
            last = now
    return result, crops / max(last - first, 1e-9), crops


def child(case: str, plate_dir: str, n_wells: int, quick: bool) -> dict:
    import numpy as np
    import torch

    from napari_dcmix.model import TrainConfig, train, train_arrays
    from napari_dcmix.plate import open_plate

    torch.set_num_threads(2)
    plate = open_plate(plate_dir)
    wells = plate.wells[:n_wells]
    labels = {w: ("treated" if i % 2 else "control") for i, w in enumerate(wells)}
    cfg = TrainConfig(**_settings(quick))
    if case == "stream":
        _, rate, crops = _rate(train(None, plate, labels, cfg))
    else:  # the ceiling: the same loop on crops pre-loaded in memory
        n = 48 * 9 if not quick else 96
        rng = np.random.default_rng(0)
        keys = [(w, s) for w in wells for s in plate.sites(w)]
        picks = [keys[i] for i in rng.permutation(len(keys))[:n]]
        x = np.stack([plate.read_region(w, s, 0, CROP, 0, CROP) for w, s in picks])
        y = np.array([labels[w] for w, _ in picks])
        groups = np.array([w for w, _ in picks])
        _, rate, crops = _rate(train_arrays(None, x, y, cfg, channel_names=plate.channels,
                                            groups=groups))  # fmt: skip
    with open("/proc/self/status") as fh:
        hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
    return {"case": case, "wells": n_wells, "rate": rate, "crops": crops, "peak_mb": hwm / 1024}


def run_child(case: str, plate_dir: Path, n_wells: int, quick: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", case, str(plate_dir), str(n_wells)]
    cmd += ["--quick"] if quick else []
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child {case} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 48-well plate: a smoke run")
    ap.add_argument("--keep", type=Path, help="build the plate here (kept)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        case, plate_dir, n = args.child
        print(json.dumps(child(case, plate_dir, int(n), args.quick)))
        return
    import torch

    from plates import write_big_plate

    big = 48 if args.quick else 384
    root = args.keep or Path(tempfile.mkdtemp(prefix="dcmix-bench-train-"))
    t0 = time.perf_counter()
    plate_dir = root / "big"
    if not plate_dir.exists():
        write_big_plate(root, big, 9, SITE, distinct=4)
    built = time.perf_counter() - t0
    print(f"# plate: {big} wells x 9 sites x 5 ch x {SITE}x{SITE} uint16 (hard links to 4 site "
          f"files, in the page cache) built in {built:.1f} s")  # fmt: skip
    print(f"# {os.cpu_count()} CPUs, torch {torch.__version__}, 2 torch threads, 2 read threads")
    print(f"# training: bin 1, crop {CROP}, batch {BATCH}, small_cnn K=3, 1 member, 1 epoch")
    ceiling = run_child("ceiling", plate_dir, big, args.quick)
    stream = run_child("stream", plate_dir, big, args.quick)
    small = run_child("stream", plate_dir, 24, args.quick)
    ratio = stream["rate"] / ceiling["rate"]
    grow = stream["peak_mb"] / small["peak_mb"] - 1
    memory_met = abs(grow) <= 0.1 and stream["peak_mb"] < 2048
    rows = [
        ("(a) ceiling: crops pre-loaded in memory", f"{ceiling['rate']:.1f} crops/s",
         f"{ceiling['crops']} crops"),
        (f"(a) streamed from the {big}-well plate", f"{stream['rate']:.1f} crops/s",
         f"{stream['crops']} crops"),
        ("(a) ratio streamed / ceiling", f"{ratio:.2f}",
         f"target >= 0.8: {'MET' if ratio >= 0.8 else 'MISSED'}"),
        ("(b) peak RSS, 24 wells", f"{small['peak_mb']:.0f} MB", "fresh process, VmHWM"),
        (f"(b) peak RSS, {big} wells", f"{stream['peak_mb']:.0f} MB",
         f"{100 * grow:+.1f} % vs 24 wells"),
        ("(b) memory target", "MET" if memory_met else "MISSED",
         "within 10 % of each other and < 2 GB"),
    ]  # fmt: skip
    print(f"{'measure':<42} {'value':<16} note")
    for name, value, note in rows:
        print(f"{name:<42} {value:<16} {note}")
    print(f"# total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
