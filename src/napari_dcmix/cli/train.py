"""`napari-dcmix train`: train or fine-tune a DCMIX model on labelled wells.

Training settings come from ``TrainConfig``'s metadata (one definition for the API, the CLI
and the widget). The command prints the held-out evidence (balanced accuracy with its
interval, the confusion matrix), each stain's importance with its interval, and the verdict:
the sentence the evidence supports.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_dcmix.cli._args import int_range
from napari_dcmix.cli._args import seed as seed_type
from napari_dcmix.cli._plates import add_plate_options, open_plates, plate_openers
from napari_dcmix.cli._settings import add_settings_arguments, settings_from_args
from napari_dcmix.errors import ModelError
from napari_dcmix.model.train_settings import FINETUNE_DEFAULTS, TrainConfig

DEFAULTS = {"device": "cpu"}  # the CPU: bit-for-bit reproducible for a seed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plate", nargs="+", help="plate folder(s) or file(s)")
    add_plate_options(parser)
    parser.add_argument("--labels", required=True, help="plate map CSV: well,label[,plate]")
    parser.add_argument("--out", required=True, help="model file to write (.pt)")
    parser.add_argument("--init", help="model to start from (fine-tune)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or lines")
    cluster = parser.add_argument_group("where the ensemble members train")
    where = cluster.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int_range(1, 1024, "a number of worker processes"),
        help="train the members on a local Dask cluster of N worker processes (one thread "
        "each); default: in this process, members in parallel threads",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="train the members on the workers of a running Dask scheduler (tcp://host:8786)",
    )
    cluster.add_argument(
        "--scheduler-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for --scheduler to answer (default: 10)",
    )
    add_settings_arguments(
        parser,
        TrainConfig,
        defaults={
            **DEFAULTS,
            "mode": "scratch; with --init the fine-tuning defaults: "
            + ", ".join(f"{k} {v}" for k, v in FINETUNE_DEFAULTS.items()),
        },
        types_={"seed": seed_type},
    )


def print_evidence(model, out=print) -> None:
    """The held-out evidence, the importance with intervals and the verdict, as text."""
    from napari_dcmix.model import evidence as ev

    evidence = ev.model_evidence(model)
    importance = model.channel_importance()
    interval = (evidence or {}).get("interval") or {}
    held = (evidence or {}).get("held_out")
    if held:
        out(f"held out ({evidence.get('scheme')}): {ev.held_out_text(held)}")
        classes = list(evidence["classes"])
        width = max(len(c) for c in classes)
        out(f"  confusion (rows: true class, columns: predicted)  {'  '.join(classes)}")
        for name, row in zip(classes, held["confusion"], strict=True):
            cells = [f"{v:>{len(c)}}" for v, c in zip(row, classes, strict=True)]
            out(f"  {name:<{width}}  " + "  ".join(cells))
    width = max(len(c) for c in importance)
    members = len(getattr(model, "members", [model]))
    out(f"channel importance ({model.scale}, {members} member(s)):")
    for stain, value in sorted(importance.items(), key=lambda kv: -kv[1]):
        span = f"  ({interval[stain][0]:.3f}-{interval[stain][1]:.3f})" if stain in interval else ""
        out(f"  {stain:<{width}}  {value:.3f}{span}")
    for cls, verdict in ev.class_verdicts(evidence).items():
        imp = evidence["per_class"][cls]
        ranked = ", ".join(f"{s} {v:.2f}" for s, v in sorted(imp.items(), key=lambda kv: -kv[1]))
        out(f"  per class: {verdict.sentence} ({ranked})")
    out(ev.verdict(evidence).sentence)


def run(args: argparse.Namespace) -> int:
    from napari_dcmix.atomic import check_writable
    from napari_dcmix.model import load_model, save_model, train
    from napari_dcmix.plate.labels import read_labels_csv

    out = Path(args.out)
    if out.is_dir():
        raise ModelError(f"--out {out} is a folder; expected the path of a model file (.pt)")
    if out.exists() and not args.overwrite:
        raise ModelError(f"{out} exists; pass --overwrite to replace it")
    check_writable(out, "model file")  # before any training
    init = load_model(args.init) if args.init else None
    defaults = {**DEFAULTS, **(FINETUNE_DEFAULTS if init is not None else {})}
    config = settings_from_args(TrainConfig, args, defaults)
    # a --channel-map presents the stains of --init in its order (without it, the plate's)
    channels = list(init.channel_names) if init is not None else None
    plates = open_plates(args.plate, args, channels=channels)
    multi = len(plates) > 1
    labels = [read_labels_csv(args.labels, plate=p.name) for p in plates]  # plate column
    from napari_dcmix.cli._progress import follow_training, progress_mode
    from napari_dcmix.screen import dask_client

    openers = plate_openers(args.plate, args, channels)
    with dask_client(args.workers, args.scheduler, args.scheduler_timeout) as client:
        gen = train(init, plates if multi else plates[0], labels if multi else labels[0], config,
                    client=client, openers=openers if client is not None else None)  # fmt: skip
        result = follow_training(gen, progress_mode(args.quiet))
    if result.model is None:
        raise ModelError("training was cancelled; nothing written")
    save_model(result.model, out)
    print_evidence(result.model)
    print(f"wrote {out}")
    return 0
