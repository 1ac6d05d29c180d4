"""GPU check for a lent CUDA machine: correctness against the CPU, then a throughput table.

One command, nothing to install beyond torch + numpy (run from the repository root):

    PYTHONPATH=src python bench/gpu_check.py [--quick] [--markdown PATH]

1. Correctness on trained models and real plate sites: the shipped default model, and ResNet-18
   / ResNet-50 models trained here for a few epochs on a synthetic plate (phenotype in Mito),
   predict another plate's sites read from its TIFF files on the CPU (float32) and on CUDA
   through ``predict_plate`` (tiles at the model's scale, autocast float16, pinned transfers);
   prints the max absolute difference of class probabilities (also CUDA float32), whether the
   predicted classes agree, and the spread of the probabilities over the sites (so that
   agreement is not that of a near-constant output).
2. Throughput: images/s of the model's forward pass at 5x512x512 for batch sizes 32..512,
   default backbone and ResNet-18/50, with and without autocast and channels_last
   (inputs already on the GPU: the model's ceiling), plus end-to-end ``predict_arrays``
   from host uint16 arrays for the default backbone.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time

import numpy as np
import torch

from napari_dcmix.model import build_model, predict_arrays
from napari_dcmix.plate.normalise import ChannelStats

CHANNELS = ["DNA", "ER", "RNA", "AGP", "Mito"]
CLASSES = ["control", "treated", "other", "fourth"]
# "cuda" on the GPU machine; "--dry-run" uses the CPU with tiny sizes to test this script here.
DEV = "cuda"
SIZE = 512
BACKBONES = ("small_cnn", "resnet18", "resnet50")


def _model(backbone: str, input_size: int):
    model = build_model(CHANNELS, CLASSES, backbone=backbone, input_size=input_size, seed=0)
    model.normalisation = ChannelStats(CHANNELS, [100.0] * 5, [4000.0] * 5)
    return model.eval()


def _plates(root):
    """(training plate, its labels), evaluation plate: synthetic, phenotype in Mito, on disk."""
    from napari_dcmix.plate import open_plate
    from napari_dcmix.synthetic import write_synthetic_plate

    size = 256 if SIZE >= 256 else 128  # at least one crop of the default model
    tr = write_synthetic_plate(root / "train", n_wells=24, sites=2, image_size=size, seed=11)
    ev = write_synthetic_plate(root / "eval", n_wells=16, sites=2, image_size=size, seed=12)
    return (open_plate(tr.path), tr.labels), open_plate(ev.path)


def _trained(backbone: str, plate, labels):
    """The shipped default model, or a model of ``backbone`` trained here on the GPU."""
    from napari_dcmix.model import TrainConfig, default_model_path, load_model, train

    if backbone == "small_cnn" and default_model_path().is_file():
        return load_model(default_model_path()), "shipped default"
    cfg = TrainConfig(backbone=backbone, epochs=3, ensemble=1, crop=min(128, SIZE), device=DEV,
                      batch_size=16)  # fmt: skip
    gen = train(None, plate, labels, cfg)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value.model, f"trained here, 3 epochs on {DEV}"


def correctness() -> list[str]:
    import tempfile
    from pathlib import Path

    from napari_dcmix.model import predict_plate_all

    lines = [
        "| model | max abs diff p (CUDA autocast vs CPU) | (CUDA fp32 vs CPU) | classes agree "
        "| p spread over sites (std) |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        (plate, labels), eval_plate = _plates(Path(tmp))
        for backbone in BACKBONES:
            model, origin = _trained(backbone, plate, labels)
            cpu = predict_plate_all(model, eval_plate, device="cpu")
            amp = predict_plate_all(model, eval_plate, device=DEV)
            p_cpu = np.stack([s.probs for s in cpu.sites])
            p_amp = np.stack([s.probs for s in amp.sites])
            # fp32 on CUDA: the same inputs (host tiles), the forward without autocast
            from napari_dcmix.model.sites import SitePrep

            prep = SitePrep(model.scale, model.input_size, model.normalisation)
            net = model.to(DEV).eval()
            fp32 = []
            with torch.inference_mode():
                for s in cpu.sites:
                    tiles = torch.from_numpy(prep.tiles(eval_plate.read(s.well, s.site)))
                    p = torch.softmax(net(tiles.to(DEV)).float(), 1).mean(0)
                    fp32.append(p.cpu().numpy())
            model.to("cpu")
            agree = float((p_cpu.argmax(1) == p_amp.argmax(1)).mean())
            lines.append(
                f"| {backbone} ({origin}, {model.scale}) | {np.abs(p_amp - p_cpu).max():.2e} | "
                f"{np.abs(np.stack(fp32) - p_cpu).max():.2e} | {agree:.0%} | "
                f"{p_cpu[:, 1].std():.3f} |"
            )
            print(lines[-1], flush=True)
    return lines


def _empty_cache() -> None:
    if DEV == "cuda":
        torch.cuda.empty_cache()


def _sync() -> None:
    if DEV == "cuda":
        torch.cuda.synchronize()


def _time(fn, min_time: float = 0.5) -> float:
    fn()
    _sync()
    fn()
    _sync()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        _sync()
        dt = time.perf_counter() - t0
        if dt >= min_time or n >= 20:
            return dt / n


def throughput(batch_sizes: list[int]) -> list[str]:
    lines = [
        "| backbone | batch | fp32 | fp32 channels_last | autocast fp16 "
        "| autocast + channels_last |",
        "|---|---|---|---|---|---|",
    ]
    for backbone in BACKBONES:
        model = _model(backbone, SIZE).to(DEV)
        for bs in batch_sizes:
            cells = []
            for amp in (False, True):
                for cl in (False, True):
                    fmt = torch.channels_last if cl else torch.contiguous_format
                    net = model.to(memory_format=fmt)
                    try:
                        x = torch.randn(bs, 5, SIZE, SIZE, device=DEV).to(memory_format=fmt)
                        ctx = (
                            torch.autocast(
                                DEV, dtype=torch.float16 if DEV == "cuda" else torch.bfloat16
                            )
                            if amp
                            else contextlib.nullcontext()
                        )

                        def step(net=net, x=x, ctx=ctx):
                            with torch.inference_mode(), ctx:
                                net(x)

                        cells.append(f"{bs / _time(step):,.0f}")
                    except torch.OutOfMemoryError:
                        cells.append("OOM")
                    finally:
                        x = None
                        _empty_cache()
            lines.append(f"| {backbone} | {bs} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
        model.to("cpu")
        del model
        _empty_cache()
    return lines


def end_to_end(batch_sizes: list[int]) -> list[str]:
    lines = ["| predict_arrays (host uint16 -> probs), small_cnn input 512 | batch | images/s |"]
    lines.append("|---|---|---|")
    rng = np.random.default_rng(1)
    x = rng.integers(
        0,
        4096,
        size=(max(batch_sizes) * (1 if DEV == "cpu" else 4), 5, SIZE, SIZE),
        dtype=np.uint16,
    )
    model = _model("small_cnn", SIZE)
    for bs in batch_sizes:
        predict_arrays(model, x[:bs], batch_size=bs, device=DEV)
        t0 = time.perf_counter()
        predict_arrays(model, x, batch_size=bs, device=DEV)
        dt = time.perf_counter() - t0
        lines.append(f"| | {bs} | {len(x) / dt:,.0f} |")
        print(lines[-1], flush=True)
    return lines


def streaming() -> list[str]:
    """predict_plate (background reads, pinned transfers, autocast) on a small plate on disk,
    with the shipped default model."""
    import tempfile

    from napari_dcmix.model import default_model_path, load_model, predict_plate_all
    from napari_dcmix.plate import open_plate
    from napari_dcmix.synthetic import write_synthetic_plate

    with tempfile.TemporaryDirectory() as tmp:
        info = write_synthetic_plate(tmp, layout="tiff", n_wells=24, sites=2, image_size=256)
        plate = open_plate(info.path)
        model = load_model(default_model_path())
        cpu = predict_plate_all(model, plate, device="cpu")
        t0 = time.perf_counter()
        gpu = predict_plate_all(model, plate, device=DEV)
        dt = time.perf_counter() - t0
    diff = max(
        float(np.abs(a.probs - b.probs).max()) for a, b in zip(cpu.sites, gpu.sites, strict=True)
    )
    line = (
        f"predict_plate streaming, 48 sites 5x256x256 from TIFF, shipped default model "
        f"({model.scale}): device used {gpu.device}, max abs diff p vs CPU {diff:.2e}, "
        f"{len(gpu.sites) / dt:,.0f} sites/s"
    )
    print(line, flush=True)
    return [line]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="CUDA correctness and throughput check")
    ap.add_argument("--quick", action="store_true", help="batch sizes 32 and 128 only")
    ap.add_argument("--markdown", help="also write the tables to this file")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: test this script")
    args = ap.parse_args(argv)
    global DEV, SIZE
    if args.dry_run:
        DEV, SIZE = "cpu", 64
    elif not torch.cuda.is_available():
        print("CUDA is not available here: nothing to check.")
        return 1
    torch.backends.cudnn.benchmark = True
    head = (
        f"torch {torch.__version__}, "
        f"{torch.cuda.get_device_name(0) if DEV == 'cuda' else 'CPU dry run'}, "
        f"python {platform.python_version()}"
    )
    print(head, flush=True)
    sizes = [32, 128] if args.quick or args.dry_run else [32, 64, 128, 256, 512]
    out = [
        head,
        "",
        *correctness(),
        "",
        *throughput(sizes),
        "",
        *end_to_end([32, 128] if not args.dry_run else [8]),
        "",
        *streaming(),
    ]
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
