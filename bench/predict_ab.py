"""Old against new code, alternated: plate prediction speed relative to the forward ceiling.

On a machine whose speed drifts (this project's VM can change by 20 % within an hour), two
``bench/predict.py`` runs at different times do not compare. This script checks out ``--old``
(a git revision) into a temporary worktree and alternates, ``--pairs`` times, one child process
on the old tree and one on the working tree. The plates are ``bench/predict.py``'s (cached in
``--workdir``, written there when missing). Each child measures the forward ceiling as
``bench/predict.py`` does (the better of one forward pass with every torch thread and one
single-threaded forward thread per torch thread; that code is the working tree's bench, so
both children measure it the same way), then times ``predict_plate`` (CPU, an opened plate,
no CLI) on each plate and prints the ratio to that ceiling, with the share of the machine
other processes used meanwhile.

The model is bench/predict.py's whole-site one: member 0 of the shipped default with
``PixelScale(bin=1, crop=None)`` (input 128). ``--tiled`` adds member 0 at its own scale
(crop 128, 16 tiles per 512 px site) on the first quarter of the TIFF plate's wells.

    .venv/bin/python bench/predict_ab.py --old 467a516 [--workdir /tmp/dcmix-bench-cache]
        [--pairs 4] [--wells 96] [--sites 4] [--site-size 512] [--tiled]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def child(src: str, plates: dict[str, str], tiled: bool) -> None:
    """Runs in a child process on the package in ``src``: print {plate: ratio, ...} as JSON."""
    import predict as bench  # bench/predict.py (it puts the working tree's src on sys.path)

    sys.path.insert(0, src)  # ahead of it: the package under test is ``src``'s
    import torch

    from napari_dcmix.model import default_model_path, load_model
    from napari_dcmix.model.inference import predict_plate_all
    from napari_dcmix.plate import open_plate

    assert Path(sys.modules["napari_dcmix"].__file__).is_relative_to(src)
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)

    def member(crop: bool) -> object:
        loaded = load_model(default_model_path())
        m = getattr(loaded, "members", [loaded])[0]
        if not crop and hasattr(m, "scale"):
            from napari_dcmix.model.scale import PixelScale

            m.scale = PixelScale(bin=1, crop=None)
        return m.eval()

    model = member(crop=False)
    x = bench.ceiling_pool(model, Path(next(iter(plates.values()))), 32)

    def ceiling() -> float:
        """The best of bench/predict.py's ceiling modes, on its pool of distinct batches."""
        return max(bench.mode_sample(model, x, 4, m)[0] for m in bench.ceiling_modes(threads))

    runs = [(name, model, path, None, 1) for name, path in plates.items()]
    if tiled:
        crop_model = member(crop=True)
        plate = open_plate(plates["tiff"])
        wells = list(plate.wells)[: max(1, len(plate.wells) // 4)]
        runs.append(("tiff-tiled", crop_model, plates["tiff"], wells, 16))
    out: dict[str, float] = {}
    with bench.OtherCpu() as busy:
        for name, m, path, wells, tiles in runs:
            plate = open_plate(path)
            rate = ceiling()
            t = time.perf_counter()
            result = predict_plate_all(m, plate, device="cpu", wells=wells)
            out[name] = len(result.sites) * tiles / (time.perf_counter() - t) / rate
    out["other_cpu"] = busy.share
    print(json.dumps(out))


def bench_plates(args: argparse.Namespace) -> dict[str, str]:
    """``bench/predict.py``'s plates for these sizes (written into ``--workdir`` if missing)."""
    import predict as bench
    from napari_dcmix.model import default_model_path, load_model

    channels = list(load_model(default_model_path()).channel_names)
    args.workdir.mkdir(parents=True, exist_ok=True)
    return {
        layout: str(bench.cached_plate(args.workdir, layout, args.wells, args.sites,
                                       args.site_size, channels)[0])
        for layout in bench.LAYOUTS
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="git revision to compare the working tree with")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/dcmix-bench-cache"))
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--wells", type=int, default=96)
    p.add_argument("--sites", type=int, default=4)
    p.add_argument("--site-size", type=int, default=512)
    p.add_argument("--tiled", action="store_true", help="add the crop model on TIFF")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child[0], json.loads(args.child[1]), args.tiled)
        return 0
    plates = bench_plates(args)
    with tempfile.TemporaryDirectory(prefix="dcmix-ab-") as tmp:
        old_tree = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach",
                        str(old_tree), args.old], check=True)  # fmt: skip
        try:
            runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
            for _ in range(args.pairs):
                for label, src in (("old", old_tree / "src"), ("new", ROOT / "src")):
                    cmd = [sys.executable, __file__, "--old", args.old, "--child", str(src),
                           json.dumps(plates)] + (["--tiled"] if args.tiled else [])  # fmt: skip
                    line = subprocess.run(cmd, check=True, capture_output=True, text=True)
                    runs[label].append(json.loads(line.stdout.strip().splitlines()[-1]))
                    print(label, " ".join(f"{k} {v:.3f}" for k, v in runs[label][-1].items()),
                          flush=True)  # fmt: skip
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(old_tree)], check=False)  # fmt: skip
    print(f"\nratio to the forward ceiling, {args.pairs} alternated runs each "
          f"(old = {args.old}, new = working tree):")  # fmt: skip
    for name in [k for k in runs["new"][0] if k != "other_cpu"]:
        cells = []
        for label in ("old", "new"):
            values = [r[name] for r in runs[label]]
            cells.append(f"{label} {min(values):.2f}-{max(values):.2f} "
                         f"(median {statistics.median(values):.2f})")  # fmt: skip
        print(f"  {name:<14} " + "; ".join(cells))
    others = [r["other_cpu"] for label in ("old", "new") for r in runs[label]]
    print(f"other processes' CPU while the children ran: {min(others):.0%}-{max(others):.0%} "
          "of the machine")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
