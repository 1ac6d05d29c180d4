"""`napari-dcmix predict`: predict plates with a model and write one CSV.

In this process by default; ``--workers N`` starts a local Dask cluster, ``--scheduler ADDRESS``
uses a running one (see ``napari_dcmix.screen``). Finished wells are kept in ``OUT.partial``
until the CSV is written, so ``--resume`` continues an interrupted run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from napari_dcmix.cli._plates import add_plate_options, open_plates, plate_openers
from napari_dcmix.cli._settings import add_settings_arguments, settings_from_args
from napari_dcmix.model.train_settings import PredictConfig

NOTE_LINES_PER_PLATE = 10  # warning lines about site notes per plate (all are in the CSV)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "plate", nargs="+", help="plate folder(s), .zarr, or OME-Zarr URL(s) (http(s)://, s3://)"
    )
    add_plate_options(parser)
    parser.add_argument("--model", default=None, help="model file (default: the shipped model)")
    parser.add_argument("--out", required=True, help="CSV to write (see --overwrite)")
    add_settings_arguments(parser, PredictConfig)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from the partial results kept in OUT.partial "
        "(checked against the model and the columns)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or lines")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out (and discard the partial results of an unfinished run)",
    )


def _warn(text: str) -> None:
    print(f"napari-dcmix predict: warning: {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from napari_dcmix.atomic import check_writable
    from napari_dcmix.cli._progress import PlatesProgress, drive, progress_mode
    from napari_dcmix.errors import CheckpointError, ModelError
    from napari_dcmix.model import default_model_path, load_model
    from napari_dcmix.model.predictions import csv_text, plate_path_text
    from napari_dcmix.screen import partial_folder, predict_screen

    config = settings_from_args(PredictConfig, args)
    out = Path(args.out)
    if out.is_dir():
        raise ModelError(f"--out {out} is a folder; expected the path of a CSV file")
    check_writable(out, "predictions CSV")  # before any work: a missing or read-only folder
    if out.exists() and not args.overwrite:
        raise ModelError(f"{out} exists; pass --overwrite to replace it")
    model_path = Path(args.model) if args.model else default_model_path()
    if args.model is None and not model_path.is_file():
        raise CheckpointError(
            f"no --model given and the shipped default model {model_path} is missing; "
            "pass --model MODEL"
        )
    model = load_model(model_path)  # a model that does not load is named before any plate
    channels = list(model.channel_names)  # a --channel-map presents the model's stains
    plates = open_plates(args.plate, args, channels=channels)
    labels = _labels(plates)
    openers = plate_openers([plate_path_text(p) for p in plates], args, channels)
    mode = progress_mode(args.quiet)
    totals = [sum(len(p.sites(w)) for w in p.wells) for p in plates]
    where = (
        f"{config.workers} local Dask workers" if config.workers
        else f"the Dask scheduler at {config.scheduler}" if config.scheduler
        else "this process"
    )  # fmt: skip
    if mode != "quiet":
        print(f"predicting {len(plates)} plate(s), {sum(totals)} sites, in {where}", flush=True)
    display = PlatesProgress(list(zip(labels, totals, strict=True)), mode)

    def on_event(event: Any) -> None:
        display.update(event.plate_index, event.plate_done, event.device, event.plate_resumed)

    gen = predict_screen(model_path, plates, config, out, resume=args.resume,
                         overwrite=args.overwrite, openers=openers, model=model)  # fmt: skip
    try:
        result = drive(gen, on_event)
    except BaseException:
        display.close()
        store = partial_folder(out)
        if store.is_dir() and any(store.glob("wells-*.json")):
            print(f"napari-dcmix predict: the finished wells are kept in {store}; run the same "
                  "command with --resume to continue", file=sys.stderr, flush=True)  # fmt: skip
        raise
    display.close()
    if result.tasks and mode != "quiet":
        workers = len({(t.worker, t.pid) for t in result.tasks})
        loads = sum(t.model_loaded for t in result.tasks)
        print(f"{len(result.tasks)} tasks on {workers} Dask workers; the model was loaded "
              f"{loads} time(s), once per worker process")  # fmt: skip
    _report_notes(result.predictions, labels)
    n_sites = sum(len(r.sites) for r in result.predictions)
    n_wells = sum(len(r.wells()) for r in result.predictions)
    n_skipped = sum(len(r.skipped) for r in result.predictions)
    devices = sorted({r.device for r in result.predictions})
    extra = f", {n_skipped} sites skipped" if n_skipped else ""
    resumed = f", {result.resumed_sites} from an earlier run" if result.resumed_sites else ""
    print(f"wrote {csv_text(str(out))}: {n_sites} sites{resumed}, {n_wells} wells{extra} "
          f"(device {', '.join(devices)})")  # fmt: skip
    return 0


def _labels(plates: list[Any]) -> list[str]:
    """How plates are named in progress and warnings: the name, and the path when two plates
    share a name (the CSV tells them apart by its path column)."""
    from napari_dcmix.model.predictions import csv_text, plate_path_text

    names = [csv_text(str(p.name)) for p in plates]
    return [
        f"{n} ({csv_text(plate_path_text(p))})" if names.count(n) > 1 else n
        for n, p in zip(names, plates, strict=True)
    ]


def _report_notes(predictions: list[Any], labels: list[str]) -> None:
    """A warning per skipped site, and per site with notes (up to a few per plate: all of them
    are in the CSV's notes column)."""
    for pred, label in zip(predictions, labels, strict=True):
        for s in pred.skipped:
            _warn(f"plate {label} well {s.well} site {s.site} skipped: {s.reason}")
        noted = [s for s in pred.sites if s.notes]
        for s in noted[:NOTE_LINES_PER_PLATE]:
            where = f"well {s.well} site {s.site}"
            # notes from the plate reader already name the plate, well and site
            parts = [n if where in n else f"plate {label} {where}: {n}" for n in s.notes]
            _warn("; ".join(parts))
        if len(noted) > NOTE_LINES_PER_PLATE:
            _warn(f"plate {label}: {len(noted) - NOTE_LINES_PER_PLATE} more site(s) with notes "
                  "(see the notes column)")  # fmt: skip
