"""Plate access benchmark (a script, not a test): prints two tables.

1. Per-site read time through ``Plate.read`` against a bare decode of the same files
   (``tifffile.imread`` / Pillow PNG decode / the zarr array), per layout; target ratio <= 1.1.
   Also ``Plate.read_thumbnail`` at 1/64 (what the mosaic's overview level reads per site).
2. Open + overview of a 384-well x 9-site x 5-channel x 1080x1080 uint16 plate: open time,
   mosaic build time, compute time of the coarsest mosaic level and of the level napari shows
   the whole plate at on a 1600 x 1000 canvas (napari's ``compute_multiscale_level`` rule:
   the coarsest level larger than the canvas; computed per channel, as napari's 5 channel
   layers do), and peak RSS; target: open + overview under 5 s and under 1 GB. Each case runs
   in a fresh subprocess (clean peak RSS, no warm caches). The plate is written cheaply as a
   ``tiff``-layout folder of hard links to 4 distinct site files (~47 MB on disk), so all of
   it is in the page cache: this measures CPU cost, not disk reads; every site file is still
   opened and parsed.

    .venv/bin/python bench/plates.py [--quick] [--repeats N] [--reads-only] [--keep DIR]
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

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))


def _paired_times(a, b, repeats: int) -> tuple[float, float]:
    """Median seconds of ``a()`` and ``b()``, measured alternately (same cache, same drift)."""
    a(), b()  # warm the page cache and imports
    ta, tb = [], []
    for _ in range(repeats):
        for fn, out in ((a, ta), (b, tb)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def _bind(fn, key):
    return lambda: fn(*key)


def _bare_reader(plate):
    """A function reading one site with the bare decoder, on the same files as ``plate``."""
    import tifffile
    from PIL import Image

    if plate.layout == "ome-zarr":

        def read(well, site):
            array = plate._array(well, site)[0]
            return np.asarray(array[...])

        return read  # fmt: skip
    if plate.layout == "tiff":
        return lambda well, site: tifffile.imread(plate._files[(well, site)])

    def read(well, site):
        out = []
        for path in plate._files[(well, site)]:
            if path.suffix.lower() == ".png":
                with Image.open(path) as im:
                    out.append(np.asarray(im))
            else:
                out.append(tifffile.imread(path))
        return np.stack(out)

    return read


def read_table(root: Path, size: int, repeats: int) -> list[dict]:
    from napari_dcmix.plate import open_plate
    from napari_dcmix.synthetic import write_synthetic_plate

    rows = []
    for layout in ("tiff", "imagexpress", "operetta", "ome-zarr", "rxrx1"):
        px = min(size, 512) if layout == "rxrx1" else size
        synth = write_synthetic_plate(root / layout, layout, n_wells=2, sites=2, image_size=px)
        plate = open_plate(synth.path)
        bare = _bare_reader(plate)
        keys = plate.site_keys()
        pairs = [_paired_times(_bind(plate.read, k), _bind(bare, k), repeats) for k in keys]
        t_plate = statistics.median(p for p, _ in pairs)
        t_bare = statistics.median(b for _, b in pairs)
        thumb = [_paired_times(_bind(plate.read_thumbnail, (*k, 64)), _bind(plate.read, k),
                               repeats)[0] for k in keys]  # fmt: skip
        rows.append({
            "layout": layout, "site": f"{len(plate.channels)}x{px}x{px} {plate.dtype}",
            "plate_ms": 1e3 * t_plate, "bare_ms": 1e3 * t_bare, "ratio": t_plate / t_bare,
            "thumb_ms": 1e3 * statistics.median(thumb),
        })  # fmt: skip
    return rows


def write_big_plate(root: Path, n_wells: int, n_sites: int, size: int, distinct: int) -> Path:
    """A tiff-layout plate whose sites are hard links to ``distinct`` real site files."""
    import tifffile

    from napari_dcmix.synthetic import plate_wells, synthesize_site

    folder = root / "big"
    folder.mkdir(parents=True)
    (folder / "channels.txt").write_text("DNA\nER\nRNA\nAGP\nMito\n")
    sources = []
    for i in range(distinct):
        path = root / f"tile{i}.tif"
        tifffile.imwrite(path, synthesize_site([7, i], image_size=size), photometric="minisblack")
        sources.append(path)
    k = 0
    for well in plate_wells(n_wells):
        for site in range(1, n_sites + 1):
            os.link(sources[k % distinct], folder / f"{well}_s{site}.tif")
            k += 1
    return folder


_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {src!r})
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
from napari_dcmix.plate import open_plate
from napari_dcmix.plate.mosaic import build_mosaic
t_import = time.perf_counter() - t0
t0 = time.perf_counter()
plate = open_plate({path!r})
t1 = time.perf_counter()
mosaic = build_mosaic(plate)
levels = mosaic.levels
t2 = time.perf_counter()
shapes = [lvl.shape[1:] for lvl in levels]
canvas = {canvas!r}
if {which!r} == "coarsest":
    k = len(levels) - 1
else:  # napari's compute_multiscale_level with the whole plate in view
    ok = [i for i, s in enumerate(shapes) if all(a > b for a, b in zip(s, canvas))]
    k = ok[-1] if ok else 0
if {per_channel!r}:  # one compute per channel layer, as napari does
    for c in range(mosaic.n_channels):
        image = mosaic.channel_levels(c)[k].compute()
    shape = [mosaic.n_channels, *image.shape]
else:
    shape = list(levels[k].compute().shape)
t3 = time.perf_counter()
print(json.dumps(dict(import_s=t_import, open_s=t1 - t0, mosaic_s=t2 - t1, compute_s=t3 - t2,
      total_s=t3 - t0, level=k, n_levels=len(levels), factor=2**k, shape=shape,
      wells=len(plate.wells), sites=plate.max_sites, peak_rss_mb=rss_mb())))
"""

