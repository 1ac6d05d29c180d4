"""`napari-dcmix info PLATE|MODEL [--json]`: what a plate or a model file holds.

A plate: layout, wells, sites, channels, image shape, dtype, planes, timepoints and pixel
size. A model file (``.pt``): its stains, classes, pixel scale, ensemble members, backbone and
whether held-out evidence is stored.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from napari_dcmix.cli._plates import add_plate_options, open_plates

MODEL_SUFFIXES = (".pt", ".pth")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "plate", metavar="PLATE|MODEL", help="plate folder or .zarr (any layout), or a model .pt"
    )
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
        "pixel_size_um": plate.pixel_size_um,
        "pixel_size_source": plate.pixel_size_source,
    }


def describe_model(model, path: Path) -> dict:
    """Model summary as plain JSON-able values."""
    from napari_dcmix.model import evidence as ev

    held = (ev.model_evidence(model) or {}).get("held_out")
    return {
        "path": str(path),
        "stains": list(model.channel_names),
        "classes": list(model.class_names),
        "scale": str(model.scale),
        "bin": model.scale.bin,
        "crop": model.scale.to_dict()["crop"],
        "members": len(model.members),
        "backbone": model.backbone_name,
        "held_out_evidence": bool(held),
        "held_out": None
        if not held
        else {
            "balanced_accuracy": held.get("balanced_accuracy"),
            "n_wells": held.get("n_wells"),
        },
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


def _pixel_size(info: dict) -> str:
    if info["pixel_size_um"] is None:
        return f"unknown ({info['pixel_size_source']})"
    return f"{info['pixel_size_um']:.6g} µm ({info['pixel_size_source']})"


def is_model_path(path: str) -> bool:
    """A file named like a model (``.pt``, ``.pth``); plates are folders (or an index XML)."""
    p = Path(path).expanduser()
    return p.suffix.lower() in MODEL_SUFFIXES and not p.is_dir()


def run(args: argparse.Namespace) -> int:
    if is_model_path(args.plate):
        return _run_model(args)
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
    print(f"pixel size:  {_pixel_size(info)}")
    return 0


def _run_model(args: argparse.Namespace) -> int:
    from napari_dcmix.errors import ModelError
    from napari_dcmix.model import load_model

    path = Path(args.plate).expanduser()
    chosen = [o for o in ("plane", "timepoint") if getattr(args, o, None) is not None]
    if chosen:
        raise ModelError(f"--{chosen[0]} chooses what is read from a plate; {path} is a model file")
    info = describe_model(load_model(path), path)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    held = info["held_out"]
    if held is None:
        evidence = "none stored"
    else:
        accuracy = held["balanced_accuracy"]
        score = f"balanced accuracy {accuracy:.3f}" if isinstance(accuracy, float) else "stored"
        evidence = f"{score} on {held['n_wells']} held-out well(s)"
    print(f"model:       {info['path']}")
    print(f"stains:      {len(info['stains'])}: {', '.join(info['stains'])}")
    print(f"classes:     {len(info['classes'])}: {', '.join(info['classes'])}")
    print(f"pixel scale: {info['scale']}")
    print(f"members:     {info['members']}")
    print(f"backbone:    {info['backbone']}")
    print(f"held-out:    {evidence}")
    return 0
