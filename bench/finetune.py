"""Fine-tune benchmark (a script, not a test): the widget's default Fine-tune on the demo.

The embedded sample plate, the demo's annotated wells, the shipped default model and the
fine-tuning defaults (``FINETUNE_DEFAULTS``: a fresh mixing layer and head on the frozen
backbone, an ensemble of independently seeded members holding out folds of the wells, so the
chart gets intervals and held-out evidence): wall time from start to the trained ensemble with
its evidence, and the verdict, for ``--seeds`` seeds. Target: each run ends within 90 s on the
project's 2-core machine. Runs the same core generator the widget's Fine-tune runs, in this
process, with torch on the CPU.

    .venv/bin/python bench/finetune.py [--seeds 3] [--per-class 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

TARGET_S = 90.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--per-class",
        type=int,
        default=None,
        help="annotated wells per class (default: the demo's)",
    )
    args = ap.parse_args()

    import torch

    from napari_dcmix._napari.demo import DEMO_ANNOTATED_PER_CLASS, demo_annotations
    from napari_dcmix._napari.workers import leave_a_core_for_the_viewer
    from napari_dcmix.model import (
        FINETUNE_DEFAULTS,
        default_model_path,
        finetune_config,
        load_model,
        train,
    )
    from napari_dcmix.model.evidence import verdict
    from napari_dcmix.plate import open_plate
    from napari_dcmix.sample import sample_plate

    leave_a_core_for_the_viewer()  # as the widget does before its first job: its Fine-tune
    per_class = args.per_class or DEMO_ANNOTATED_PER_CLASS
    sample = sample_plate(Path(tempfile.mkdtemp(prefix="dcmix-bench-ft-")) / "sample")
    plate = open_plate(sample.path)
    labels = demo_annotations(sample.labels, per_class)
    base = load_model(default_model_path())
    print(f"# {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads, capped as the viewer caps them); sample plate {len(plate.wells)} wells x "
          f"{plate.max_sites} sites, "
          f"{len(labels)} annotated wells; default model: {len(base.members)} members, "
          f"{base.scale}")  # fmt: skip
    print(f"# fine-tuning defaults: {FINETUNE_DEFAULTS}")
    times = []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        gen = train(base, plate, labels, finetune_config(seed=seed))
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                result = stop.value
                break
        took = time.perf_counter() - t0
        times.append(took)
        v = verdict(result.evidence)
        info = result.model.training_info
        print(f"seed {seed}: {took:5.1f} s, {info['members']} members "
              f"({info['parallel_members']} at a time): {v.sentence}")  # fmt: skip
    worst = max(times)
    print(f"worst {worst:.1f} s, median {sorted(times)[len(times) // 2]:.1f} s; target <= "
          f"{TARGET_S:.0f} s: {'MET' if worst <= TARGET_S else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
