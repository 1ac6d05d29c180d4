"""`napari-dcmix importance MODEL`: a model's channel importance and what it may claim.

``--json`` prints one object stain -> weight (scripts rely on it); ``--report`` one object
with the importance, each stain's interval, the verdict and the stain it names, the held-out
evidence and the per-class importance; ``--ablation PLATE --labels CSV`` measures per-stain
ablation on labelled wells and prints it beside the learned importance with their Spearman.
"""

from __future__ import annotations

import argparse
import json

from napari_dcmix.cli._args import seed as seed_type
from napari_dcmix.cli._plates import add_plate_options, open_plates


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model file (.pt)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object stain -> weight")
    out.add_argument(
        "--report",
        action="store_true",
        help="one JSON object: importance, interval, top, verdict, held_out, per_class",
    )
    parser.add_argument(
        "--ablation", metavar="PLATE", help="also measure per-stain ablation on this plate"
    )
    parser.add_argument("--labels", help="plate map CSV (well,label) of the --ablation plate")
    parser.add_argument(
        "--seed", type=seed_type, default=0, help="which labelled sites are sampled"
    )
    add_plate_options(parser)


def report(model) -> dict:
    """The ``--report`` object (plain JSON values)."""
    from napari_dcmix.model import evidence as ev

    evidence = ev.model_evidence(model) or {}
    verdict = ev.verdict(evidence or None)
    held = evidence.get("held_out")
    return {
        "importance": model.channel_importance(),
        "interval": evidence.get("interval"),
        "top": verdict.top,
        "verdict": verdict.sentence,
        "verdict_kind": verdict.kind,
        "held_out": None
        if not held
        else {
            "balanced_accuracy": held["balanced_accuracy"],
            "interval": held["interval"],
            "n_wells": held["n_wells"],
            "confusion": held["confusion"],
            "scheme": evidence.get("scheme"),
        },
        "chance": evidence.get("chance"),
        "per_class": evidence.get("per_class") or {},
        "per_class_interval": evidence.get("per_class_interval") or {},
        "reference": evidence.get("reference"),
        "readout": evidence.get("readout"),
        "members": len(model.members),
        "scale": model.scale.to_dict(),
        "stains": list(model.channel_names),
        "classes": list(model.class_names),
    }


def run(args: argparse.Namespace) -> int:
    from napari_dcmix.cli.train import print_evidence
    from napari_dcmix.errors import LabelsError
    from napari_dcmix.model import load_model

    model = load_model(args.model)
    if args.ablation and not args.labels:
        raise LabelsError("--ablation PLATE needs --labels CSV (the wells to measure it on)")
    if args.labels and not args.ablation:
        raise LabelsError("--labels is for --ablation PLATE; give the plate too")
    ablation = None
    if args.ablation:
        from napari_dcmix.cli._progress import drive
        from napari_dcmix.model.ablation import ablation_on_plate
        from napari_dcmix.model.inference import check_channels
        from napari_dcmix.plate.labels import read_labels_csv

        plate = open_plates([args.ablation], args, channels=list(model.channel_names))[0]
        check_channels(model, plate)
        labels = read_labels_csv(args.labels, plate=plate.name)
        found = drive(ablation_on_plate(model, plate, labels, seed=args.seed), lambda _: None)
        ablation = {"ablation": found.ablation, "spearman": found.spearman,
                    "n_inputs": found.n_inputs}  # fmt: skip
    if args.json:
        print(json.dumps(model.channel_importance()))
        return 0
    if args.report:
        print(json.dumps({**report(model), **({"ablation": ablation} if ablation else {})}))
        return 0
    print(f"{model.mode} mixing, K={model.k}, backbone {model.backbone_name}, {model.scale}, "
          f"{len(model.members)} member(s)")  # fmt: skip
    print_evidence(model)
    if ablation:
        width = max(len(c) for c in ablation["ablation"])
        learned = model.channel_importance()
        print(f"per-stain ablation on {ablation['n_inputs']} inputs of {args.ablation} "
              f"(each stain replaced by its normalised mean):")  # fmt: skip
        for stain, value in sorted(ablation["ablation"].items(), key=lambda kv: -kv[1]):
            print(f"  {stain:<{width}}  ablation {value:.3f}  learned {learned[stain]:.3f}")
        print(f"Spearman (learned vs ablation): {ablation['spearman']:.3f}")
    return 0
