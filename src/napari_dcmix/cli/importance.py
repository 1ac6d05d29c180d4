"""`napari-dcmix importance`: print a model's channel importance."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model file (.pt)")
    parser.add_argument("--json", action="store_true", help="one JSON object channel -> weight")


def run(args: argparse.Namespace) -> int:
    from napari_dcmix.model import load_model

    model = load_model(args.model)
    importance = model.channel_importance()
    if args.json:
        print(json.dumps(importance))
        return 0
    width = max(len(c) for c in importance)
    print(f"{model.mode} mixing, K={model.k}, backbone {model.backbone_name}")
    for channel, weight in sorted(importance.items(), key=lambda kv: -kv[1]):
        print(f"{channel:<{width}}  {weight:.4f}  {'#' * round(weight * 40)}")
    return 0
