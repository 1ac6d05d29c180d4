"""`napari-dcmix demo`: napari with the sample plate, the DCMIX widget, chart and predictions."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--screenshot",
        type=Path,
        metavar="PATH",
        help="render the demo (under Xvfb when no display is set), save a PNG and exit",
    )
    parser.add_argument(
        "--plate", type=Path, help="open this plate instead of the embedded sample plate"
    )
    parser.add_argument("--model", type=Path, help="use this model instead of the default model")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda[:N] or mps")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing --screenshot file"
    )
    parser.add_argument(
        "--no-finetune",
        dest="finetune",
        action="store_false",
        help="stop after the first prediction (by default the demo fine-tunes on its "
        "annotated wells and predicts again)",
    )


def run(args: argparse.Namespace) -> int:
    from napari_dcmix._napari.demo import run_demo

    return run_demo(
        screenshot=args.screenshot,
        plate=args.plate,
        model=args.model,
        device=args.device,
        overwrite=args.overwrite,
        finetune=args.finetune,
    )
