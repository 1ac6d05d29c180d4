"""Plate access benchmark (a script, not a test): prints two tables.

1. Per-site read time through ``Plate.read`` against a bare decode of the same files
   (``tifffile.imread`` / Pillow PNG decode / the zarr array), per layout; target ratio <= 1.1.
2. Time and peak memory to open a 384-well x 9-site x 5-channel x 1080x1080 uint16 plate and
   compute its overview (the coarsest level of ``napari_dcmix.plate.mosaic``; falls back to a
   strided ``Plate.to_dask`` overview if the mosaic module is missing). The plate is written
   cheaply as a ``tiff``-layout folder of hard links to a few distinct site files (~47 MB on
   disk; every site is still opened and decoded). Runs in a subprocess for a clean peak RSS.

    .venv/bin/python bench/plates.py [--quick] [--repeats N] [--keep DIR]
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
        rows.append({
            "layout": layout, "site": f"{len(plate.channels)}x{px}x{px} {plate.dtype}",
            "plate_ms": 1e3 * t_plate, "bare_ms": 1e3 * t_bare, "ratio": t_plate / t_bare,
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
t0 = time.perf_counter()
from napari_dcmix.plate import open_plate
plate = open_plate({path!r})
t_open = time.perf_counter() - t0
try:
    from napari_dcmix.plate.mosaic import build_mosaic
    mosaic = build_mosaic(plate)
    levels = mosaic.levels
    how = f"mosaic level {{len(levels) - 1}} of {{len(levels)}}"
    overview = levels[-1]
except ImportError:
    step = max(1, max(plate.image_shape) // 64)
    overview = plate.to_dask()[..., ::step, ::step]
    how = f"to_dask()[..., ::{{step}}, ::{{step}}]"
t1 = time.perf_counter()
t_lazy = t1 - t0
image = overview.compute()
t_overview = time.perf_counter() - t1
print(json.dumps(dict(open_s=t_open, lazy_s=t_lazy, overview_s=t_overview, how=how,
      shape=list(image.shape), wells=len(plate.wells), sites=plate.max_sites,
      peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def big_plate_row(root: Path, n_wells: int, n_sites: int, size: int) -> dict:
    t = time.perf_counter()
    folder = write_big_plate(root, n_wells, n_sites, size, distinct=4)
    write_s = time.perf_counter() - t
    code = _CHILD.format(src=str(SRC), path=str(folder))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"overview benchmark failed:\n{done.stderr}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["write_s"] = write_s
    return row


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
        print(f"{'layout':<12} {'site':<24} {'Plate.read ms':>14} {'bare ms':>9} {'ratio':>6}")
        for r in read_table(root / "read", size, repeats):
            print(f"{r['layout']:<12} {r['site']:<24} {r['plate_ms']:>14.2f} "
                  f"{r['bare_ms']:>9.2f} {r['ratio']:>6.2f}")  # fmt: skip
        if args.reads_only:
            return 0
        print(f"\n# open + overview: {n_wells} wells x {n_sites} sites x 5 x {size}x{size} uint16")
        row = big_plate_row(root / "overview", n_wells, n_sites, size)
        print(f"plate written in {row['write_s']:.1f} s (hard links to 4 distinct sites)")
        print(f"open_plate:        {row['open_s']:.3f} s")
        print(f"open + lazy view:  {row['lazy_s']:.3f} s")
        print(f"overview compute:  {row['overview_s']:.2f} s  ({row['how']}, shape {row['shape']})")
        print(f"peak RSS:          {row['peak_rss_mb']:.0f} MB (whole child process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
