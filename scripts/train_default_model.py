"""Train the default model shipped in src/napari_dcmix/data/default_model.pt (CPU, seeded).

Training plates: synthetic plates whose phenotype lives in different stains (Mito, ER, DNA),
so the backbone learns stain-agnostic phenotype features behind the mixing layer. The script
prints held-out accuracy (new plates, new seeds), the importance ranking, and a transfer check:
a fresh mixing layer + head fine-tuned (backbone frozen) on a plate whose phenotype is in a
stain the model never saw change (AGP).

    .venv/bin/python scripts/train_default_model.py [--out PATH] [--seed 0] [--epochs 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_dcmix.model import (
    FINETUNE_DEFAULTS,
    TrainConfig,
    default_model_path,
    finetune_config,
    predict_plate_all,
    save_model,
    train,
)
from napari_dcmix.plate import open_plate
from napari_dcmix.synthetic import write_synthetic_plate

TRAIN_PHENOTYPES = ("Mito", "ER", "DNA")
TRANSFER_PHENOTYPE = "AGP"
PLATE_KW = dict(layout="tiff", n_wells=48, sites=4, image_size=128)
FINETUNE_TEXT = "the fine-tuning defaults: " + ", ".join(
    f"{k} {v}" for k, v in FINETUNE_DEFAULTS.items()
)


def _run(gen, label: str):
    """Drive a core generator, printing one line per finished epoch; return its result."""

    def show(ev) -> None:
        top = max(ev.importance, key=ev.importance.get) if ev.importance else "-"
        print(
            f"  [{label}] member {ev.member}/{ev.members} epoch {ev.epoch}/{ev.epochs} "
            f"loss {ev.loss:.4f} train_acc {ev.train_accuracy:.3f} top {top}",
            flush=True,
        )

    try:
        while True:
            ev = next(gen)
            if ev.phase == "train" and " done: " in ev.message:  # an epoch's summary
                show(ev)
    except StopIteration as stop:
        return stop.value


def _accuracy(model, plate, labels) -> float:
    preds = predict_plate_all(model, plate, device="cpu")
    by_well = {w.well: w.prediction for w in preds.wells()}
    return float(np.mean([by_well[w] == lab for w, lab in labels.items()]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=default_model_path())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the synthetic plates here")
    args = ap.parse_args(argv)

    import torch

    from napari_dcmix.cli.train import print_evidence

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dcmix-default-"))

    def plate(name: str, phenotype: str, seed: int):
        info = write_synthetic_plate(
            work / name, phenotype_channel=phenotype, seed=seed, plate_name=name, **PLATE_KW
        )
        return open_plate(info.path), info.labels

    train_set = [
        plate(f"train-{p}", p, args.seed * 100 + i) for i, p in enumerate(TRAIN_PHENOTYPES)
    ]
    test_set = [
        plate(f"test-{p}", p, args.seed * 100 + 50 + i) for i, p in enumerate(TRAIN_PHENOTYPES)
    ]
    print(f"plates written in {time.perf_counter() - t0:.1f} s under {work}")

    # the product's defaults: an ensemble of 5 members (5-fold cross-validation by well),
    # 128-pixel crops at bin 1 (the training sites are 128 px: one crop is the whole site)
    config = TrainConfig(mode="scratch", epochs=args.epochs, seed=args.seed)
    result = _run(
        train(None, [p for p, _ in train_set], [lab for _, lab in train_set], config),
        "default",
    )
    model = result.model
    model.training_info["trained_on"] = (
        f"synthetic plates, phenotype in {', '.join(TRAIN_PHENOTYPES)} "
        f"(scripts/train_default_model.py, seed {args.seed})"
    )
    t_train = time.perf_counter() - t0
    print()
    print_evidence(model)

    print("\nheld-out plates (new seeds), well-level accuracy:")
    for (p, labels), name in zip(test_set, TRAIN_PHENOTYPES, strict=True):
        print(f"  phenotype in {name:5s}: {_accuracy(model, p, labels):.3f}")

    # Transfer: the fine-tuning defaults (fresh mixing layer + head, backbone frozen) on a
    # plate whose phenotype lies in a stain the model never saw change.
    tr_plate, tr_labels = plate(f"transfer-{TRANSFER_PHENOTYPE}", TRANSFER_PHENOTYPE, 777)
    ho_plate, ho_labels = plate(f"transfer-test-{TRANSFER_PHENOTYPE}", TRANSFER_PHENOTYPE, 778)
    tuned = _run(
        train(model, tr_plate, tr_labels, finetune_config(seed=args.seed)), "transfer"
    ).model
    print(f"\ntransfer to a {TRANSFER_PHENOTYPE} phenotype ({FINETUNE_TEXT}):")
    print_evidence(tuned, out=lambda line: print("  " + line))
    print(f"  accuracy on a new plate: {_accuracy(tuned, ho_plate, ho_labels):.3f}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, args.out)
    print(
        f"\nsaved {args.out} ({args.out.stat().st_size / 1e6:.2f} MB); training {t_train:.0f} s, "
        f"total {time.perf_counter() - t0:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
