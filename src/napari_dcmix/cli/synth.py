"""`napari-dcmix synth OUT`: write a synthetic plate with a known phenotype channel."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_dcmix.cli._args import fraction, int_range, seed
from napari_dcmix.errors import PlateError

LAYOUT_CHOICES = ("tiff", "rxrx1", "imagexpress", "operetta", "ome-zarr")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder (created; must be empty unless --overwrite)")
    parser.add_argument("--layout", choices=LAYOUT_CHOICES, default="tiff")
    parser.add_argument("--wells", type=int_range(1, 1536, "a number of wells"), default=8,
                        help="number of wells (row-major), 1..1536")  # fmt: skip
    parser.add_argument("--sites", type=int_range(1, 100, "a number of sites"), default=2,
                        help="sites per well, 1..100")  # fmt: skip
    parser.add_argument("--channels", default="DNA,ER,RNA,AGP,Mito", help="comma-separated")
    parser.add_argument("--phenotype-channel", default="Mito")
    parser.add_argument("--second-channel", default=None, help="weaker second phenotype channel")
    parser.add_argument("--second-strength", type=fraction, default=0.3, help="0..1")
    parser.add_argument("--treated-fraction", type=fraction, default=0.5, help="0..1")
    parser.add_argument("--image-size", type=int_range(16, 4096, "an image size in pixels"),
                        default=96, help="pixels per side, 16..4096")  # fmt: skip
    parser.add_argument("--dtype", choices=("uint8", "uint16", "float32"), default="uint16")
    parser.add_argument("--plate-name", default="SynthPlate")
    parser.add_argument("--ome-zarr-version", choices=("0.4", "0.5"), default="0.5")
    parser.add_argument("--planes", type=int_range(1, 100, "a number of planes"), default=1,
                        help="z planes (imagexpress, operetta, ome-zarr)")  # fmt: skip
    parser.add_argument("--timepoints", type=int_range(1, 100, "a number of timepoints"),
                        default=1, help="timepoints (imagexpress, operetta, ome-zarr)")  # fmt: skip
    parser.add_argument("--seed", type=seed, default=0, help="0 <= seed < 2**63")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty OUT")


def run(args: argparse.Namespace) -> int:
    from napari_dcmix.synthetic import write_synthetic_plate

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PlateError(f"{out} is a file; expected an output folder")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise PlateError(f"{out} is not empty; choose an empty folder or pass --overwrite")
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    plate = write_synthetic_plate(
        out,
        layout=args.layout,
        n_wells=args.wells,
        sites=args.sites,
        channels=channels,
        phenotype_channel=args.phenotype_channel,
        second_channel=args.second_channel,
        second_strength=args.second_strength,
        image_size=args.image_size,
        dtype=args.dtype,
        seed=args.seed,
        treated_fraction=args.treated_fraction,
        plate_name=args.plate_name,
        ome_zarr_version=args.ome_zarr_version,
        planes=args.planes,
        timepoints=args.timepoints,
    )
    n_treated = sum(v == "treated" for v in plate.labels.values())
    strengths = ", ".join(f"{c}={s:g}" for c, s in plate.ground_truth.items() if s)
    print(f"wrote {args.layout} plate {plate.name!r}: {plate.path}")
    print(f"  {len(plate.labels)} wells ({n_treated} treated) x {args.sites} sites, "
          f"channels {', '.join(plate.channels)}")  # fmt: skip
    print(f"  phenotype: {strengths}")
    print(f"  labels: {plate.labels_csv}")
    print(f"  ground truth: {plate.labels_csv.parent / 'ground_truth.json'}")
    return 0
