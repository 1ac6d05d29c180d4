"""`napari-dcmix report`: one self-contained HTML file about a model (and its predictions)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model file (.pt)")
    parser.add_argument(
        "--predictions",
        default=None,
        help="predictions CSV (napari-dcmix predict) for the plate heatmaps",
    )
    parser.add_argument("--out", required=True, help="HTML file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def run(args: argparse.Namespace) -> int:
    from napari_dcmix.model import load_model
    from napari_dcmix.report import write_report

    out = Path(args.out)
    model = load_model(args.model)
    result = write_report(
        model, out, predictions=args.predictions, model_path=args.model, overwrite=args.overwrite
    )
    print(f"wrote {result.path} ({result.figures} figures)")
    for line in result.missing:
        print(f"  not in the report: {line}")
    return 0