#: napari's canvas (height, width) in screen pixels for the "napari level" case
CANVAS = (1000, 1600)
TARGET_S, TARGET_MB = 5.0, 1024


def overview_row(folder: Path, which: str, per_channel: bool) -> dict:
    code = _CHILD.format(
        src=str(SRC), path=str(folder), which=which, canvas=CANVAS, per_channel=per_channel
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"overview benchmark failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_overview(root: Path, n_wells: int, n_sites: int, size: int) -> bool:
    t = time.perf_counter()
    folder = write_big_plate(root, n_wells, n_sites, size, distinct=4)
    print(
        f"plate written in {time.perf_counter() - t:.1f} s as {n_wells * n_sites} hard links to "
        "4 distinct site files: it is all in the page cache (CPU cost, not disk reads)"
    )
    cases = [
        ("coarsest level, all channels", "coarsest", False),
        (f"napari level ({CANVAS[1]}x{CANVAS[0]} canvas), 5 layers", "napari", True),
    ]
    met_all = True
    print(f"{'case':<44} {'open s':>7} {'mosaic s':>8} {'compute s':>9} {'total s':>8} "
          f"{'peak MB':>8}  level (factor, shape)")  # fmt: skip
    for label, which, per_channel in cases:
        r = overview_row(folder, which, per_channel)
        met = r["total_s"] < TARGET_S and r["peak_rss_mb"] < TARGET_MB
        met_all &= met
        print(f"{label:<44} {r['open_s']:>7.3f} {r['mosaic_s']:>8.3f} {r['compute_s']:>9.2f} "
              f"{r['total_s']:>8.2f} {r['peak_rss_mb']:>8.0f}  {r['level']} of "
              f"{r['n_levels']} (1/{r['factor']}, {r['shape']})  "
              f"{'target met' if met else 'TARGET MISSED'}")  # fmt: skip
    print(f"target: open + mosaic + compute < {TARGET_S:.0f} s and peak RSS < {TARGET_MB} MB "
          "(whole child process, imports excluded from the time); "
          f"{'met' if met_all else 'MISSED'}")  # fmt: skip
    return met_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small plates, few repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--reads-only", action="store_true", help="skip the overview part")
    parser.add_argument("--keep", type=Path, default=None, help="write plates here and keep them")
    args = parser.parse_args(argv)
    size = 1080
    repeats = args.repeats or (5 if args.quick else 15)
    n_wells, n_sites = (96, 4) if args.quick else (384, 9)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        print(f"# per-site read, median of {repeats} warm reads (cpu count {os.cpu_count()})")
        print(f"{'layout':<12} {'site':<24} {'Plate.read ms':>14} {'bare ms':>9} {'ratio':>6} "
              f"{'read_thumbnail(64) ms':>22}")  # fmt: skip
        for r in read_table(root / "read", size, repeats):
            print(f"{r['layout']:<12} {r['site']:<24} {r['plate_ms']:>14.2f} "
                  f"{r['bare_ms']:>9.2f} {r['ratio']:>6.2f} {r['thumb_ms']:>22.3f}")  # fmt: skip
        if args.reads_only:
            return 0
        print(f"\n# open + overview: {n_wells} wells x {n_sites} sites x 5 x {size}x{size} uint16")
        print_overview(root / "overview", n_wells, n_sites, size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
