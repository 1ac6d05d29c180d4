"""`napari-dcmix info PLATE [--json]`: layout, wells, sites, channels, image shape, dtype."""

from __future__ import annotations

import argparse
import json

from napari_dcmix.cli._plates import add_plate_options, open_plates


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plate", help="plate folder or .zarr (any supported layout)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_plate_options(parser)


def describe(plate) -> dict:
    """Plate summary as plain JSON-able values."""
    sites = {w: plate.sites(w) for w in plate.wells}
    return {
        "name": plate.name,
        "layout": plate.layout,
        "path": str(plate.path),
        "n_wells": len(plate.wells),
        "wells": list(plate.wells),
        "sites": sites,
        "n_sites": sum(len(s) for s in sites.values()),
        "channels": list(plate.channels),
        "image_shape": list(plate.image_shape),
        "dtype": str(plate.dtype),
        "planes": list(plate.planes),
        "timepoints": list(plate.timepoints),
        "plane": plate.plane,
        "timepoint": plate.timepoint,
    }


def _sites_summary(sites: dict[str, list[int]]) -> str:
    counts: dict[int, int] = {}
    for s in sites.values():
        counts[len(s)] = counts.get(len(s), 0) + 1
    return ", ".join(f"{n} site(s) in {k} well(s)" for n, k in sorted(counts.items()))


def _numbers(values: list[int]) -> str:
    return f"{len(values)}: {' '.join(map(str, values))}"


def _chosen(plane: int | str) -> str:
    return "the maximum projection" if plane == "max" else str(plane)


def run(args: argparse.Namespace) -> int:
    info = describe(open_plates([args.plate], args)[0])
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    h, w = info["image_shape"]
    print(f"plate:       {info['name']}")
    print(f"path:        {info['path']}")
    print(f"layout:      {info['layout']}")
    print(f"wells:       {info['n_wells']}: {' '.join(info['wells'])}")
    print(f"sites:       {info['n_sites']} ({_sites_summary(info['sites'])})")
    print(f"channels:    {len(info['channels'])}: {', '.join(info['channels'])}")
    print(f"image shape: {h} x {w} (H x W)")
    print(f"dtype:       {info['dtype']}")
    print(f"planes:      {_numbers(info['planes'])} (reading {_chosen(info['plane'])})")
    print(f"timepoints:  {_numbers(info['timepoints'])} (reading {info['timepoint']})")
    return 0
