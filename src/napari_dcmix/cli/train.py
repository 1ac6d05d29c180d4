"""`napari-dcmix train`: train or fine-tune a DCMIX model on labelled wells."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_dcmix.cli._args import seed as seed_type
from napari_dcmix.cli._plates import add_plate_options, open_plates
from napari_dcmix.errors import ModelError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plate", nargs="+", help="plate folder(s) or file(s)")
    add_plate_options(parser)
    parser.add_argument("--labels", required=True, help="plate map CSV: well,label[,plate]")
    parser.add_argument("--out", required=True, help="model file to write (.pt)")
    parser.add_argument("--init", help="model to start from (fine-tune)")
    parser.add_argument(
        "--mode",
        choices=["scratch", "mixing", "all"],
        default=None,
        help="scratch (default without --init), mixing (backbone frozen; default "
        "with --init) or all",
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--mixing-lr", type=float, default=1e-2)
    parser.add_argument("--device", default="cpu", help="cpu, auto, cuda, cuda:N or mps")
    parser.add_argument("--seed", type=seed_type, default=0, help="0 <= seed < 2**63")
    parser.add_argument(
        "--backbone", default="small_cnn", choices=["small_cnn", "resnet18", "resnet50"]
    )
    parser.add_argument("--k", type=int, default=3, help="blended images fed to the backbone")
    parser.add_argument(
        "--mixing",
        dest="mixing_mode",
        default="softmax",
        choices=["softmax", "over"],
        help="mixing layer mode",
    )
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument(
        "--fresh-mixing",
        action="store_true",
        help="with --init on other channels: a fresh mixing layer",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def run(args: argparse.Namespace) -> int:
    from napari_dcmix.model import TrainConfig, load_model, save_model, train
    from napari_dcmix.plate.labels import read_labels_csv

    out = Path(args.out)
    if out.is_dir():
        raise ModelError(f"--out {out} is a folder; expected the path of a model file (.pt)")
    if out.exists() and not args.overwrite:
        raise ModelError(f"{out} exists; pass --overwrite to replace it")
    plates = open_plates(args.plate, args)
    multi = len(plates) > 1
    labels = [read_labels_csv(args.labels, plate=p.name) for p in plates]  # plate column
    init = load_model(args.init) if args.init else None
    mode = args.mode or ("mixing" if init is not None else "scratch")
    config = TrainConfig(
        mode=mode, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        mixing_lr=args.mixing_lr, seed=args.seed, device=args.device,
        val_fraction=args.val_fraction, fresh_mixing=args.fresh_mixing,
        backbone=args.backbone, k=args.k, mixing_mode=args.mixing_mode,
        input_size=args.input_size,
    )  # fmt: skip
    gen = train(init, plates if multi else plates[0], labels if multi else labels[0], config)
    while True:
        try:
            progress = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        if progress.phase == "read" or progress.step == progress.steps:
            print(progress.message, flush=True)
    if result.model is None:
        raise ModelError("training was cancelled; nothing written")
    save_model(result.model, out)
    weights = ", ".join(f"{c} {w:.3f}" for c, w in result.importance.items())
    print(f"channel importance: {weights}")
    print(f"wrote {out}")
    return 0
