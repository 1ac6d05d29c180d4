"""`napari-dcmix predict`: predict plates with a model and write one CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_dcmix.cli._plates import add_plate_options, open_plates


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plate", nargs="+", help="plate folder(s) or file(s)")
    add_plate_options(parser)
    parser.add_argument("--model", default=None, help="model file (default: the shipped model)")
    parser.add_argument("--out", required=True, help="CSV to write (see --overwrite)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--read-threads", type=int, default=2)
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def run(args: argparse.Namespace) -> int:
    from napari_dcmix.errors import CheckpointError, ModelError
    from napari_dcmix.model import (
        default_model_path,
        load_model,
        predict_plate,
        write_predictions_csv,
    )

    out = Path(args.out)
    if out.is_dir():
        raise ModelError(f"--out {out} is a folder; expected the path of a CSV file")
    if out.exists() and not args.overwrite:
        raise ModelError(f"{out} exists; pass --overwrite to replace it")
    if args.model is None and not default_model_path().is_file():
        raise CheckpointError(
            f"no --model given and the shipped default model {default_model_path()} is "
            "missing; pass --model MODEL"
        )
    model = load_model(args.model or default_model_path())
    plates = open_plates(args.plate, args)
    results = []
    for plate in plates:
        gen = predict_plate(model, plate, device=args.device, batch_size=args.batch_size,
                            read_threads=args.read_threads)  # fmt: skip
        last = -1
        while True:
            try:
                progress = next(gen)
            except StopIteration as stop:
                results.append(stop.value)
                break
            pct = 100 * progress.done // max(1, progress.total)
            if not args.quiet and (pct // 10 != last or progress.done == progress.total):
                last = pct // 10
                print(f"{plate.name}: {progress.done}/{progress.total} sites on {progress.device}",
                      file=sys.stderr, flush=True)  # fmt: skip
    out = write_predictions_csv(results, out)
    n_wells = sum(len(r.wells()) for r in results)
    print(f"wrote {out}: {sum(len(r.sites) for r in results)} sites, {n_wells} wells "
          f"(device {results[-1].device})")  # fmt: skip
    return 0
